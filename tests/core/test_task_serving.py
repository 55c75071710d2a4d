"""Serving and scoring a multiclass and a regression champion (issue 34): the logged model carries
its task (`code/task.json`), the served answer is the pipeline's own (k class probabilities;
prediction, lower, upper) in process, under a stock `mlflow models serve` and under the
workbench's server, and `predict` / `apply` print and write each task's fields through the real
command line. Bad rows are refused as for binary models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from core.data import preparation
from core.modeling import model_io, pyfunc_model
from core.serving import client, inference_log, server
from tests.conftest import ROOT
from tests.core.test_model_api import serving
from tests.task_homes import HALFWIDTH, LEVEL, TaskHome, make_task_home

TASKS = ("multiclass", "regression")
WHOLE = {"multiclass": ("leaves",), "regression": ("rooms",)}
ROWS = {"multiclass": {"petal": 4.6, "sepal": 6.1, "leaves": 3}, "regression": {"area": 120.5, "rooms": 4}}
BAD = {"multiclass": {"petal": 4.6, "sepal": 60.0, "leaves": 3}, "regression": {"area": 1000.0, "rooms": 4}}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TaskHome]:
    return {task: make_task_home(tmp_path_factory.mktemp(task), task) for task in TASKS}


@pytest.fixture
def homes(built: dict[str, TaskHome], request: pytest.FixtureRequest) -> dict[str, TaskHome]:
    """The homes, MLflow pointed at the store of the test's task (each home has its own)."""
    from core import tracking

    task = getattr(request.node, "callspec", None)
    tracking.use(built[task.params.get("task", TASKS[0]) if task else TASKS[0]].settings)
    return built


def expected(home: TaskHome, frame: pd.DataFrame) -> np.ndarray:
    """What the served model must answer for `frame`: the pipeline's own output, in the task's shape."""
    s = home.settings
    x = model_io.feature_frame(frame, s.features, s.dataset.categorical_features)
    if home.task["task"] == "multiclass":
        return home.model.predict_proba(x)
    pred = home.model.predict(x)
    return np.column_stack((pred, pred - HALFWIDTH, pred + HALFWIDTH))


def test_test_rows(homes: dict[str, TaskHome]) -> None:
    """(sanity) the fixtures' test splits hold what the tests below score."""
    for task, home in homes.items():
        test = preparation.load_split(home.settings, "test")
        assert len(test) > 50 and set(home.settings.features) <= set(test.columns), task


@pytest.mark.parametrize("task", TASKS)
def test_the_logged_model_carries_its_task_and_answers_the_pipelines_output(homes: dict[str, TaskHome],
                                                                             task: str) -> None:
    home = homes[task]
    folder = Path(mlflow.artifacts.download_artifacts(home.model_uri))
    told = json.loads((folder / "code" / pyfunc_model.TASK_FILE).read_text())
    assert told == home.task
    info = mlflow.models.get_model_info(home.model_uri)
    width = 3  # three classes, or prediction, lower, upper
    assert info.signature.outputs.inputs[0].shape == (-1, width)
    served = mlflow.pyfunc.load_model(home.model_uri)
    impl = served._model_impl
    assert (impl.kind, impl.engine) == (task, "onnxruntime")  # numbers only, linear: proven equal at logging
    test = preparation.load_split(home.settings, "test")
    rows = test[list(home.settings.features)].astype({c: "int64" for c in WHOLE[task]})
    got = np.asarray(served.predict(rows))
    want = expected(home, test)
    assert got.shape == want.shape == (len(test), width)
    assert float(np.max(np.abs(got - want))) <= 1e-9
    if task == "multiclass":
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(impl.predict_proba(rows), got, atol=0)
    else:
        np.testing.assert_allclose(got[:, 2] - got[:, 1], 2 * HALFWIDTH, atol=1e-9)
        with pytest.raises(TypeError, match="no class probabilities"):
            impl.predict_proba(rows)


@pytest.mark.parametrize("task", TASKS)
def test_the_pipeline_serves_the_same_answers_without_onnx(homes: dict[str, TaskHome], task: str) -> None:
    """The scikit-learn path (a model without an ONNX export: trees, categories) gives the same answers."""
    home = homes[task]
    test = preparation.load_split(home.settings, "test")
    served = pyfunc_model.ServedModel(home.model, rules=home.settings.dataset.rules, task=home.task)
    assert served.engine == "scikit-learn"
    got = served.predict(test[list(home.settings.features)])
    assert float(np.max(np.abs(got - expected(home, test)))) <= 1e-9


def test_a_model_logged_without_a_task_is_binary_and_a_missing_class_gets_a_zero_column() -> None:
    assert pyfunc_model.task_name(None) == "binary" and pyfunc_model.read_task("/nowhere") is None
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])  # a model that saw classes 0 and 2 of three
    full = pyfunc_model.task_answer({"task": "multiclass", "classes": ["a", "b", "c"]}, proba, np.array([0, 2]))
    np.testing.assert_array_equal(full, [[0.2, 0.0, 0.8], [0.6, 0.0, 0.4]])
    np.testing.assert_array_equal(pyfunc_model.task_answer(None, proba), proba)  # binary: as it is


@pytest.mark.parametrize("task, bad", [("multiclass", {"task": "multiclass", "classes": ["a"]}),
                                       ("regression", {"task": "regression", "interval": {"level": 1.5, "halfwidth": 1}}),
                                       ("regression", {"task": "regression", "interval": {"level": 0.9}}),
                                       ("ordinal", {"task": "ordinal"})])
def test_log_model_refuses_a_malformed_task(task: str, bad: dict) -> None:
    with pytest.raises(ValueError):
        model_io.task_file(bad)
    assert model_io.task_file(None) is None and model_io.task_file({"task": "binary"}) is None


@pytest.mark.parametrize("task", TASKS)
def test_bad_rows_are_refused_naming_the_column(homes: dict[str, TaskHome], task: str) -> None:
    served = mlflow.pyfunc.load_model(homes[task].model_uri)
    with pytest.raises(mlflow.exceptions.MlflowException, match="sepal|area") as refused:
        served.predict(pd.DataFrame([BAD[task]]))
    assert type(refused.value).__name__ == "InputRefused"  # the model's own copy of the class


@pytest.mark.parametrize("task", TASKS)
def test_a_stock_mlflow_models_serve_answers_the_pipelines_output(homes: dict[str, TaskHome], task: str,
                                                                   tmp_path: Path) -> None:
    home = homes[task]
    test = preparation.load_split(home.settings, "test").head(40)
    rows = test[list(home.settings.features)]
    with serving(home.model_uri, home.settings.tracking_uri, tmp_path / "serve.log") as url:
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        answer = requests.post(url, json=body, timeout=30)
        bad = requests.post(url, json={"dataframe_split": {"columns": list(BAD[task]),
                                                           "data": [list(BAD[task].values())]}}, timeout=30)
    assert answer.status_code == 200, answer.text
    got = np.asarray(answer.json()["predictions"], dtype="float64")
    assert float(np.max(np.abs(got - expected(home, test)))) <= 1e-9
    assert bad.status_code == 400 and ("sepal" in bad.text or "area" in bad.text)


# --------------------------------------------------------------------------- the workbench's server and CLI
def cli(home: TaskHome, *words: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET",
                                                          "WORKBENCH_SERVE_PORT")}
    env["WORKBENCH_HOME"] = str(home.settings.home)
    return subprocess.run([sys.executable, "-m", "core", "--dataset", home.settings.dataset.name, *words],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("task", TASKS)
def test_the_workbench_server_predict_and_apply_answer_each_tasks_fields(homes: dict[str, TaskHome], task: str,
                                                                          tmp_path: Path) -> None:
    home = homes[task]
    s = home.settings.replace(serve_port=server.free_port())
    test = preparation.load_split(s, "test")
    batch = tmp_path / "batch.parquet"
    test.drop(columns=[s.target]).to_parquet(batch, index=False)
    labelled = tmp_path / "labelled.csv"
    test.assign(**{s.target: s.dataset.target.decode(test[s.target]).to_numpy()}).to_csv(labelled, index=False)
    want = expected(home, test)
    server.start(s)
    try:
        with client.Client(server.status(s).url, 30.0, s.features) as c:
            got = c.predict_answers(test)
        assert float(np.max(np.abs(got - want))) <= 1e-9

        row = ROWS[task]
        out = cli(home, "predict", "--input", json.dumps(row), "--json")
        assert out.returncode == 0, out.stderr
        printed = json.loads(out.stdout)
        one = expected(home, pd.DataFrame([row]))[0]
        assert printed["task"] == task and printed["model_version"] == home.version and printed["checked"] is True
        if task == "multiclass":
            names = list(s.dataset.target.names)
            assert list(printed["probabilities"]) == names
            assert np.allclose(list(printed["probabilities"].values()), one, atol=1e-9, rtol=0)
            assert printed["label"] == names[int(np.argmax(one))] == printed["class_name"]
            assert printed["class"] == s.dataset.target.classes[int(np.argmax(one))]
        else:
            assert abs(printed["prediction"] - one[0]) <= 1e-9
            assert np.allclose(printed["interval"], one[1:], atol=1e-9, rtol=0)
            assert printed["interval_level"] == LEVEL
        # the server logged the row with the task's answer columns
        logged = inference_log.read_last(s, 1)
        columns = inference_log.output_columns(s.dataset)
        assert np.allclose(logged[columns[:3]].to_numpy(dtype="float64")[0], one, atol=1e-9, rtol=0)

        refused = cli(home, "predict", "--input", json.dumps(BAD[task]), "--json")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        if task == "multiclass":
            threshold = cli(home, "predict", "--input", json.dumps(row), "--threshold", "0.4", "--json")
            assert threshold.returncode == 2 and "applies to a binary model" in threshold.stderr

        csv = tmp_path / "out" / "scored.csv"
        out = cli(home, "apply", "--batch", str(labelled), "--output", str(csv), "--json")
        assert out.returncode == 0, out.stderr
        applied = json.loads(out.stdout)
        assert applied["path"] == "http" and applied["task"] == task and applied["output"] == str(csv)
        assert applied["threshold"] is None and applied["rows"] == len(test)
    finally:
        server.stop(s)
    scored = pd.read_csv(csv)
    in_process = tmp_path / "scored.parquet"
    out = cli(home, "apply", "--batch", str(batch), "--in-process", "--output", str(in_process), "--json")
    assert out.returncode == 0, out.stderr
    quiet = json.loads(out.stdout)
    assert quiet["path"] == "in-process" and quiet["metrics"] is None
    parquet = pd.read_parquet(in_process)
    assert not s.predictions_path.exists()  # --output leaves the default output alone
    if task == "multiclass":
        columns = list(s.dataset.proba_columns.values())
        for frame in (scored, parquet):
            assert float(np.max(np.abs(frame[columns].to_numpy() - want))) <= 1e-9
            names = np.asarray(s.dataset.target.names, dtype=object)
            assert (frame["pred_class"].to_numpy() == names[want.argmax(axis=1)]).all()
            assert (frame[s.dataset.predicted_class_column].astype(str).to_numpy()
                    == np.asarray(s.dataset.target.classes, dtype=object)[want.argmax(axis=1)]).all()
        shares = applied["class_shares"]
        assert list(shares) == list(s.dataset.target.names) and abs(sum(shares.values()) - 1) < 1e-12
        assert {"log_loss", "accuracy", "f1_macro"} <= set(applied["metrics"])
        assert applied["metrics"]["accuracy"] > 0.8
    else:
        for frame in (scored, parquet):
            got = frame[list(s.dataset.prediction_columns)].to_numpy()
            assert float(np.max(np.abs(got - want))) <= (1e-6 if frame is scored else 1e-9)  # CSV: 15+ digits
        assert abs(applied["mean_prediction"] - want[:, 0].mean()) <= 1e-6
        assert abs(applied["mean_interval_width"] - 2 * HALFWIDTH) <= 1e-6
        assert {"rmse", "mae", "r2", "interval_coverage"} <= set(applied["metrics"])
        assert "mean_prediction" in quiet


def test_a_multiclass_model_with_categories_serves_through_its_pipeline() -> None:
    """Categories (one-hot and target-encoded per class) are no ONNX case: the pipeline answers, with
    the rules checking the text first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from core import catalog
    from core.modeling import preprocess

    cities = [f"c{i:02d}" for i in range(30)]  # more than ONE_HOT_MAX: target-encoded, one column per class
    spec = catalog.from_dict({
        "name": "t", "title": "T", "sources": [{"file": "t.parquet"}], "dev": {"source": "t.parquet"},
        "target": {"column": "y", "task": "multiclass", "classes": ["a", "b", "c"]},
        "features": [{"name": "x", "kind": "numeric", "min": 0, "max": 10},
                     {"name": "plan", "kind": "categorical", "values": ["p", "q"], "nullable": True},
                     {"name": "city", "kind": "categorical", "values": cities}]})
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x": rng.uniform(0, 10, n), "plan": rng.choice(["p", "q"], n).astype(object),
                          "city": rng.choice(cities, n).astype(object)})
    frame.loc[:20, "plan"] = None
    y = (frame["x"] // 3.4).astype(int).clip(0, 2)
    x = model_io.feature_frame(frame, spec.features, spec.categorical_features)
    model = Pipeline([*preprocess.preprocessor(spec, 0), ("model", LogisticRegression(max_iter=500))]).fit(x, y)
    served = pyfunc_model.ServedModel(model, rules=spec.rules, task={"task": "multiclass", "classes": ["a", "b", "c"]})
    got = served.predict(frame.head(50))
    assert served.engine == "scikit-learn" and got.shape == (50, 3)
    assert float(np.max(np.abs(got - model.predict_proba(x.head(50))))) <= 1e-12
    with pytest.raises(pyfunc_model.InputRefused, match="city"):
        served.predict(frame.head(2).assign(city="nowhere"))
