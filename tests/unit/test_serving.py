"""Serving without a model server (`core/serving/`): the inference log, the HTTP client against
a stand-in server, the request as curl, and single-request inference with a stand-in client."""
from __future__ import annotations

from core.modeling.model_version import ModelVersion

import io
import json
import sqlite3
from contextlib import closing
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.config import Settings
from core.rules import InvalidInputError
from core.serving import client, inference_log, predict
from core.serving.server import free_port
from tests.unit.conftest import FEATURES, definition_text, make_settings, serve_stub

ROW = {"usage_hours": 42.5, "support_calls": 3.0, "premium": 1.0}
TAIL = ["proba_churned", "label", "threshold", "model_version", "latency_ms", "source"]


def _table_columns(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as con:
        return [row[1] for row in con.execute(f"PRAGMA table_info({inference_log.TABLE})")]


# --------------------------------------------------------------------------- the inference log
def test_the_log_table_comes_from_the_definition(tiny: Settings) -> None:
    assert inference_log.columns(tiny.dataset) == ["timestamp", *FEATURES, *TAIL]
    inference_log.append(tiny, ROW, 0.8, 0.5, "3", 1.5, "unit")
    assert tiny.inference_log_path == tiny.data_dir / "inference_log.sqlite"
    assert _table_columns(tiny.inference_log_path) == ["id", "timestamp", *FEATURES, *TAIL]


def test_an_empty_log_reads_as_an_empty_frame_with_its_columns(tiny: Settings) -> None:
    df = inference_log.read_last(tiny, 10)
    assert df.empty and list(df.columns) == ["id", "timestamp", *FEATURES, *TAIL]
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert inference_log.count(tiny) == 0 and not tiny.inference_log_path.exists()


def test_append_count_and_read_last_oldest_first(tiny: Settings) -> None:
    ids = [inference_log.append(tiny, {**ROW, "support_calls": float(i)}, 0.2 * i, 0.5, "7", 2.0, "unit")
           for i in range(5)]
    assert ids == [1, 2, 3, 4, 5] and inference_log.count(tiny) == 5
    last = inference_log.read_last(tiny, 3)
    assert last["id"].tolist() == [3, 4, 5] and last["support_calls"].tolist() == [2.0, 3.0, 4.0]
    assert last["proba_churned"].tolist() == pytest.approx([0.4, 0.6, 0.8])
    assert last["label"].tolist() == [0, 1, 1]  # the class at the logged threshold
    assert set(last["model_version"]) == {"7"} and set(last["source"]) == {"unit"}
    assert last["timestamp"].is_monotonic_increasing and str(last["timestamp"].dt.tz) == "UTC"
    assert len(inference_log.read_last(tiny, 100)) == 5


def test_a_log_of_other_columns_is_kept_aside_and_a_new_one_started(tiny: Settings) -> None:
    path = tiny.inference_log_path
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as con, con:  # a log of another feature set (Kobe's)
        con.execute(f"CREATE TABLE {inference_log.TABLE} (id INTEGER PRIMARY KEY, timestamp TEXT, lat REAL, "
                    "lon REAL, proba_made REAL)")
        con.execute(f"INSERT INTO {inference_log.TABLE} (timestamp, lat, lon, proba_made) "
                    "VALUES ('2026-01-01T00:00:00+00:00', 34.0, -118.2, 0.4)")
    assert inference_log.append(tiny, ROW, 0.9, 0.5, None, 1.0, "unit") == 1
    assert inference_log.count(tiny) == 1
    kept = [p for p in path.parent.glob("inference_log.*.sqlite")]
    assert len(kept) == 1
    with closing(sqlite3.connect(kept[0])) as con:
        assert con.execute(f"SELECT lat, proba_made FROM {inference_log.TABLE}").fetchall() == [(34.0, 0.4)]
    assert _table_columns(path) == ["id", "timestamp", *FEATURES, *TAIL]


def test_a_matching_log_is_kept_as_it_is(tiny: Settings) -> None:
    inference_log.append(tiny, ROW, 0.3, 0.5, "1", 1.0, "unit")
    inference_log.append(tiny, ROW, 0.6, 0.5, "1", 1.0, "unit")
    assert inference_log.count(tiny) == 2
    assert list(tiny.inference_log_path.parent.glob("inference_log.*.sqlite")) == []


def test_feature_names_that_need_quoting_are_logged(tmp_path: Path, source_dir: Path) -> None:
    import tomllib

    raw = tomllib.loads(definition_text(source_dir))
    raw["features"][0]["name"] = 'usage "hours"'
    raw["example"] = {}
    spec = catalog.from_dict(raw)
    s = make_settings(tmp_path, spec, source_dir)
    inference_log.append(s, {'usage "hours"': 10.0, "support_calls": 1.0, "premium": 0.0}, 0.1, 0.5, "1", 1.0, "t")
    assert inference_log.read_last(s)['usage "hours"'].tolist() == [10.0]


def test_the_log_reads_back_as_a_batch_of_features(tiny: Settings) -> None:
    from core.monitoring.check import inference_log_batch

    for i in range(4):
        inference_log.append(tiny, {**ROW, "usage_hours": 10.0 * i}, 0.5, 0.5, "1", 1.0, "unit")
    batch = inference_log_batch(tiny, 3)
    assert batch.n_rows == 3 and not batch.has_labels and list(batch.frame.columns) == list(FEATURES)
    assert batch.frame["usage_hours"].tolist() == [10.0, 20.0, 30.0]
    assert batch.name == "inference log (last 3 rows)"


# --------------------------------------------------------------------------- the client
@pytest.mark.parametrize("text, expected", [
    ('{"predictions": [[0.7, 0.3], [0.2, 0.8]]}', [0.3, 0.8]),      # the server's usual answer
    ('{"predictions":[[0.7,0.3],[0.2,0.8]]}', [0.3, 0.8]),          # without spaces (json path)
    ('{"predictions": [0.25, 0.75]}', [0.25, 0.75]),                # a flat list of probabilities
    ('[[0.9, 0.1]]', [0.1]),                                        # a bare list of rows
    ('{"predictions": [[0.5]]}', [0.5]),                            # one column
    ('{"predictions": [[1e-05, 0.99999]]}', [0.99999]),
])
def test_parse_predictions_reads_the_server_answer_formats(text: str, expected: list[float]) -> None:
    np.testing.assert_allclose(client.parse_predictions(text), expected)


def test_parse_predictions_fast_path_matches_json() -> None:
    p = np.random.default_rng(0).random(1000)
    text = json.dumps({"predictions": np.c_[1 - p, p].tolist()})
    np.testing.assert_array_equal(client.parse_predictions(text), np.asarray(json.loads(text)["predictions"])[:, 1])


def test_split_payload_sends_the_features_in_model_order() -> None:
    frame = pd.DataFrame({"premium": [1, 0], "segment": ["a", "b"], "usage_hours": [1.5, 2.25],
                          "support_calls": [3, 4]})
    body = json.loads(client.split_payload(frame, FEATURES))
    assert body == {"dataframe_split": {"columns": list(FEATURES), "data": [[1.5, 3.0, 1.0], [2.25, 4.0, 0.0]]}}


class _Stub(BaseHTTPRequestHandler):
    """A stand-in model server: /ping, and /invocations answering P = 0.1 * support_calls."""

    bodies: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Type", "").startswith("application/vnd.apache.parquet"):
            frame = pd.read_parquet(io.BytesIO(raw))  # the client's batch path sends parquet
            body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()},
                    "format": "parquet"}
        else:
            body = json.loads(raw)
        type(self).bodies.append(body)
        split = body["dataframe_split"]
        if "support_calls" not in split["columns"]:
            answer, code = {"error_code": "BAD_REQUEST", "message": "missing support_calls",
                            "stack_trace": "Traceback (most recent call last): secret"}, 400
        else:
            i = split["columns"].index("support_calls")
            answer, code = {"predictions": [[1 - 0.1 * r[i], 0.1 * r[i]] for r in split["data"]]}, 200
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub_url() -> Iterator[str]:
    _Stub.bodies = []
    with serve_stub(_Stub) as url:
        yield url


def test_the_client_posts_dataframe_split_and_reads_the_probability(stub_url: str) -> None:
    with client.Client(stub_url, 5.0, FEATURES) as c:
        assert c.ping()
        np.testing.assert_allclose(c.predict_rows([[40.0, 3.0, 0.0], [50.0, 7.0, 1.0]]), [0.3, 0.7])
        frame = pd.DataFrame({"support_calls": [2, 5], "premium": [0, 1], "usage_hours": [1.0, 2.0]})
        np.testing.assert_allclose(c.predict_proba(frame), [0.2, 0.5])
        np.testing.assert_allclose(c.predict_rows([[1.0, 9.0, 0.0]]), [0.9])  # the kept-alive connection
    assert [b["dataframe_split"]["columns"] for b in _Stub.bodies] == [list(FEATURES)] * 3
    assert [b.get("format", "json") for b in _Stub.bodies] == ["json", "parquet", "json"]  # a batch goes as parquet


def test_a_refused_request_shows_the_servers_message_not_its_stack_trace(stub_url: str) -> None:
    with client.Client(stub_url, 5.0, ("usage_hours", "premium")) as c:
        with pytest.raises(client.PredictionError) as err:
            c.predict_rows([[1.0, 0.0]])
    assert "HTTP 400" in str(err.value) and "missing support_calls" in str(err.value)
    assert "Traceback" not in str(err.value) and "secret" not in str(err.value)


def test_nothing_listening_is_server_not_running() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with client.Client(url, 2.0, FEATURES) as c:
        assert not c.ping()
        with pytest.raises(client.ServerNotRunningError, match=f"not running at {url}"):
            c.predict_rows([[1.0, 2.0, 0.0]])


# --------------------------------------------------------------------------- single requests
def test_curl_example_is_the_exact_request() -> None:
    text = predict.curl_example("http://127.0.0.1:5001/", {"premium": 1.0, "usage_hours": 42.5,
                                                           "support_calls": 3.0}, FEATURES)
    first, *_ = text.splitlines()
    assert first == "curl -s -X POST http://127.0.0.1:5001/invocations \\"
    assert "-H 'Content-Type: application/json'" in text
    body = json.loads(text.split("-d '", 1)[1].rstrip("'"))
    assert body == {"dataframe_split": {"columns": list(FEATURES), "data": [[42.5, 3.0, 1.0]]}}


class _FakeClient:
    """Stands for `client.Client`: records the rows and answers a fixed probability."""

    def __init__(self, proba: float = 0.8, fail: bool = False) -> None:
        self.url, self.proba, self.fail, self.rows = "http://stub:1", proba, fail, []

    def predict_rows(self, rows: list[list[float]]) -> np.ndarray:
        if self.fail:
            raise AssertionError("the client must not be called")
        self.rows.append(rows)
        return np.array([self.proba])

    def close(self) -> None:
        raise AssertionError("a client given by the caller is not closed")


@pytest.mark.parametrize("row", [
    {**ROW, "support_calls": 2.5},
    {**ROW, "premium": 3},
    {"usage_hours": 42.5, "support_calls": 3},
    {**ROW, "usage_hours": "42.5"},
])
def test_predict_one_refuses_an_invalid_row_before_any_request(tiny: Settings, row: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="^Invalid customer: "):
        predict.predict_one(tiny, row, client=_FakeClient(fail=True), log_source="unit", model=ModelVersion(name=tiny.model_name, version='1', run_id=None))
    assert inference_log.count(tiny) == 0


def test_predict_one_scores_logs_and_warns(tiny: Settings) -> None:
    fake = _FakeClient(0.8)
    ranges = {"usage_hours": (10.0, 40.0), "support_calls": (0.0, 10.0), "premium": (0.0, 1.0)}
    shuffled = {"premium": 1, "support_calls": 3, "usage_hours": 42.5}
    pred = predict.predict_one(tiny, shuffled, client=fake, threshold=0.75, ranges=ranges, log_source="unit", model=ModelVersion(name=tiny.model_name, version='1', run_id=None))
    assert fake.rows == [[[42.5, 3.0, 1.0]]]  # in model order, as floats
    assert (pred.proba, pred.label, pred.threshold, pred.url) == (0.8, 1, 0.75, "http://stub:1")
    assert pred.inputs == {"usage_hours": 42.5, "support_calls": 3.0, "premium": 1.0}
    assert pred.model_version is None  # not the managed server: unknown
    assert len(pred.warnings) == 1 and pred.warnings[0].startswith("usage_hours = 42.5 lies outside")
    assert "customer" in pred.warnings[0]
    logged = inference_log.read_last(tiny)
    assert pred.log_id == 1 and logged["proba_churned"].tolist() == [0.8] and logged["label"].tolist() == [1]
    assert logged["source"].tolist() == ["unit"] and logged["threshold"].tolist() == [0.75]


def test_predict_one_without_a_log_source_logs_nothing(tiny: Settings) -> None:
    pred = predict.predict_one(tiny, ROW, client=_FakeClient(0.2), log_source=None, model=ModelVersion(name=tiny.model_name, version='1', run_id=None))
    assert pred.label == 0 and pred.log_id is None and inference_log.count(tiny) == 0


def test_predict_one_against_nothing_listening(tiny: Settings) -> None:
    s = tiny.replace(serve_port=free_port(), request_timeout_s=2.0)
    with pytest.raises(client.ServerNotRunningError):
        predict.predict_one(s, ROW, log_source="unit", model=ModelVersion(name=s.model_name, version='1', run_id=None))
    assert inference_log.count(s) == 0


# --------------------------------------------------------------------------- rows vs requests (issue 28 item 9)
def _log_requests(s: Settings, sizes: list[int], status: int = 200, latency_ms: list[float] | None = None) -> None:
    """Log one request per size, each with that many rows (as the server's capture writes them),
    each taking 1.5 ms or its `latency_ms`."""
    from datetime import datetime, timezone

    path = inference_log.ensure(s)
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    example = s.dataset.example_row()
    row = [now, *[example[f] for f in s.features], 0.4, 0, 0.5, "1", 1.5, "http"]
    with closing(inference_log.open_for_capture(path)) as con:
        inference_log.write_captured(con, inference_log.columns(s.dataset), [
            ((now, f"r{i}", "1", status, "ok" if status == 200 else "invalid_input", max(n, 1),
              1.5 if latency_ms is None else latency_ms[i], "http", 0, "application/json"), [row] * n)
            for i, n in enumerate(sizes)])


def test_serve_stats_report_latency_apart_by_request_size(tiny: Settings) -> None:
    """Issue 30: `serve stats` p99 194 ms mixed a 5,412-row batch with single rows."""
    from core.monitoring import ops

    sizes = [1] * 49 + [5412, 40]
    _log_requests(tiny, sizes, latency_ms=[2.0] * 49 + [194.0, 9.0])
    report = ops.stats(tiny, None, domain=({}, {}))
    assert report.n_requests == 51 and report.p99_ms > 100.0  # every request together, as before
    assert (report.single_row_p50_ms, report.single_row_p99_ms) == (2.0, 2.0)
    by = {b["rows"]: b for b in report.latency_by_rows}
    assert [b["rows"] for b in report.latency_by_rows] == ["1", "2-100", "101-10000", "10001+"]
    assert by["1"]["n_requests"] == 49 and by["1"]["p99_ms"] == 2.0
    assert (by["2-100"]["n_requests"], by["2-100"]["p50_ms"]) == (1, 9.0)
    assert (by["101-10000"]["n_requests"], by["101-10000"]["p50_ms"]) == (1, 194.0)
    assert by["10001+"] == {"rows": "10001+", "min_rows": 10_001, "max_rows": None, "n_requests": 0,
                            "p50_ms": None, "p99_ms": None}
    assert report.per_bucket[0]["single_row_p99_ms"] == 2.0 and report.per_bucket[0]["p99_ms"] > 100.0
    printed = json.loads(json.dumps(report.to_dict()))  # `serve stats --json`: the old fields stay
    assert {"p50_ms", "p99_ms", "latency_by_rows", "single_row_p50_ms", "single_row_p99_ms"} <= set(printed)


def test_the_log_counts_rows_and_requests_apart(tiny: Settings) -> None:
    """Issue 30: "102 requests logged" were 3 requests and 102 rows."""
    from core.monitoring import check, ops

    assert (inference_log.count(tiny), inference_log.count_requests(tiny)) == (0, 0)
    assert inference_log.logged_text(tiny) == "0 rows logged"
    _log_requests(tiny, [100, 1, 1])
    assert (inference_log.count(tiny), inference_log.count_requests(tiny)) == (102, 3)
    assert inference_log.logged_text(tiny) == "102 rows logged from 3 requests"
    assert check.inference_log_batch(tiny, 50).name == "inference log (last 50 rows)"
    report = ops.stats(tiny, None)
    assert (report.n_requests, report.rows_sent, report.rows_logged) == (3, 102, 102)


def test_refused_requests_log_no_rows_and_the_window_says_rows(tiny: Settings) -> None:
    from core.data.batches import BatchError
    from core.monitoring import ops

    _log_requests(tiny, [0, 0], status=400)
    assert inference_log.logged_text(tiny) == "0 rows logged from 2 requests"
    with pytest.raises(BatchError, match="no row was logged in the window") as err:
        ops.window_batch(tiny, None)
    assert "no request" not in str(err.value)
