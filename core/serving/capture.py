"""The model server's capture: every request to /invocations it answers, from any client and in any
of MLflow's input formats, recorded in the inference log (`core/serving/inference_log.py`).

Two thin hooks in the server process (`core/serving/asgi.py` installs them):
- `with_capture(app, recorder)`, a plain ASGI wrapper: per request the time, the server's
  latency (to the answer's start, as the `Server-Timing` header), the HTTP status, the source
  (header `X-Workbench-Source`, else `http`) and the request id (header `X-Request-Id`, else
  one made here), echoed in the answer's `X-Workbench-Capture` header;
- `wrap_predict(model)`: the loaded pyfunc model's `predict`, which MLflow's scoring function
  calls with the parsed DataFrame (whatever the format: dataframe_split/records, inputs, CSV,
  parquet), keeps a reference to that frame and to the probabilities, or the refusal's kind. A
  small `dataframe_split` body is kept instead of its frame (the writer reads the rows again
  from the text; the frame is released on the request path: bench/RESULTS.md, issue 20).

Nothing is written on the request path: a request puts one small record in its worker's
in-memory queue (a few microseconds). A thread of each worker (started on the worker's first
request, never in gunicorn's master, which forks the workers after loading the model) takes the
queue every `flush_s` seconds (0.25 s by default), samples at most `sample_rows` rows of a large
request, and writes it in one SQLite transaction (WAL, a busy timeout for the other workers). If that fails,
the request was answered anyway: the records stay queued for the next try (up to `max_queue`
records, then the oldest are dropped), and the failures and drops are counted in the worker's
status file (`<runtime>/capture/worker-<pid>.json`) and said in serve.log. `kill -9` loses the
queue: the last `flush_s` seconds and the write under way (well under a second here, also at a
load of 4 on 2 cores: tests/core/test_capture.py).

The server learns the version it serves from the state file the starting process writes
(`serve.json`, with the version's threshold), read by the writer thread, not on the request path.
"""
from __future__ import annotations

import contextvars
import time
from typing import Any, Awaitable, Callable

from core.serving.recorder import (  # noqa: F401 (the capture's API)
    CONFIG_ENV, DEFAULT_SOURCE, STATUS_DIR, Call, CaptureConfig, CaptureHealth, Recorder, outcome, read_health)

SOURCE_HEADER = b"x-workbench-source"
REQUEST_ID_HEADER = b"x-request-id"
CAPTURED_HEADER = b"x-workbench-capture"  # in the answer: the request id under which it is logged
MAX_SOURCE_CHARS = 40
MAX_KEPT_BODY = 64 * 1024  # a JSON body up to this is kept for the writer, which reads its rows again

_current: contextvars.ContextVar["Call | None"] = contextvars.ContextVar("workbench_capture_call", default=None)

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


# --------------------------------------------------------------------------- the hooks
def with_capture(app: ASGIApp, recorder: Recorder, path: str = "/invocations") -> ASGIApp:
    """`app` whose answers to `path` are queued in `recorder` (see the module docstring)."""

    async def captured(scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or scope.get("path") != path or not recorder.armed:
            await app(scope, receive, send)
            return
        t0 = time.perf_counter()
        source = request_id = content_type = None
        for key, value in scope.get("headers", ()):
            if key == SOURCE_HEADER:
                source = value.decode("latin-1")[:MAX_SOURCE_CHARS]
            elif key == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:64]
            elif key == b"content-type":
                content_type = value.decode("latin-1")[:100]
        call = Call(time.time(), request_id or recorder.next_id(), source or DEFAULT_SOURCE, content_type)
        token = _current.set(call)
        tag = (CAPTURED_HEADER, call.request_id.encode("latin-1"))
        chunks: list[bytes] = []
        keep = content_type is not None and content_type.startswith("application/json")

        async def receive_kept() -> Message:
            message = await receive()
            if keep and message.get("type") == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def send_captured(message: Message) -> None:
            if message.get("type") == "http.response.start":
                call.latency_ms = (time.perf_counter() - t0) * 1000.0
                call.status = int(message.get("status", 0))
                message = {**message, "headers": [*message.get("headers", ()), tag]}
            await send(message)

        try:
            await app(scope, receive_kept if keep else receive, send_captured)
        finally:
            _current.reset(token)
            if chunks:
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if len(body) <= MAX_KEPT_BODY and b'"dataframe_split"' in body:
                    # the writer reads the rows again from the text: the frame goes now, on the
                    # request path as without the capture (held until the write, frames cost the
                    # worker's garbage collector and their release 0.3 ms a request on average)
                    call.body, call.frame = body, None
            if call.status == 0:  # no answer started (the client went away)
                call.latency_ms = (time.perf_counter() - t0) * 1000.0
                call.status = 499
            try:
                recorder.submit(call)
            except Exception:  # noqa: BLE001 - the capture never fails a request
                recorder.health.dropped += 1  # (not through the counters, which may be what failed)

    return captured


def wrap_predict(model: Any) -> None:
    """Make `model.predict` (a loaded pyfunc model) note the parsed frame, the probabilities or
    the refusal in the current request's record (nothing without one: the warm-up, in-process use)."""
    inner = model.predict

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        call = _current.get()
        if call is None:
            return inner(data, params=params)
        try:
            call.n_rows = len(data)
        except TypeError:
            call.n_rows = 0
        try:
            out = inner(data, params=params)
        except Exception as err:
            call.refusal = type(err).__name__
            raise
        call.frame, call.proba = data, out
        return out

    predict.__doc__ = inner.__doc__
    model.predict = predict


def install(app: ASGIApp, model: Any, config: CaptureConfig | None = None) -> tuple[ASGIApp, Recorder | None]:
    """`app` with the capture (and `model.predict` wrapped) when a configuration is given (else
    as it is): (the app, the recorder)."""
    config = config or CaptureConfig.from_env()
    if config is None:
        return app, None
    recorder = Recorder(config)
    wrap_predict(model)
    app = with_capture(app, recorder)
    if recorder.metrics is not None:
        from core.serving.metrics import with_metrics

        app = with_metrics(app)
    return app, recorder


RECORDER: list[Recorder] = []  # the process's recorder, for the worker's last flush at exit


def flush_at_exit() -> None:
    """Write what the worker still holds (gunicorn's worker calls it when it stops)."""
    for recorder in RECORDER:
        if recorder.armed:
            recorder.flush()
