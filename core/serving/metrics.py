"""The model server's counters in the Prometheus text format, at `GET /metrics` on the server's own
address (127.0.0.1), for a monitoring stack (Prometheus, Grafana) to scrape.

prometheus-client in its multiprocess mode: each gunicorn worker keeps its counters in files of
`PROMETHEUS_MULTIPROC_DIR` (`<runtime>/metrics/`, emptied at each start by
`core/serving/server.py`), and whichever worker answers `/metrics` sums them all. The counters
are updated by the capture's writer thread (`core/serving/capture.py`), off the request path,
so they lag the traffic by at most its flush interval. Without prometheus-client installed, or
with the capture off, there is no `/metrics` (MLflow's app answers 404).

- `workbench_requests_total{outcome, model_version, source}`: requests to /invocations answered;
  `source` is one of `KNOWN_SOURCES` (what the workbench's own clients send in the
  `X-Workbench-Source` header) or `other`: a client choosing its header cannot add series;
- `workbench_request_latency_seconds{outcome}`: the server's latency (histogram);
- `workbench_rows_scored_total{model_version}`, `workbench_rows_logged_total`: rows sent and rows
  written to the inference log (a sample of large requests);
- `workbench_capture_write_failures_total`, `workbench_capture_dropped_total`: the capture's health.

When the counters' folder is gone while the server runs (removed by hand), `/metrics` answers
503 saying so, not a 500: the counters can no longer be summed, and a restart makes a new folder.
"""
from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Iterable

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"
# the request sources kept apart in the counters and in `serve stats`: the server's default for an
# untagged request (`core.serving.recorder.DEFAULT_SOURCE`), the Serve page's
# (`core.serving.predict.predict_one`) and `python -m core predict`'s (`core/cli/serving.py`)
KNOWN_SOURCES = frozenset({"http", "serve-page", "cli"})
OTHER_SOURCE = "other"  # any other `X-Workbench-Source` value
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def source_label(source: str) -> str:
    """`source` when it is one of KNOWN_SOURCES, else OTHER_SOURCE: the label set stays bounded
    whatever clients send (each label value is a series of its own in Prometheus)."""
    return source if source in KNOWN_SOURCES else OTHER_SOURCE


class Metrics:
    """The counters (see the module docstring)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter("workbench_requests", "Requests to /invocations the model server answered",
                                ["outcome", "model_version", "source"])
        self.latency = Histogram("workbench_request_latency_seconds", "The model server's own time per request",
                                 ["outcome"], buckets=LATENCY_BUCKETS)
        self.rows_scored = Counter("workbench_rows_scored", "Rows sent to /invocations", ["model_version"])
        self.rows_logged = Counter("workbench_rows_logged", "Rows written to the inference log")
        self.write_failures = Counter("workbench_capture_write_failures",
                                      "Writes of the inference log that failed (their requests were retried)")
        self.dropped = Counter("workbench_capture_dropped", "Answered requests the inference log lost")

    def observe(self, calls: Iterable[tuple[str, str | None, str, float, int]]) -> None:
        """Count requests given as (outcome, model version, source, latency in ms, rows); a source
        not in KNOWN_SOURCES is counted as OTHER_SOURCE."""
        for kind, version, source, latency_ms, n_rows in calls:
            v = version or "unknown"
            self.requests.labels(kind, v, source_label(source)).inc()
            self.latency.labels(kind).observe(latency_ms / 1000.0)
            if n_rows:
                self.rows_scored.labels(v).inc(n_rows)


def load() -> Metrics | None:
    """The counters when the server runs with a metrics folder and prometheus-client is installed."""
    if not os.environ.get(METRICS_DIR_ENV):
        return None
    try:
        return Metrics()
    except ImportError:
        return None


def with_metrics(app: ASGIApp) -> ASGIApp:
    """`app` answering `GET /metrics` with every worker's counters in the Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    async def metered(scope: Scope, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or scope.get("path") != PATH or scope.get("method") != "GET":
            await app(scope, receive, send)
            return
        folder = os.environ.get(METRICS_DIR_ENV, "")
        if os.path.isdir(folder):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)
            status, kind, body = 200, CONTENT_TYPE_LATEST, generate_latest(registry)
        else:
            status, kind = 503, "text/plain; charset=utf-8"
            body = (f"The model server's counters are gone: their folder {folder} was removed while it ran; "
                    "restart the model server (python -m core serve stop, then serve).\n").encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode("ascii")),
                                (b"content-length", str(len(body)).encode("ascii"))]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return metered
