"""The model server capture's writer: each worker's queue of answered requests, written to the
inference log by a thread of the worker (see `core/serving/capture.py` for the whole design).

`Recorder.submit` is the request path's only call (a deque append); the worker's thread takes
the queue every `flush_s` seconds, samples at most `sample_rows` rows of a large request and
writes everything in one transaction (`inference_log.write_captured`). A failed write keeps the
records for the next try (up to `max_queue`, then the oldest are dropped) and is counted in the
worker's status file (`<runtime>/capture/worker-<pid>.json`, summed by `read_health`), in
serve.log and in the Prometheus counters (`core/serving/metrics.py`).
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.serving import answers
from core.serving.metrics import KNOWN_SOURCES

CONFIG_ENV = "WORKBENCH_CAPTURE_CONFIG"  # the capture's settings (JSON), set by core/serving/server.py
STATUS_DIR = "capture"  # under the runtime folder: one status file per worker
DEFAULT_SOURCE = "http"
SWITCH_INTERVAL_S = 0.0005  # the worker's GIL switch interval once its writer thread runs

_log = logging.getLogger("gunicorn.error")


@dataclass(frozen=True)
class CaptureConfig:
    """What the server's capture needs, given by the starting process (`to_env`)."""

    log_path: str
    features: tuple[str, ...]
    proba_column: str
    state_path: str  # serve.json: the version served and its threshold
    status_dir: str
    threshold: float = 0.5  # when the state file gives none
    sample_rows: int = 100
    flush_s: float = 0.25
    max_rows: int | None = None
    max_days: float | None = None
    max_queue: int = 100_000  # records kept while the log cannot be written, then the oldest are dropped
    prune_every_s: float = 60.0
    seed: int = 0
    task: str = "binary"  # the served model's task kind: what its answer's columns are (core/serving/answers.py)
    output_columns: tuple[str, ...] = ()  # the log's answer columns (binary: proba_column, label, threshold)

    @property
    def outputs(self) -> list[str]:
        """The log's answer columns, in order."""
        return list(self.output_columns) or [self.proba_column, "label", "threshold"]

    def to_env(self) -> str:
        return json.dumps({**asdict(self), "features": list(self.features), "output_columns": list(self.output_columns)})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "CaptureConfig | None":
        raw = (os.environ if env is None else env).get(CONFIG_ENV)
        if not raw:
            return None
        values = json.loads(raw)
        values["features"] = tuple(values["features"])
        values["output_columns"] = tuple(values.get("output_columns", ()))
        return cls(**values)


class Call:
    """One request as the hooks see it (filled on the request path, read by the writer thread)."""

    __slots__ = ("t", "request_id", "source", "content_type", "status", "latency_ms", "frame", "proba",
                 "n_rows", "refusal", "counted", "body", "sampled", "stamp")

    def __init__(self, t: float, request_id: str, source: str, content_type: str | None) -> None:
        self.t, self.request_id, self.source, self.content_type = t, request_id, source, content_type
        self.status, self.latency_ms = 0, 0.0
        self.frame: Any = None
        self.proba: Any = None
        self.n_rows = 0
        self.refusal: str | None = None
        self.counted = False  # in the Prometheus counters already (a retried write counts once)
        self.body: bytes | None = None  # a small JSON body, read again by the writer (cheaper than the frame)
        self.sampled: Any = None  # the rows of a large frame that were kept
        self.stamp: str | None = None  # `t` as ISO text (made once, by the writer)


@dataclass
class CaptureHealth:
    """A worker's counters (its status file; summed by `read_health`)."""

    pid: int = 0
    captured: int = 0  # requests queued
    written: int = 0  # requests written to the log
    rows_written: int = 0
    dropped: int = 0  # requests lost: the queue was full while the log could not be written
    write_failures: int = 0  # flushes that failed (their requests were retried)
    last_error: str | None = None
    max_flush_ms: float = 0.0  # the longest write of a worker's queue
    last_flush: str | None = None
    updated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome(status: int, refusal: str | None) -> str:
    """The kind of a request's answer: `ok`, `refused_input` (the dataset's rules: InputRefused),
    `refused_schema` (MLflow's schema check), `bad_request` (a body that does not parse),
    `unsupported_media_type`, `timeout`, `error` (the server's own failure)."""
    if status == 200:
        return "ok"
    if status == 504:
        return "timeout"
    if status >= 500:
        return "error"
    if status == 415:
        return "unsupported_media_type"
    if refusal == "InputRefused":
        return "refused_input"
    if refusal is not None:
        return "refused_schema"
    return "bad_request"


def _stored(value: Any) -> Any:
    """A value as SQLite keeps it: text as text, missing as NULL, else a double."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if v != v else v


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds")


class Recorder:
    """The queue and writer thread of one server process (see the module docstring)."""

    def __init__(self, config: CaptureConfig, armed: bool = False) -> None:
        from core.serving import metrics

        self.config = config
        self.kind = answers.for_task(config.task)  # how a served row becomes the log's answer columns
        self.armed = armed  # False in gunicorn's master (its warm-up request is not logged)
        self.metrics = metrics.load()  # Prometheus counters (core/serving/metrics.py), or None
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # ---- process life
    def _reset(self) -> None:
        self._queue: deque[Call] = deque()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._columns: list[str] | None = None
        self._features: list[str] = []
        self._order: list[int] | None = None
        self._version: str | None = None
        self._threshold: float | None = None
        self._last_prune = 0.0
        self._counter = 0
        self._rng = np.random.default_rng(self.config.seed + os.getpid())
        self.health = CaptureHealth(pid=os.getpid())
        self._last_warning = 0.0

    def _after_fork(self) -> None:
        """In a forked worker: its own queue, lock and (later) thread; armed."""
        self._reset()
        self.armed = True

    def _ensure_thread(self) -> None:
        if self._thread is None:
            # the event loop hands the GIL over at each system call and the writer may then hold it
            # for up to the switch interval (5 ms by default); a shorter one gives it back to the
            # requests sooner. Alone it made no visible difference in bench/serve.py (what did is
            # releasing the frames early, core/serving/capture.py); the final figures have it.
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
            self._thread.start()

    def next_id(self) -> str:
        self._counter += 1
        return f"{self.health.pid:x}-{self._counter:x}"

    # ---- the request path
    def submit(self, call: Call) -> None:
        """Queue one answered request (never blocks, never raises)."""
        if len(self._queue) >= self.config.max_queue:
            self._queue.popleft()
            self._dropped(1)
        self._queue.append(call)
        self.health.captured += 1
        if self._thread is None:
            self._ensure_thread()
        if call.source != DEFAULT_SOURCE and call.source in KNOWN_SOURCES:
            self._wake.set()  # the workbench waits for its own row: write it now (not for any tagged client)

    # ---- the writer thread
    def _run(self) -> None:
        due = time.monotonic() + self.config.flush_s
        while True:  # at a fixed rate: a slow write does not push the next one back
            self._wake.wait(max(due - time.monotonic(), 0.0))
            self._wake.clear()
            if time.monotonic() >= due:
                due += self.config.flush_s * max(1, int((time.monotonic() - due) // self.config.flush_s) + 1)
            self.flush()

    def flush(self) -> int:
        """Write what is queued (one transaction); the number of requests written (0 on failure:
        they stay queued). Called by the writer thread, and at the worker's exit."""
        with self._flush_lock:
            if not self._queue:
                return 0
            taken: list[Call] = []
            while self._queue:
                taken.append(self._queue.popleft())
            t0 = time.perf_counter()
            self._count(taken)
            try:
                con = self._connection()
                written, rows = self._write(con, taken)
                self.health.written += written
                self.health.rows_written += rows
                if self.metrics is not None:
                    self.metrics.rows_logged.inc(rows)
                self.health.last_flush = _iso(time.time())
                took = (time.perf_counter() - t0) * 1000.0
                self.health.max_flush_ms = round(max(self.health.max_flush_ms, took), 3)
                self._maybe_prune(con)
            except Exception as err:  # noqa: BLE001 - any failure of the log must not stop serving
                self._failed(err, taken)
                return 0
            finally:
                self._write_status()
            return written

    def _count(self, taken: list[Call]) -> None:
        """The Prometheus counters of requests not counted yet."""
        if self.metrics is None:
            return
        version = self._served()[0]
        fresh = [c for c in taken if not c.counted]
        for c in fresh:
            c.counted = True
        try:
            self.metrics.observe((outcome(c.status, c.refusal), version, c.source, c.latency_ms, c.n_rows)
                                 for c in fresh)
        except Exception as err:  # noqa: BLE001 - metrics never stop the log nor the server
            _log.warning("model server metrics: %s", err)

    def _dropped(self, n: int) -> None:
        self.health.dropped += n
        if self.metrics is not None and n:
            self.metrics.dropped.inc(n)

    def _failed(self, err: Exception, taken: list[Call]) -> None:
        self.health.write_failures += 1
        if self.metrics is not None:
            self.metrics.write_failures.inc()
        self.health.last_error = f"{type(err).__name__}: {err}"[:300]
        room = self.config.max_queue - len(self._queue)
        keep = taken[-room:] if room > 0 else []
        self._dropped(len(taken) - len(keep))
        self._queue.extendleft(reversed(keep))  # retried first, in order
        if self._con is not None:
            try:
                self._con.close()
            except sqlite3.Error:
                pass
            self._con, self._columns = None, None
        now = time.monotonic()
        if now - self._last_warning > 10.0:
            self._last_warning = now
            _log.warning("inference log capture: could not write %s (%s); %d request(s) kept to retry, "
                         "%d dropped so far", self.config.log_path, self.health.last_error, len(self._queue),
                         self.health.dropped)

    def _connection(self) -> sqlite3.Connection:
        from core.serving import inference_log

        if self._con is None:
            path = Path(self.config.log_path)
            if not path.exists():
                raise FileNotFoundError(f"the inference log {path} does not exist")
            self._con = inference_log.open_for_capture(path)
            have = set(inference_log.table_columns(self._con))
            self._features = [c for c in self.config.features if c in have]
            built = ["timestamp", *self._features, *self.config.outputs, "model_version", "latency_ms", "source"]
            self._columns = [c for c in built if c in have]
            self._order = None if self._columns == built else [built.index(c) for c in self._columns]
        return self._con

    def _served(self) -> tuple[str | None, float]:
        """(the version served, its threshold) from the state file of this server."""
        if self._version is None:
            try:
                state = json.loads(Path(self.config.state_path).read_text())
                if int(state.get("pid", -1)) in (os.getpid(), os.getppid()):
                    self._version = state.get("model_version")
                    self._threshold = state.get("threshold")
            except (OSError, ValueError, TypeError):
                pass
        threshold = self._threshold if isinstance(self._threshold, (int, float)) else self.config.threshold
        return self._version, float(threshold)

    def _values(self, call: Call) -> tuple[list[str], list[list[Any]]] | None:
        """(the column names, each scored row's values) of a request, or None when it has no rows.

        A small `dataframe_split` JSON body is read again from its text (a few microseconds, no
        pandas); any other request from the frame the model scored. The writer runs in the
        worker's process: every microsecond here is taken from its requests (the GIL), and pandas
        costs ~25 us even to turn a one-row frame into values."""
        if call.body is not None:
            try:
                split = json.loads(call.body).get("dataframe_split")
                if isinstance(split, dict) and isinstance(split.get("columns"), list) \
                        and isinstance(split.get("data"), list) and len(split["data"]) == call.n_rows:
                    return [str(c) for c in split["columns"]], split["data"]
            except (ValueError, AttributeError, TypeError):
                pass
            if call.frame is None:  # a body the model read otherwise than as written here
                return None
        frame = call.frame
        if frame is None:
            return None
        if not hasattr(frame, "columns"):  # `inputs` reach the model as records or columns, before its schema check
            try:
                frame = pd.DataFrame(frame)
            except (ValueError, TypeError):
                return None
        names = [str(c) for c in frame.columns]
        if len(frame) > self.config.sample_rows:  # sampled first: the writer never copies a whole batch
            idx = np.sort(self._rng.choice(len(frame), self.config.sample_rows, replace=False))
            call.sampled = idx
            frame = frame.iloc[idx]
        # the whole frame as objects, then columns picked in Python: `.loc[:, cols]` costs ~20x more
        # on a one-row frame (0.5 ms against 22 us here)
        return names, frame.to_numpy(dtype=object).tolist()

    def _rows(self, call: Call, version: str | None, threshold: float) -> list[tuple[Any, ...]]:
        """The `requests` rows of an answered request (a sample of a large one), in `self._columns` order."""
        if call.proba is None:
            return []
        got = self._values(call)
        if got is None:
            return []
        names, values = got
        p = np.asarray(call.proba, dtype="float64")
        if call.sampled is not None:  # the frame was sampled: the answers of those rows
            p = p[call.sampled]
        elif len(values) > self.config.sample_rows:
            idx = np.sort(self._rng.choice(len(values), self.config.sample_rows, replace=False))
            values, p = [values[i] for i in idx.tolist()], p[idx]
        # each row's answer columns (binary: probability, class, threshold)
        outputs = self.kind.log_rows(p if p.ndim == 2 else p.reshape(-1, 1), threshold)
        assert self._columns is not None
        features = self._features
        pos = [names.index(c) if c in names else None for c in features]
        stamp = call.stamp or _iso(call.t)
        tail = (version, call.latency_ms, call.source)
        out = []
        for vals, answer in zip(values, outputs):
            fv = [_stored(vals[j]) if j is not None else None for j in pos]
            out.append((stamp, *fv, *answer, *tail))
        if self._order is not None:  # a log whose columns are not in the usual order
            out = [tuple(row[i] for i in self._order) for row in out]
        return out

    def _write(self, con: sqlite3.Connection, taken: list[Call]) -> tuple[int, int]:
        from core.serving import inference_log

        version, threshold = self._served()
        items = []
        for k, call in enumerate(taken):
            if k and k % 64 == 0:
                time.sleep(0)  # let the worker's event loop have the GIL between chunks
            call.stamp = call.stamp or _iso(call.t)
            rows = self._rows(call, version, threshold) if call.status == 200 else []
            head = (call.stamp, call.request_id, version, int(call.status), outcome(call.status, call.refusal),
                    int(call.n_rows), float(call.latency_ms), call.source, self.health.pid, call.content_type)
            items.append((head, rows))
        assert self._columns is not None
        return inference_log.write_captured(con, self._columns, items)

    def _maybe_prune(self, con: sqlite3.Connection) -> None:
        from core.serving import inference_log

        now = time.monotonic()
        if now - self._last_prune < self.config.prune_every_s:
            return
        self._last_prune = now
        if self.config.max_rows or self.config.max_days:
            inference_log.prune(con, self.config.max_rows, self.config.max_days)

    def _write_status(self) -> None:
        self.health.updated = _iso(time.time())
        folder = Path(self.config.status_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".worker-{self.health.pid}.json.tmp"
            tmp.write_text(json.dumps(self.health.to_dict()))
            os.replace(tmp, folder / f"worker-{self.health.pid}.json")
        except OSError:
            pass  # the status file is a report; the log itself is what matters


def read_health(status_dir: Path) -> dict[str, Any]:
    """The capture's counters summed over the server's workers (their status files), with the
    last error seen and how many workers reported."""
    total = CaptureHealth()
    workers, errors = 0, []
    for path in sorted(Path(status_dir).glob("worker-*.json")) if Path(status_dir).is_dir() else []:
        try:
            one = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        workers += 1
        for key in ("captured", "written", "rows_written", "dropped", "write_failures"):
            setattr(total, key, getattr(total, key) + int(one.get(key, 0)))
        total.max_flush_ms = max(total.max_flush_ms, float(one.get("max_flush_ms", 0.0)))
        if one.get("last_error"):
            errors.append((one.get("updated") or "", one["last_error"]))
    out = {k: v for k, v in total.to_dict().items() if k not in ("pid", "last_flush", "updated")}
    out["workers"] = workers
    out["last_error"] = max(errors)[1] if errors else None
    return out
