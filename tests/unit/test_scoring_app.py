"""The model server's ASGI app (core/serving/scoring_app.py): its JSON answer writer against
MLflow's own, and one request through the app as a worker serves it."""
from __future__ import annotations

import asyncio
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import scoring_server

from core.serving import scoring_app

# MLflow's own writer (kept by the app once an app in this process replaced it)
MLFLOW_WRITER = scoring_app.MLFLOW_PREDICTIONS_TO_JSON or scoring_server.predictions_to_json
assert MLFLOW_WRITER.__module__ == "mlflow.pyfunc.scoring_server"


def written(writer, raw, metadata=None) -> str:
    out = io.StringIO()
    writer(raw, out, metadata) if metadata is not None else writer(raw, out)
    return out.getvalue()


@pytest.mark.parametrize("raw", [
    np.array([[0.25, 0.75], [1e-17, 1 - 1e-17], [1 / 3, 2 / 3]]),  # probabilities, long reprs included
    np.random.default_rng(0).random((500, 2)),
    np.array([0, 1, 1], dtype=np.int64),
    np.array([1.5, np.nan, np.inf]),  # NaN and Infinity as MLflow writes them
    pd.DataFrame({"p": [0.1, 0.9], "label": ["a", "b"]}),
    pd.Series([0.2, 0.8]),
    {"proba": np.array([0.1, 0.2]), "n": np.int64(2)},
    [np.float32(0.5), np.int32(3), "x", None],
])
def test_the_answer_is_the_same_text_as_mlflows(raw) -> None:
    assert written(scoring_app.predictions_to_json, raw) == written(MLFLOW_WRITER, raw)
    meta = {"model_version": "3"}
    assert written(scoring_app.predictions_to_json, raw, meta) == written(MLFLOW_WRITER, raw, meta)


def test_metadata_may_not_hide_the_predictions() -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="cannot contain 'predictions'"):
        written(scoring_app.predictions_to_json, np.array([1.0]), {"predictions": 1})


def call(app, body: bytes, content_type: str) -> tuple[int, bytes]:
    """One POST /invocations through the ASGI app, as the server's worker runs it."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/invocations", "method": "POST",
             "headers": [(b"content-type", content_type.encode())]}
    # in a thread of its own: a test before this one (Playwright's sync API) may leave this
    # thread's event loop running, and asyncio.run refuses to start inside a running loop
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_large_request_through_the_app_answers_mlflows_json(tmp_path) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(x, (x["a"] + rng.normal(size=200) > 0).astype(int))
    mlflow.sklearn.save_model(model, tmp_path / "m", pyfunc_predict_fn="predict_proba", pip_requirements=[],
                              signature=mlflow.models.infer_signature(x, model.predict_proba(x)))
    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    app = scoring_app.scoring_app(pyfunc)
    assert scoring_server.predictions_to_json is scoring_app.predictions_to_json  # the app's writer answers
    batch = pd.DataFrame({"a": rng.normal(size=20_000), "b": rng.normal(size=20_000)})  # above INLINE_BYTES
    body = batch.to_parquet(index=False)
    assert len(body) > scoring_app.INLINE_BYTES
    status, answer = call(app, body, "application/vnd.apache.parquet")
    assert status == 200
    got = np.asarray(json.loads(answer)["predictions"])
    np.testing.assert_allclose(got, model.predict_proba(batch), rtol=0, atol=0)
    assert answer.decode() == written(MLFLOW_WRITER, model.predict_proba(batch))  # byte for byte


# --------------------------------------------------------------------------- a client's mistakes (issue 28, item 6)
@pytest.fixture(scope="module")
def small_app(tmp_path_factory: pytest.TempPathFactory):
    """The server's app (with its bounded error answers) on a two-feature logistic regression."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from core.serving.asgi import with_bounded_errors

    rng = np.random.default_rng(2)
    x = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    folder = tmp_path_factory.mktemp("small") / "m"
    mlflow.sklearn.save_model(model, folder, pyfunc_predict_fn="predict_proba", pip_requirements=[],
                              signature=mlflow.models.infer_signature(x, model.predict_proba(x)))
    return with_bounded_errors(scoring_app.scoring_app(mlflow.pyfunc.load_model(str(folder))))


BIG = "9" * 5_000  # above Python's 4,300 digits for an int read from text


@pytest.mark.parametrize("body", [
    b"[" * 100_000,  # nested deeper than the JSON reader's recursion limit
    b'{"dataframe_split": {"columns": ["a", "b"], "data": ' + b"[" * 100_000 + b"]}}",
    b'{"a":' * 100_000,
    f'{{"dataframe_split": {{"columns": ["a", "b"], "data": [[{BIG}, 1]]}}}}'.encode(),
    f'{{"inputs": {{"a": [{BIG}], "b": [1]}}}}'.encode(),
    f'{{"dataframe_split": {{"columns": ["a", "b"], "data": [[1, 1]]}}, "params": {{"p": {BIG}}}}}'.encode(),
    b'{"dataframe_split": {"columns": [{"a": 1}, "b"], "data": [[1, 1]]}}',  # a column name that is an object
], ids=["nested-array", "nested-data", "nested-object", "huge-int", "huge-int-inputs", "huge-int-params",
        "object-column"])
def test_a_malformed_body_is_the_clients_mistake_not_a_server_error(small_app, body: bytes) -> None:
    status, answer = call(small_app, body, "application/json")
    assert status == 400, answer[:300]
    error = json.loads(answer)
    assert set(error) == {"error_code", "message"} and error["error_code"] == "BAD_REQUEST"
    assert len(answer) < 1_000 and BIG not in error["message"] and "Traceback" not in error["message"]


def test_a_good_body_is_still_answered(small_app) -> None:
    status, answer = call(small_app, b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 1]]}}',
                          "application/json")
    assert status == 200 and len(json.loads(answer)["predictions"]) == 1
