"""The SQLite inference log: appends (also concurrent) and reading the last N as a batch."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from core.config import Settings
from core.serving import inference_log

SHOT = {"lat": 34.0, "lon": -118.2, "minutes_remaining": 5.0, "period": 2.0, "playoffs": 0.0, "shot_distance": 12.0}


def test_empty_log_reads_as_empty_frame_with_columns(settings: Settings) -> None:
    df = inference_log.read_last(settings, 10)
    assert df.empty and {"proba_made", "model_version", "timestamp", *settings.features} <= set(df.columns)
    assert inference_log.count(settings) == 0


def test_read_last_n_oldest_first(settings: Settings) -> None:
    for i in range(5):
        inference_log.append(settings, {**SHOT, "shot_distance": float(i)}, 0.1 * i, 0.25, "7", 3.0, "test")
    last = inference_log.read_last(settings, 3)
    assert last["shot_distance"].tolist() == [2.0, 3.0, 4.0]
    assert last["label"].tolist() == [0, 1, 1] and set(last["model_version"]) == {"7"}
    assert last["timestamp"].is_monotonic_increasing


def test_concurrent_appends_are_all_kept(settings: Settings) -> None:
    def write(i: int) -> int:
        return inference_log.append(settings, SHOT, 0.5, 0.5, "1", float(i), "test")

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(write, range(80)))
    assert len(set(ids)) == 80 and inference_log.count(settings) == 80


def test_an_older_log_gets_the_requests_table_and_keeps_its_rows(settings: Settings) -> None:
    import sqlite3
    from contextlib import closing

    path = settings.inference_log_path
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as con:  # a log as the workbench wrote it before the server's capture
        con.execute(inference_log._schema(settings.dataset))
        con.commit()
    inference_log.append(settings, SHOT, 0.5, 0.5, "1", 1.0, "serve-page")
    inference_log.ensure(settings)
    assert inference_log.count(settings) == 1 and inference_log.read_calls(settings).empty
    assert list(path.parent.glob("inference_log.*.sqlite")) == []  # kept in place, not moved aside


def test_retention_keeps_the_newest_rows_and_a_reader_keeps_its_snapshot(settings: Settings) -> None:
    import sqlite3
    from contextlib import closing
    from datetime import datetime, timedelta, timezone

    for i in range(30):
        inference_log.append(settings, {**SHOT, "shot_distance": float(i)}, 0.5, 0.5, "1", 1.0, "test")
    reader = sqlite3.connect(settings.inference_log_path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 30  # a drift check reading
    with closing(inference_log.open_for_capture(settings.inference_log_path)) as con:
        assert inference_log.prune(con, max_rows=10, max_days=None) == 20
    assert reader.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 30  # its snapshot is whole
    reader.execute("COMMIT")
    reader.close()
    assert inference_log.read_last(settings)["shot_distance"].tolist() == [float(i) for i in range(20, 30)]
    with closing(inference_log.open_for_capture(settings.inference_log_path)) as con:
        later = datetime.now(timezone.utc) + timedelta(days=3)
        assert inference_log.prune(con, max_rows=None, max_days=2.0, now=later) == 10
    assert inference_log.count(settings) == 0
