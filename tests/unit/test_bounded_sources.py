"""The model server's source labels are a bounded set (issue 28, item 4): each distinct
`X-Workbench-Source` header value made a new Prometheus series and a new source in `serve
stats`. The workbench's own clients keep their names; any other value is pooled as `other`
(the inference log keeps the raw value, cut short)."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import Settings
from core.monitoring import ops
from core.serving import capture, inference_log, predict
from core.serving.metrics import KNOWN_SOURCES, OTHER_SOURCE, source_label
from tests.conftest import ROOT

N_SOURCES = 5_000

# 5,000 requests with as many source headers through the server's own hooks (the capture and the
# /metrics app) in a process of its own: prometheus-client's multiprocess mode reads its folder
# when it is imported
SCRIPT = """
import asyncio, json, sys
from core.serving import capture, metrics

config = capture.CaptureConfig(log_path=sys.argv[1] + "/missing.sqlite", features=("a",), proba_column="p",
                               state_path=sys.argv[1] + "/serve.json", status_dir=sys.argv[1] + "/status",
                               flush_s=60.0)
recorder = capture.Recorder(config, armed=True)

async def ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})

app = metrics.with_metrics(capture.with_capture(ok, recorder))

async def request(path, method, headers):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app({"type": "http", "path": path, "method": method, "headers": headers}, receive, send)
    return b"".join(m.get("body", b"") for m in sent[1:])

async def main():
    for i in range(int(sys.argv[2])):
        await request("/invocations", "POST", [(b"x-workbench-source", f"client-{i}".encode())])
    for known in ("serve-page", "cli"):
        await request("/invocations", "POST", [(b"x-workbench-source", known.encode())])
    await request("/invocations", "POST", [])
    recorder.flush()  # counts, then fails to write (no log): the counters are what is looked at
    return await request("/metrics", "GET", [])

print(asyncio.run(main()).decode())
"""


def _scrape(tmp_path: Path, n: int) -> str:
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(n)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_metrics_keep_one_series_per_known_source_and_pool_the_rest(tmp_path: Path) -> None:
    text = _scrape(tmp_path, N_SOURCES)
    series = [line for line in text.splitlines() if line.startswith("workbench_requests_total{")]
    sources = {line.split('source="', 1)[1].split('"', 1)[0] for line in series}
    assert sources == {"http", "serve-page", "cli", OTHER_SOURCE}
    counts = {line.split('source="', 1)[1].split('"', 1)[0]: float(line.rsplit(" ", 1)[1]) for line in series}
    assert counts == {"http": 1.0, "serve-page": 1.0, "cli": 1.0, OTHER_SOURCE: float(N_SOURCES)}
    assert len(text.encode()) < 20_000  # was 563 kB for 5,000 sources


def test_the_workbench_clients_sources_are_known() -> None:
    assert inspect.signature(predict.predict_one).parameters["log_source"].default in KNOWN_SOURCES
    assert "cli" in KNOWN_SOURCES and capture.DEFAULT_SOURCE in KNOWN_SOURCES
    assert source_label("serve-page") == "serve-page" and source_label("Serve-Page") == OTHER_SOURCE
    assert source_label("x" * 10_000) == OTHER_SOURCE and source_label("") == OTHER_SOURCE


def test_serve_stats_pool_unknown_sources_and_the_log_keeps_them_short(tiny: Settings, tmp_path: Path) -> None:
    inference_log.ensure(tiny)
    config = capture.CaptureConfig(
        log_path=str(tiny.inference_log_path), features=tuple(tiny.features), proba_column=tiny.dataset.proba_column,
        state_path=str(tmp_path / "serve.json"), status_dir=str(tmp_path / "capture"), flush_s=60.0)
    rec = capture.Recorder(config, armed=True)
    sources = ["serve-page", "cli", "http", *(f"client-{i}" for i in range(30)), "y" * capture.MAX_SOURCE_CHARS]
    for i, source in enumerate(sources):
        call = capture.Call(time.time(), str(i), source, "application/json")
        call.status, call.n_rows, call.latency_ms = 200, 1, 1.0
        call.frame = pd.DataFrame([{"usage_hours": 1.0, "support_calls": 1, "premium": 0}])
        call.proba = np.array([[0.4, 0.6]])
        rec.submit(call)
    rec.flush()  # what the writer thread (woken by the workbench's own sources) has not written yet
    assert rec.health.written == len(sources)
    report = ops.stats(tiny, 15.0, domain=({}, {}))
    assert report.sources == {"serve-page": 1, "cli": 1, "http": 1, OTHER_SOURCE: 31}
    assert json.loads(json.dumps(report.to_dict()))["sources"] == report.sources  # `serve stats --json`
    logged = inference_log.read_calls(tiny)["source"].tolist()
    assert logged == sources  # the log keeps each raw value (cut to MAX_SOURCE_CHARS by the capture)
