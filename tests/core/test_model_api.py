"""The served model's API, on real `mlflow models serve` servers: whole numbers and decimals both
pass, bad rows are refused with HTTP 400 naming column and row, and no error body holds a stack
trace, an echo of the input or more than a few kilobytes."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pytest
import requests

from core import tracking
from core.config import Settings
from core.data import preparation
from core.modeling import model_io, preprocess, registry
from core.serving import server

SHOT = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}
MAX_ERROR_BYTES = 4096


@contextlib.contextmanager
def serving(model_uri: str, tracking_uri: str, log: Path) -> Iterator[str]:
    """`mlflow models serve` of `model_uri` on a free port, as anyone would run it: its
    /invocations address while it runs."""
    port = server.free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,  # uvicorn from this venv's bin
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
                                 "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        assert proc.poll() is None, log.read_text()[-3000:]
        yield url + "/invocations"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def champion_url(champion_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's champion (a logistic regression over Kobe's six numbers, logged as training
    logs it) served by `mlflow models serve`."""
    s = champion_settings
    uri = f"models:/{s.model_name}/{registry.champion(s).version}"
    with serving(uri, s.tracking_uri, tmp_path_factory.mktemp("champion-serve") / "serve.log") as url:
        yield url


def _split(settings: Settings, rows: list[list]) -> dict:
    return {"dataframe_split": {"columns": list(settings.features), "data": rows}}


def _refused(resp: requests.Response, *words: str) -> str:
    """The message of a small 400 answer without stack trace, holding each of `words`."""
    assert resp.status_code == 400, resp.text[:500]
    assert len(resp.content) <= MAX_ERROR_BYTES
    body = resp.json()
    assert "stack_trace" not in body and "Traceback" not in resp.text and "Failed to predict data" not in resp.text
    for word in words:
        assert word in body["message"], body["message"]
    return body["message"]


def test_whole_numbers_and_decimals_both_score_the_same(champion_settings: Settings, champion_url: str) -> None:
    s = champion_settings
    row = [SHOT[f] for f in s.features]
    ints = requests.post(champion_url, json=_split(s, [row]), timeout=10)
    floats = requests.post(champion_url, json=_split(s, [[float(v) for v in row]]), timeout=10)
    assert ints.status_code == floats.status_code == 200
    assert ints.json() == floats.json() and 0 < ints.json()["predictions"][0][1] < 1


def test_pyfunc_and_the_mlflow_cli_score_the_int64_test_file(champion_settings: Settings, tmp_path: Path) -> None:
    """The prepared test split holds int64 columns: the standard MLflow clients take it as it is."""
    s = champion_settings
    test = preparation.load_split(s, "test").loc[:, list(s.features)].head(30)
    assert (test.dtypes[["period", "shot_distance"]] == "int64").all()
    uri = f"models:/{s.model_name}/{registry.champion(s).version}"
    tracking.use(s)
    want = np.asarray(mlflow.pyfunc.load_model(uri).predict(test))[:, 1]
    _, model = registry.load_model(s)
    np.testing.assert_allclose(want, model_io.predict_proba(model, test, s.features), rtol=0, atol=1e-12)
    test.to_csv(tmp_path / "shots.csv", index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri}
    out = subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m", uri, "-i", str(tmp_path / "shots.csv"),
                          "-t", "csv", "--env-manager", "local", "-o", str(tmp_path / "out.json")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.asarray(json.loads((tmp_path / "out.json").read_text())["predictions"])[:, 1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("body", "words"), [
    ('{"dataframe_split": {"columns": COLS, "data": [[34.0, -118.2, 5, 2, 0, 12], [null, -118.2, 5, 2, 0, 12]]}}',
     ["lat: empty (NaN) values in 1 row, at row 1"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[NaN, -118.2, 5, 2, 0, 12]]}}',
     ["lat: empty (NaN) values in 1 row, at row 0"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[34.0, Infinity, 5, 2, 0, 12]]}}',
     ["lon: infinite values in 1 row, at row 0"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[34.0, -118.2, 5, Infinity, 0, 12]]}}', ["period"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[34.0, -118.2, 5, null, 0, 12]]}}', ["period"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[34.0, -118.2, 5, 2, 0, 12], [34.0, -118.2, 5, 99, 0, 12]]}}',
     ["period: out-of-domain values in 1 row (period must be one of 1, 2, 3, 4, 5, 6, 7), at row 1"]),
    ('{"dataframe_split": {"columns": COLS, "data": [[-999, -118.2, 5, 2, 0, 12]]}}',
     ["lat: out-of-domain values in 1 row (lat must be a finite number from -90 to 90), at row 0"]),
    ('{"dataframe_split": {"columns": ["lon", "period"], "data": [[-118.2, 2]]}}',
     ["missing column(s): lat, minutes_remaining, playoffs, shot_distance"]),
    ('{"dataframe_split": {"columns": COLS, "data": []}}', ["there are no rows to score"]),
], ids=["null", "NaN", "Infinity", "Infinity-whole", "null-whole", "period-99", "lat-999", "missing-columns",
        "empty-split"])
def test_bad_rows_are_refused_naming_column_and_row(champion_settings: Settings, champion_url: str, body: str,
                                                   words: list[str]) -> None:
    body = body.replace("COLS", json.dumps(list(champion_settings.features)))
    resp = requests.post(champion_url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    _refused(resp, *words)


def test_a_10_mb_bad_csv_and_an_empty_split_get_small_answers(champion_url: str) -> None:
    url = champion_url
    garbage = "lat,lon\n" + "zz,yy,ww,1,2,3\n" * 700_000  # 10.5 MB, the wrong columns
    assert len(garbage) > 10_000_000
    resp = requests.post(url, data=garbage, headers={"Content-Type": "text/csv"}, timeout=60)
    message = _refused(resp, "missing column(s): minutes_remaining")
    assert "zz" not in message
    header = ",".join(f"c{i}" for i in range(200_000)) + "\n" + "1,2\n"  # a 1.5 MB header line
    assert len(header) > 1_000_000
    _refused(requests.post(url, data=header, headers={"Content-Type": "text/csv"}, timeout=60), "missing column(s)")
    resp = requests.post(url, json={"dataframe_split": {}}, timeout=10)
    assert 400 <= resp.status_code < 500 and len(resp.content) <= MAX_ERROR_BYTES and "Traceback" not in resp.text



def test_the_workbench_batch_client_sends_parquet_and_gets_the_pipelines_answers(champion_settings: Settings,
                                                                                 champion_url: str) -> None:
    """`Client.predict_proba` (the batch path of `apply`): whole numbers sent as int64, which the
    `long` columns take; the same probabilities as in-process."""
    from core.serving import client as serving_client

    s = champion_settings
    test = preparation.load_split(s, "test").head(3000)
    frame = model_io.feature_frame(test, s.features)  # doubles, as batches hold them
    with serving_client.Client(champion_url.rsplit("/", 1)[0], features=s.features) as c:
        got = c.predict_proba(frame)
        assert c._whole_as_int  # no fallback was needed
    _, model = registry.load_model(s)
    np.testing.assert_allclose(got, model_io.predict_proba(model, test, s.features), rtol=0, atol=1e-12)
    bad = frame.assign(period=frame["period"].where(frame.index != frame.index[7], 9.0))
    with pytest.raises(serving_client.PredictionError, match="HTTP 400.*period: out-of-domain values in 1 row"):
        serving_client.Client(champion_url.rsplit("/", 1)[0], features=s.features).predict_proba(bad)

# --------------------------------------------------------------------------- categories
@pytest.fixture(scope="module")
def category_server(prepared_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """(url, features) of a model on Kobe's `extended` features (three categorical ones),
    logged as training logs it, served by a real `mlflow models serve` on a free port."""
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    from tests.conftest import make_settings

    s = make_settings(tmp_path_factory.mktemp("categories"))
    spec = prepared_settings.dataset.with_feature_set("extended")
    train = preparation.load_split(prepared_settings, "train")
    features, cats = spec.features, spec.categorical_features
    model = Pipeline([*preprocess.preprocessor(spec, 0), ("model", LGBMClassifier(
        n_estimators=20, num_leaves=6, verbosity=-1, n_jobs=1))])
    model.fit(model_io.feature_frame(train, features, cats), train[s.target])
    with mlflow.start_run(experiment_id=tracking.use(s)):
        info = model_io.log_model(model, features, train, rules=spec.rules, categorical=cats)
    with serving(info.model_uri, s.tracking_uri, s.home / "serve.log") as url:
        yield url, features, train, (model, cats)


def test_unknown_categories_are_refused_unless_allowed(category_server) -> None:
    url, features, train, _ = category_server
    rows = train.loc[:, list(features)].head(3).astype(object)
    good = {"dataframe_split": {"columns": list(features), "data": rows.values.tolist()}}
    ok = requests.post(url, json=good, timeout=10)
    assert ok.status_code == 200, ok.text[:500]
    unseen = rows.copy()
    unseen.iloc[2, list(features).index("action_type")] = "Moon Shot " + "x" * 5000
    body = {"dataframe_split": {"columns": list(features), "data": unseen.values.tolist()}}
    message = _refused(requests.post(url, json=body, timeout=10), "action_type: categories never seen in training",
                       "at row 2", "allow_unseen")
    assert "x" * 100 not in message  # the value is named, cut short: no echo of the request
    allowed = requests.post(url, json={**body, "params": {"allow_unseen": True}}, timeout=10)
    assert allowed.status_code == 200 and len(allowed.json()["predictions"]) == 3
    empty = rows.copy()
    empty.iloc[0, list(features).index("shot_zone_area")] = None
    _refused(requests.post(url, json={"dataframe_split": {"columns": list(features), "data": empty.values.tolist()}},
                           timeout=10), "shot_zone_area: empty values in 1 row, at row 0")


def test_probabilities_over_http_equal_the_pipelines(category_server) -> None:
    url, features, train, (model, cats) = category_server
    rows = train.loc[:, list(features)].head(200)
    body = {"dataframe_split": {"columns": list(features), "data": rows.astype(object).values.tolist()}}
    got = np.asarray(requests.post(url, json=body, timeout=30).json()["predictions"])
    want = model.predict_proba(model_io.feature_frame(rows, features, cats))
    assert got.shape == (200, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_the_batch_client_falls_back_to_doubles_for_a_model_that_declares_them(champion_settings: Settings,
                                                                               tmp_path: Path) -> None:
    """A model logged before whole-number features were declared `long` (here: plain
    `mlflow.sklearn.log_model`, every column `double`) refuses int64 columns in a parquet body;
    the client sends doubles instead, once, and keeps doing so."""
    from mlflow.models import infer_signature

    from core.serving import client as serving_client

    s = champion_settings
    _, model = registry.load_model(s)
    test = preparation.load_split(s, "test").head(500)
    x = model_io.feature_frame(test, s.features)
    with mlflow.start_run(experiment_id=tracking.use(s)):
        info = mlflow.sklearn.log_model(model, name="doubles", signature=infer_signature(x, model.predict_proba(x)),
                                        pyfunc_predict_fn="predict_proba")
    with serving(info.model_uri, s.tracking_uri, tmp_path / "serve.log") as url:
        with serving_client.Client(url.rsplit("/", 1)[0], features=s.features) as c:
            got = c.predict_proba(x)
            assert not c._whole_as_int
            again = c.predict_proba(x.head(10))
    np.testing.assert_allclose(got, model.predict_proba(x)[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(again, got[:10], rtol=0, atol=0)
