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
