"""The model server's own process: MLflow's scoring server for one model folder, loaded once.

`core/serving/server.py` runs it as

    python -m gunicorn --preload -k core.serving.worker.Worker ... 'core.serving.asgi:create_app()'

`create_app` builds the very app `mlflow models serve` runs (`mlflow.pyfunc.scoring_server.init`
on the pyfunc model, with its /ping, /health, /version and /invocations, its input parsing,
error answers and request timeout) and adds response headers: `Server-Timing: app;dur=<ms>`
(the W3C header for a server's own time), from the request reaching the app to its answer;
`X-Workbench-Model: <name>/<version>` and `X-Workbench-Dataset: <name>` (what it serves, so that
a client can refuse an answer from another dataset's server), and
the capture of every request in the inference log (`core/serving/capture.py`). With
`--preload` gunicorn's master process imports MLflow and loads the model once, then forks the
uvicorn workers, which share those pages: `mlflow models serve` instead starts the mlflow CLI,
then uvicorn, whose workers are *spawned* and each import MLflow and load the model again
(bench/RESULTS.md has the start times of both).
"""
from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from core.serving.schema import served_without_casts
from core.serving.scoring_app import scoring_app

# The model folder to serve: the variable MLflow's own `scoring_server.app` module reads.
MODEL_PATH_ENV = "__pyfunc_model_path__"
TIMING_HEADER = b"server-timing"

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def with_server_timing(app: ASGIApp, extra: tuple[tuple[bytes, bytes], ...] = ()) -> ASGIApp:
    """`app` answering every HTTP request with a `Server-Timing: app;dur=<ms>` header, and the
    `extra` headers (made once: what the server serves, `identity_headers`).

    A plain ASGI wrapper (a few microseconds a request) rather than a FastAPI/Starlette
    `@app.middleware("http")`, which runs the request through an extra task and stream.
    """

    async def timed(scope: Scope, receive: Callable[[], Awaitable[Message]],
                    send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message.get("type") == "http.response.start":
                took = f"app;dur={(time.perf_counter() - t0) * 1000.0:.3f}".encode("ascii")
                message = {**message, "headers": [*message.get("headers", ()), (TIMING_HEADER, took), *extra]}
            await send(message)

        await app(scope, receive, send_timed)

    return timed


ERROR_MESSAGE_CHARS = 500  # an error answer's message is cut to this (the request is never repeated whole)


def bounded_error(body: bytes, status: int) -> bytes:
    """An error answer as a small JSON object: MLflow's `error_code` and `message`, the message
    cut to ERROR_MESSAGE_CHARS (MLflow quotes the request in some of its refusals: an invalid
    JSON body, a text value in a number column, a CSV that does not parse), and never its
    `stack_trace` (paths and code of the server)."""
    import json

    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code, message = str(parsed.get("error_code") or "BAD_REQUEST"), str(parsed.get("message") or "")
    else:
        code, message = ("BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"), body.decode("utf-8", "replace")
    if "Traceback (most recent call last)" in message:
        message = message.split("Traceback (most recent call last)")[0].rstrip() or "the request could not be read"
    if len(message) > ERROR_MESSAGE_CHARS:
        message = (message[:ERROR_MESSAGE_CHARS] + f" ... ({len(message) - ERROR_MESSAGE_CHARS:,} characters cut; "
                   "the request is not repeated here)")
    return json.dumps({"error_code": code, "message": message}).encode("utf-8")


def with_bounded_errors(app: ASGIApp) -> ASGIApp:
    """`app` whose error answers (HTTP 4xx/5xx) are `bounded_error`'s: a plain ASGI wrapper that
    holds an error answer's body until it is complete (successful answers pass straight through)."""

    async def bounded(scope: Scope, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        held: dict[str, Any] = {}

        async def send_bounded(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start" and int(message.get("status", 200)) >= 400:
                held["start"], held["body"] = message, b""
                return
            if kind == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body", False):
                    return
                start = held.pop("start")
                body = bounded_error(held.pop("body"), int(start["status"]))
                headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in (b"content-length",
                                                                                           b"content-type")]
                await send({**start, "headers": [*headers, (b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode("ascii"))]})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await app(scope, receive, send_bounded)

    return bounded


def identity_headers(env: Mapping[str, str] | None = None) -> tuple[tuple[bytes, bytes], ...]:
    """The `X-Workbench-Model: <name>/<version>` and `X-Workbench-Dataset: <name>` headers of every
    answer, from what the starting process put in the environment (`core/serving/server.py`);
    none when it did not (a server started some other way)."""
    from core.serving.client import DATASET_ENV, MODEL_ENV, ServerIdentity

    env = os.environ if env is None else env
    model, dataset = env.get(MODEL_ENV), env.get(DATASET_ENV)
    if not model or not dataset:
        return ()
    name, _, version = model.rpartition("/")
    return tuple(ServerIdentity(dataset, name, version or None).headers())


def create_app(wait_s: float = 120.0) -> ASGIApp:
    """MLflow's scoring server app for the model folder in `__pyfunc_model_path__`, timed.

    MLflow is imported first; the folder may appear only meanwhile (the starting process puts
    it in place in one step while this one imports), so it is waited for up to `wait_s`.
    """
    t0 = time.perf_counter()
    from mlflow.pyfunc import scoring_server

    t_import = time.perf_counter()
    folder = Path(os.environ[MODEL_PATH_ENV])
    deadline = time.monotonic() + wait_s
    while not folder.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"No model appeared at {folder} within {wait_s:g} s.")
        time.sleep(0.01)
    t_folder = time.perf_counter()
    # a symlink to the store's folder is followed first: MLflow refuses paths that leave the given one
    # `suppress_warnings`: MLflow's comparison of the model's requirements with the installed
    # packages (about 1 s of a start here: it maps every installed package to its modules) is
    # skipped; the server runs in the environment the workbench trained the model in
    model = scoring_server.load_model(str(folder.resolve()), suppress_warnings=True,
                                      **scoring_server_config())
    served_without_casts(model)  # the model's own rules check every request (core/serving/schema.py)
    t_load = time.perf_counter()
    from core.serving import capture

    # every answered request queued for the inference log (when the starting process asked for it)
    captured, recorder = capture.install(with_bounded_errors(scoring_app(model)), model)
    if recorder is not None:
        capture.RECORDER.append(recorder)
    app = with_server_timing(captured, identity_headers())  # header bytes made once, here
    warmed = warm_up(app, folder)
    # what the start spent, in serve.log (gunicorn's error log)
    logging.getLogger("gunicorn.error").info(
        "model server: MLflow imported in %.2f s, model files waited for %.2f s, model loaded in %.2f s, "
        "warm-up %s in %.2f s", t_import - t0, t_folder - t_import, t_load - t_folder,
        "done" if warmed else "skipped", time.perf_counter() - t_load)
    # what is loaded now stays out of the garbage collector's passes: the forked workers then
    # do not write to (and so copy) the pages they share with this process when it runs
    gc.freeze()
    return app


def scoring_server_config() -> dict[str, Any]:
    """The model configuration `mlflow models serve` passes to the model, from the same variable
    (`load_model_with_mlflow_config`'s), when it is set."""
    import json

    from mlflow.pyfunc.scoring_server import SERVING_MODEL_CONFIG

    text = os.environ.get(SERVING_MODEL_CONFIG)
    return {"model_config": json.loads(text)} if text else {}


def warm_up(app: ASGIApp, folder: Path) -> bool:
    """Send the model's own serving input example through the whole app once (MLflow's
    middleware, routing, input parsing, prediction), before the workers are forked: the imports
    and first-call set-up then happen once here instead of in each worker's first request (about
    70 ms here). False when the model has no example or it does not score (nothing else changes)."""
    import asyncio

    example = folder / "serving_input_example.json"
    if not example.is_file():
        return False
    body = example.read_bytes()
    status: list[int] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/invocations", "raw_path": b"/invocations", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message.get("type") == "http.response.start":
            status.append(int(message["status"]))

    asyncio.run(app(scope, receive, send))
    return status == [200]
