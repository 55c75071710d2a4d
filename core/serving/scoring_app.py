"""MLflow's scoring protocol for one loaded pyfunc model, as a plain ASGI app.

Every request is answered by MLflow's own scoring function, `mlflow.pyfunc.scoring_server.invocations`
(its content types, input parsing, `params`, prediction, JSON answer and error codes); /ping,
/health and /version answer as MLflow's do. What is not MLflow's is the routing around it.
`mlflow.pyfunc.scoring_server.init` builds a FastAPI app whose request goes through Starlette's
`BaseHTTPMiddleware` (a second task and a memory stream per request, for its timeout), FastAPI's
router and exception layers, and a thread hop (`asyncio.to_thread`) for the scoring itself: on a
single-row request that is more time than the scoring (bench/RESULTS.md). Here a small request is
scored on the worker's event loop (a worker is a process; a request of a few rows holds its loop
for about a millisecond), and a large one in a thread under MLflow's request timeout, as before.

A body MLflow cannot read is the client's mistake: MLflow answers 400 for the refusals it expects,
and any other error raised while it reads the body (JSON nested deeper than the reader's
recursion limit, an integer of more than 4,300 digits, an object as a column name) is answered
400 `BAD_REQUEST` here too, not 500 (`unreadable`); 500 stays for the server's own failures.
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import traceback
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INLINE_BYTES = 64 * 1024  # bodies up to this are scored on the event loop; larger ones in a thread
JSON = b"application/json"
MLFLOW_PREDICTIONS_TO_JSON: Callable[..., None] | None = None  # MLflow's writer, once `scoring_app` replaced it


async def _answer(send: Send, status: int, body: bytes, content_type: bytes = JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode("ascii"))]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode("utf-8")


def _reading_functions() -> frozenset[Any]:
    """The code of MLflow's functions that read a request body into the model's input (JSON, CSV, parquet)."""
    from mlflow.pyfunc import scoring_server

    names = ("_parse_json_data", "_decode_json_input", "infer_and_parse_data", "parse_csv_input", "parse_parquet_input")
    return frozenset(f.__code__ for f in (getattr(scoring_server, n, None) for n in names) if hasattr(f, "__code__"))


def unreadable(err: BaseException) -> bool:
    """True when `err` was raised while MLflow read the request body (before the model was called):
    a body nested deeper than the JSON reader's recursion limit, an integer of more than 4,300 digits,
    a column name that is an object... The client's mistake (HTTP 400), not the server's failure;
    MLflow itself answers 400 for the refusals it expects, and a model's own failure inside
    `predict` reaches here as an MlflowException."""
    codes = _reading_functions()
    return any(frame.f_code in codes for frame, _ in traceback.walk_tb(err.__traceback__))


def unreadable_reason(err: BaseException) -> str:
    """What was wrong with an unreadable body, in a few words (never a copy of the body)."""
    if isinstance(err, RecursionError):
        return "its JSON is nested too deeply."
    text = str(err).split(";")[0][:200]  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
    return f"{text} ({type(err).__name__})." if text else f"{type(err).__name__}."


def predictions_to_json(raw_predictions: Any, output: Any, metadata: dict | None = None) -> None:
    """MLflow's `scoring_server.predictions_to_json`, the same bytes written about 5x faster.

    MLflow's writes with `json.dump(..., output)`, and `json.dump` never uses the json module's C
    encoder (only `json.dumps` does, in one shot): 50,000 answers of two probabilities took 0.7 s
    of a 0.8 s request (bench/RESULTS.md, issue 19 session 7). Here the text is made by
    `json.dumps` with MLflow's own `NumpyEncoder` and then written; the values' text is the same
    (both encoders write a float with `float.__repr__`), checked in tests/unit/test_scoring_app.py.
    Installed by `scoring_app` in the model server's workers only.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
    from mlflow.pyfunc.scoring_server import _get_jsonable_obj
    from mlflow.utils.proto_json_utils import NumpyEncoder

    if metadata and "predictions" in metadata:
        raise MlflowException("metadata cannot contain 'predictions' key", error_code=INVALID_PARAMETER_VALUE)
    # the answer's lists (one per row) hold numbers only: no cycles for the garbage collector to
    # find, whose passes over a large answer's lists cost up to half of its writing (a
    # 200,000-row answer of three numbers a row: bench/task_serve.py)
    collecting = gc.isenabled()
    gc.disable()
    try:
        predictions = _get_jsonable_obj(raw_predictions, pandas_orient="records")
        text = json.dumps({"predictions": predictions, **(metadata or {})}, cls=NumpyEncoder)
        del predictions
    finally:
        if collecting:
            gc.enable()
    output.write(text)


def scoring_app(model: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app serving `model` (a loaded `mlflow.pyfunc.PyFuncModel`) by MLflow's protocol."""
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT, MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server
    from mlflow.version import VERSION

    input_schema = model.metadata.get_input_schema()
    # `invocations` looks the writer up in its module when it answers: the same JSON, faster
    global MLFLOW_PREDICTIONS_TO_JSON
    if scoring_server.predictions_to_json is not predictions_to_json:
        MLFLOW_PREDICTIONS_TO_JSON = scoring_server.predictions_to_json  # kept: the tests compare with it
        scoring_server.predictions_to_json = predictions_to_json
    os.environ[_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name] = "true"  # as MLflow's own server says it
    timeout = MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()

    def score(data: bytes, content_type: str) -> tuple[int, bytes, bytes]:
        try:
            result = scoring_server.invocations(data, content_type, model, input_schema)
        except MlflowException as err:
            return err.get_http_status_code(), err.serialize_as_json().encode("utf-8"), JSON
        except Exception as err:  # an error outside MLflow's: the request's when it came from reading it
            if unreadable(err):
                return 400, _error("BAD_REQUEST", f"The request body could not be read: {unreadable_reason(err)}"), JSON
            # what MLflow's server answers for its own failure (no trace sent)
            return 500, _error("INTERNAL_ERROR", "the model server could not score this request"), JSON
        mimetype = result.mimetype.encode("ascii")
        return result.status, result.response.encode("utf-8"), mimetype

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _answer(send, 405, _error("METHOD_NOT_ALLOWED", "send scoring requests with POST"))
                return
            try:
                data = await _body(receive)
            except ConnectionError:
                return
            content_type = ""
            for key, value in scope["headers"]:
                if key == b"content-type":
                    content_type = value.decode("latin-1")
                    break
            if len(data) <= INLINE_BYTES:
                status, body, mimetype = score(data, content_type)
            else:
                try:
                    status, body, mimetype = await asyncio.wait_for(asyncio.to_thread(score, data, content_type),
                                                                    timeout=timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    status, body, mimetype = 504, b"Request processing time exceeded limit", JSON
            await _answer(send, status, body, mimetype)
        elif path in ("/ping", "/health") and method in ("GET", "HEAD"):
            await _answer(send, 200, b"\n")
        elif path == "/version" and method in ("GET", "HEAD"):
            await _answer(send, 200, VERSION.encode("ascii"))
        else:
            await _answer(send, 404, _error("NOT_FOUND", f"no such address: {path} (the model server answers "
                                                         "/invocations, /ping, /health and /version)"))

    return app
