"""The model server's capture (issue 20): every request it answers, from a plain HTTP client and
in MLflow's input formats, is in the inference log with its version and latency; `drift
--inference-log` runs on that traffic; `kill -9` loses at most the last second; `serve stats`."""
from __future__ import annotations

import http.client
import io
import json
import os
import signal
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from core import cli
from core.config import Settings
from core.data import preparation
from core.monitoring import ops
from core.serving import capture, inference_log, server

SINGLES, BATCHES, BATCH_ROWS = 500, 5, 150


def _post(conn: http.client.HTTPConnection, body: bytes | str, content_type: str) -> tuple[int, bytes, str | None]:
    conn.request("POST", "/invocations", body, {"Content-Type": content_type})
    resp = conn.getresponse()
    return resp.status, resp.read(), resp.getheader("X-Workbench-Capture")


def _probas(answer: bytes) -> list[float]:
    return [p[-1] for p in json.loads(answer)["predictions"]]


def _wait_calls(settings: Settings, n: int, timeout_s: float = 10.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout_s
    while True:
        calls = inference_log.read_calls(settings)
        if len(calls) >= n or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)


def _bodies(frame: pd.DataFrame, features: list[str]) -> list[tuple[bytes | str, str]]:
    """The same rows in five of MLflow's input formats."""
    x = frame.loc[:, features]
    whole = x.astype({c: "int64" for c in features if (x[c] == x[c].round()).all()})
    parquet = io.BytesIO()
    whole.to_parquet(parquet, index=False)
    return [
        (json.dumps({"dataframe_split": json.loads(x.to_json(orient="split", index=False))}), "application/json"),
        (json.dumps({"dataframe_records": json.loads(x.to_json(orient="records"))}), "application/json"),
        (json.dumps({"inputs": json.loads(x.to_json(orient="records"))}), "application/json"),
        (x.to_csv(index=False), "text/csv"),
        (parquet.getvalue(), "application/vnd.apache.parquet"),
    ]


def test_every_request_of_a_plain_client_is_in_the_log(served_settings: Settings,
                                                       capsys: pytest.CaptureFixture) -> None:
    s = served_settings
    features = list(s.features)
    before = len(inference_log.read_calls(s))
    rows_before = inference_log.count(s)
    test = preparation.load_split(s, "test")
    singles = test.head(SINGLES).loc[:, features]
    conn = http.client.HTTPConnection("127.0.0.1", s.serve_port, timeout=10)
    answered: dict[str, tuple[list, float, float]] = {}
    for values in singles.to_numpy().tolist():
        t = time.perf_counter()
        code, body, rid = _post(conn, json.dumps({"dataframe_split": {"columns": features, "data": [values]}}),
                                "application/json")
        assert code == 200 and rid
        answered[rid] = (values, _probas(body)[0], (time.perf_counter() - t) * 1000.0)
    batch = test.iloc[SINGLES:SINGLES + BATCH_ROWS]
    batch_answers = {}
    for body, kind in _bodies(batch, features):
        code, answer, rid = _post(conn, body, kind)
        assert code == 200, answer[:300]
        batch_answers[rid] = (kind, _probas(answer))
    assert len(batch_answers) == BATCHES
    refused = _post(conn, json.dumps({"dataframe_split": {"columns": features, "data": [[0] * len(features)]}}),
                    "application/json")
    unreadable = _post(conn, "{not json", "application/json")
    conn.close()
    assert refused[0] == 400 and unreadable[0] == 400

    calls = _wait_calls(s, before + SINGLES + BATCHES + 2).iloc[before:]
    assert len(calls) == SINGLES + BATCHES + 2 and calls["request_id"].is_unique
    by_id = calls.set_index("request_id")
    assert set(answered) | set(batch_answers) | {refused[2], unreadable[2]} == set(by_id.index)
    assert set(calls["model_version"]) == {"1"} and set(calls["source"]) == {"http"}
    assert (calls["latency_ms"] > 0).all()
    assert by_id.loc[refused[2], "outcome"] == "refused_input" and by_id.loc[unreadable[2], "outcome"] == "bad_request"
    # every single row: its values, the probability it was answered, the version and the latency
    logged = inference_log.read_last(s, inference_log.count(s) - rows_before).set_index("id")
    assert len(logged) == SINGLES + BATCHES * s.capture_rows, calls.groupby("content_type")["n_logged"].sum()
    for rid, (values, proba, client_ms) in answered.items():
        call = by_id.loc[rid]
        assert call["outcome"] == "ok" and call["n_rows"] == 1 and call["n_logged"] == 1
        row = logged.loc[int(call["first_row_id"])]
        assert row[features].tolist() == pytest.approx(values)
        assert row[s.dataset.proba_column] == pytest.approx(proba) and row["model_version"] == "1"
        assert 0 < row["latency_ms"] == pytest.approx(call["latency_ms"]) and row["latency_ms"] < client_ms
    # a batch: a sample of capture_rows of its rows, each with the probability the answer gave it
    for rid, (kind, probas) in batch_answers.items():
        call = by_id.loc[rid]
        assert call["n_rows"] == BATCH_ROWS and call["n_logged"] == s.capture_rows, kind
        first = int(call["first_row_id"])
        sample = logged.loc[first:first + s.capture_rows - 1]
        assert len(sample) == s.capture_rows and sample.index.is_unique
        assert set(sample[s.dataset.proba_column].round(12)) <= {round(p, 12) for p in probas}, kind

    # the drift check runs on that traffic
    drift = _drift(s, capsys)
    assert drift["batch"]["n_rows"] == 500 and "inference log" in drift["batch"]["name"], drift

    # and `serve stats` sees it
    report = ops.stats(s, 60.0)
    assert report.n_requests >= SINGLES + BATCHES + 2 and report.outcomes["refused_input"] >= 1
    assert report.versions[-1]["model_version"] == "1" and 0 < report.p50_ms <= report.p99_ms
    assert report.capture["write_failures"] == 0 and report.capture["dropped"] == 0
    assert report.outside_training_share is not None and report.per_bucket
    # the same counters in the Prometheus text format, summed over the server's workers
    conn = http.client.HTTPConnection("127.0.0.1", s.serve_port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("workbench_requests_total{"))
    assert counted >= SINGLES + BATCHES + 2 and 'outcome="refused_input"' in text


def _drift(s: Settings, capsys: pytest.CaptureFixture) -> dict:
    """`python -m core drift --inference-log 500 --json` in this process, on the served home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(s.home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("WORKBENCH_DATASET", raising=False)
        capsys.readouterr()
        code = cli.main(["drift", "--inference-log", "500", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def test_kill_9_mid_traffic_loses_at_most_the_last_second(served_settings: Settings) -> None:
    """The server's workers under traffic killed with SIGKILL: every request answered more than
    a second before is in the log, the log is whole, and the next start reads it and writes on
    (the session's server is started again, as it was)."""
    s = served_settings
    started = server.status(s)
    assert started.running and started.workers == s.serve_workers
    features = list(s.features)
    body = json.dumps({"dataframe_split": {"columns": features, "data": [[34.0, -118.2, 5, 2, 0, 12]]}})
    answered: list[tuple[float, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", s.serve_port, timeout=5)
        while not stop.is_set():
            try:
                code, _, rid = _post(conn, body, "application/json")
            except (OSError, http.client.HTTPException):
                return
            if code == 200:
                answered.append((time.time(), rid))

    senders = [threading.Thread(target=traffic) for _ in range(2)]
    for t in senders:
        t.start()
    time.sleep(2.5)
    killed_at = time.time()
    os.killpg(started.pid, signal.SIGKILL)
    stop.set()
    for t in senders:
        t.join(10)
    try:
        psutil.Process(started.pid).wait(10)  # gone (and reaped: it is this process's child)
    except psutil.NoSuchProcess:
        pass
    assert len(answered) > 100
    with closing(sqlite3.connect(s.inference_log_path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = set(inference_log.read_calls(s)["request_id"])
    before = {rid for t, rid in answered if t < killed_at - 1.0}
    lost = sorted(killed_at - t for t, rid in answered if rid in before - logged)
    assert before and not lost, f"{len(lost)} of {len(before)} lost, answered {lost[0]:.2f}-{lost[-1]:.2f} s before"
    # the next start reads the log and appends to it
    n = len(logged)
    again = server.start(s)
    conn = http.client.HTTPConnection("127.0.0.1", s.serve_port, timeout=5)
    code, _, rid = _post(conn, body, "application/json")
    assert code == 200 and again.running
    calls = _wait_calls(s, n + 1, timeout_s=5)
    assert rid in set(calls["request_id"]) and calls["request_id"].is_unique


# --------------------------------------------------------------------------- the writer, without a server
def _recorder(settings: Settings, tmp: Path, **changes: object) -> capture.Recorder:
    config = capture.CaptureConfig(
        log_path=str(settings.inference_log_path), features=tuple(settings.features),
        proba_column=settings.dataset.proba_column, state_path=str(tmp / "serve.json"),
        status_dir=str(tmp / "capture"), flush_s=60.0, **changes)  # flushed by hand here
    return capture.Recorder(config, armed=True)


def _call(rid: str, frame: pd.DataFrame, status: int = 200) -> capture.Call:
    call = capture.Call(time.time(), rid, "http", "application/json")
    call.status, call.n_rows, call.latency_ms = status, len(frame), 1.5
    call.frame = frame
    call.proba = np.column_stack([1 - np.linspace(0.1, 0.9, len(frame)), np.linspace(0.1, 0.9, len(frame))])
    return call


SHOT = {"lat": 34.0, "lon": -118.2, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}


def test_a_log_that_cannot_be_written_is_counted_and_retried_without_duplicates(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    rec = _recorder(settings, tmp_path)
    rec.submit(_call("a", pd.DataFrame([SHOT])))
    assert rec.flush() == 0  # no log yet: the request stays queued, the failure is counted
    health = capture.read_health(tmp_path / "capture")
    assert health["write_failures"] == 1 and health["dropped"] == 0 and "does not exist" in health["last_error"]
    inference_log.ensure(settings)
    rec.submit(_call("b", pd.DataFrame([SHOT] * 3)))
    assert rec.flush() == 2 and rec.flush() == 0
    calls = inference_log.read_calls(settings)
    assert calls["request_id"].tolist() == ["a", "b"] and calls["n_logged"].tolist() == [1, 3]
    rows = inference_log.read_last(settings)
    assert rows["id"].tolist() == [1, 2, 3, 4] and calls["first_row_id"].tolist() == [1, 2]
    assert rows["proba_made"].round(3).tolist() == [0.1, 0.1, 0.5, 0.9] and set(rows["model_version"].isna()) == {True}
    assert capture.read_health(tmp_path / "capture")["written"] == 2


def test_a_large_request_is_sampled_and_a_full_queue_drops_the_oldest(settings: Settings, tmp_path: Path) -> None:
    inference_log.ensure(settings)
    (tmp_path / "serve.json").write_text(json.dumps({"pid": os.getpid(), "model_version": "4", "threshold": 0.3}))
    rec = _recorder(settings, tmp_path, sample_rows=10, max_queue=3)
    big = pd.DataFrame([{**SHOT, "shot_distance": i % 80} for i in range(500)])
    for rid in ("1", "2", "3", "4"):
        rec.submit(_call(rid, big if rid == "4" else pd.DataFrame([SHOT])))
    rec.submit(_call("5", pd.DataFrame([SHOT]), status=400))
    assert rec.flush() == 3 and rec.health.dropped == 2
    calls = inference_log.read_calls(settings).set_index("request_id")
    assert list(calls.index) == ["3", "4", "5"] and calls.loc["4", "n_rows"] == 500
    assert calls.loc["4", "n_logged"] == 10 and calls.loc["5", "n_logged"] == 0
    assert calls.loc["5", "outcome"] == "bad_request" and set(calls["model_version"]) == {"4"}
    rows = inference_log.read_last(settings).set_index("id")
    sample = rows.loc[calls.loc["4", "first_row_id"]:]
    assert len(sample) == 10 and sample["shot_distance"].nunique() > 1 and set(sample["threshold"]) == {0.3}
    assert (sample["label"] == (sample["proba_made"] >= 0.3)).all()


@pytest.mark.parametrize(("status", "refusal", "kind"), [
    (200, None, "ok"), (400, "InputRefused", "refused_input"), (400, "MlflowException", "refused_schema"),
    (400, None, "bad_request"), (415, None, "unsupported_media_type"), (504, None, "timeout"), (500, None, "error")])
def test_outcomes(status: int, refusal: str | None, kind: str) -> None:
    assert capture.outcome(status, refusal) == kind


def test_serve_stats_summarises_a_window(settings: Settings, tmp_path: Path) -> None:
    inference_log.ensure(settings)
    rec = _recorder(settings, tmp_path)
    for i in range(6):
        rec.submit(_call(str(i), pd.DataFrame([{**SHOT, "shot_distance": 90 if i == 0 else 12}]),
                         status=200 if i < 5 else 400))
    rec.flush()
    domain = ({"shot_distance": (0.0, 80.0)}, {})
    report = ops.stats(settings, 15.0, domain=domain)
    assert report.n_requests == 6 and report.outcomes == {"ok": 5, "bad_request": 1}
    assert report.refused_share == pytest.approx(1 / 6, abs=1e-3) and report.rows_logged == 5
    assert report.outside_training_share == pytest.approx(0.2) and report.p50_ms == pytest.approx(1.5)
    assert report.per_bucket[0]["requests"] == 6 and report.bucket_minutes == 1.0
    later = ops.stats(settings, 15.0, now=datetime.now(timezone.utc) + timedelta(hours=1), domain=domain)
    assert later.n_requests == 0 and later.p50_ms is None
    with pytest.raises(ops.WindowError, match="15m, 2h, 7d"):
        ops.parse_window("soon")
    assert ops.parse_window("2h") == 120.0 and ops.parse_window("all") is None


def test_the_serve_page_shows_the_operations_of_a_window(served_settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    conn = http.client.HTTPConnection("127.0.0.1", served_settings.serve_port, timeout=10)
    body = json.dumps({"dataframe_split": {"columns": list(served_settings.features),
                                           "data": [[34.0, -118.2, 5, 2, 0, 12]] * 3}})
    assert _post(conn, body, "application/json")[0] == 200
    conn.close()
    time.sleep(0.5)
    monkeypatch.setenv("WORKBENCH_HOME", str(served_settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    at = AppTest.from_file(str(Path(ROOT) / "pages/4_Serve.py"), default_timeout=120).run()
    assert not at.exception
    assert "Operations" in [h.value for h in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Requests / min"].replace(",", "")) >= 0.01
    p50 = metrics["Server p50, 1 row"]  # single rows apart from batches (issue 30)
    assert p50 == "—" or p50.endswith(" ms")
    by_size = next(c.value for c in at.caption if c.value.startswith("Server latency by request size: "))
    assert "2–100 rows: p50 " in by_size  # the 3-row request above
    assert metrics["Refused"].endswith("%") and metrics["Outside training"].endswith("%")
    at.button(key="serve_ops_drift_button").click().run()
    assert not at.exception and not at.error
    assert any("Drift check of" in s.value and "drift history" in s.value for s in at.success)
