"""The served pyfunc path (core/modeling/pyfunc_model.py): the rules, then the pipeline or its
ONNX export (core/modeling/onnx_export.py), with the pipeline's probabilities; models logged
with an older loader keep loading with it."""
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
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from core import tracking
from core.config import Settings
from core.data import preparation
from core.modeling import model_io, onnx_export, pyfunc_model
from tests.conftest import ROOT

WHOLE = ("minutes_remaining", "period", "playoffs", "shot_distance")  # Kobe's whole-number features


@pytest.fixture(scope="module")
def splits(prepared_settings: Settings) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    s = prepared_settings
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    return model_io.feature_frame(train, s.features), train[s.target], model_io.feature_frame(test, s.features)


PIPELINES = {
    "scaler+lr": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    "scaler+dt": lambda: make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=6, random_state=0)),
    "scaler+lightgbm": lambda: make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=40, num_leaves=6,
                                                                             verbosity=-1, n_jobs=1)),
}


def _log(settings: Settings, model, x: pd.DataFrame, y: pd.Series, rules=True):
    with mlflow.start_run(experiment_id=tracking.use(settings)):
        return model_io.log_model(model, settings.features, x.assign(**{settings.target: y}),
                                  rules=settings.dataset.rules if rules else None)


def test_only_linear_pipelines_are_exported_and_then_give_the_pipelines_answers(splits) -> None:
    x, y, test = splits
    lr = PIPELINES["scaler+lr"]().fit(x, y)
    data = onnx_export.export(lr, x.head(500))
    assert data is not None
    got = pyfunc_model.onnx_proba(pyfunc_model.onnx_session(data), test.to_numpy(dtype=np.float64))
    assert float(np.max(np.abs(got - lr.predict_proba(test)))) <= onnx_export.TOLERANCE
    for kind in ("scaler+dt", "scaler+lightgbm"):  # float32 trees in ONNX Runtime: not the same answers
        assert onnx_export.export(PIPELINES[kind]().fit(x, y), x.head(500)) is None
    poly = make_pipeline(PolynomialFeatures(2), StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    assert onnx_export.export(poly, x.head(500)) is None  # a step that is not on the list


@pytest.mark.parametrize("kind", list(PIPELINES))
def test_a_logged_model_serves_the_pipelines_probabilities(prepared_settings: Settings, splits, kind: str) -> None:
    """pyfunc loads through pyfunc_model (ONNX Runtime for the linear model, the fast path for the
    trees: issue 33); int64 data as the prepared files hold it passes the signature; sklearn loads the pipeline."""
    x, y, test = splits
    model = PIPELINES[kind]().fit(x, y)
    info = _log(prepared_settings, model, x, y)
    types = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert types == {"lat": "double", "lon": "double", **{c: "long" for c in WHOLE}}
    served = mlflow.pyfunc.load_model(info.model_uri)
    impl = served._model_impl
    assert type(impl).__name__ == "ServedModel"
    assert impl.engine == ("onnxruntime" if kind == "scaler+lr" else "fast-path")
    assert served.metadata.flavors["python_function"]["engine"] == impl.engine
    ints = test.astype({c: "int64" for c in WHOLE})
    got = np.asarray(served.predict(ints))
    assert float(np.max(np.abs(got - model.predict_proba(test)))) <= 1e-12
    plain = mlflow.sklearn.load_model(info.model_uri)
    assert type(plain) is type(model)
    assert np.array_equal(plain.predict_proba(test), model.predict_proba(test))


def test_a_model_logged_with_the_rule_table_refuses_rows_outside_the_domain(prepared_settings: Settings,
                                                                           splits) -> None:
    x, y, test = splits
    model = PIPELINES["scaler+lightgbm"]().fit(x, y)
    served = mlflow.pyfunc.load_model(_log(prepared_settings, model, x, y).model_uri)
    frame = test.astype({c: "int64" for c in WHOLE}).head(50)
    bad = frame.copy()
    bad.loc[bad.index[1:4], "period"] = 9
    bad["lat"] = bad["lat"].where(bad.index != bad.index[2], np.nan)
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        served.predict(bad)
    message = err.value.message
    assert "period: out-of-domain values in 3 rows (period must be one of 1, 2, 3, 4, 5, 6, 7), " \
           "at rows 1, 2, 3 (counting from 0)" in message
    assert "lat: empty (NaN) values in 1 row, at row 2 (counting from 0)" in message
    assert err.value.get_http_status_code() == 400
    with pytest.raises(mlflow.exceptions.MlflowException, match="there are no rows to score"):
        served.predict(frame.head(0))


def test_the_refusal_keeps_its_message_when_mlflow_rewrites_it() -> None:
    """MLflow's scoring server sets `e.message = "Failed to predict data '<input>'..."`: not kept."""
    err = pyfunc_model.InputRefused([f"lat: out-of-domain values in row {i}" for i in range(500)])
    err.message = "Failed to predict data '<the whole input>'. Error: " + err.message
    body = json.loads(err.serialize_as_json())
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and body["message"].startswith("Invalid input: lat")
    assert "Failed to predict" not in body["message"] and "stack_trace" not in body
    assert len(body["message"]) <= pyfunc_model.MAX_MESSAGE_CHARS and "(500 problems in all)" in body["message"]


def test_large_in_process_batches_ask_lightgbm_for_every_core(splits, monkeypatch) -> None:
    """model_io.predict_proba passes num_threads to LightGBM from PARALLEL_ROWS rows: same answer."""
    x, y, test = splits
    gbm = PIPELINES["scaler+lightgbm"]().fit(x, y)
    seen: list[dict] = []
    real = LGBMClassifier.predict_proba

    def spy(self, X, **kwargs):
        seen.append(kwargs)
        return real(self, X, **kwargs)
    monkeypatch.setattr(LGBMClassifier, "predict_proba", spy)
    monkeypatch.setattr(model_io, "PARALLEL_ROWS", 1000)
    features = tuple(test.columns)
    assert np.array_equal(model_io.predict_proba(gbm, test, features), real(gbm[-1], gbm[:-1].transform(test))[:, 1])
    assert seen[-1] == {"num_threads": os.cpu_count() or 1}
    model_io.predict_proba(gbm, test.head(999), features)
    assert seen[-1] == {}  # below the threshold: the model's own setting
    assert gbm[-1].get_params()["n_jobs"] == 1  # the model is not changed


@pytest.mark.parametrize("loader", ["kobe_pyfunc", "pyfunc_model"])
def test_a_model_with_the_earlier_hand_written_loader_keeps_loading(prepared_settings: Settings, splits,
                                                                    tmp_path: Path, loader: str) -> None:
    """A registered model whose `code/` carries the loader of an earlier workbench (the one before
    this change, under both names it was shipped as; with its rule table for `pyfunc_model`) loads
    and scores with that loader, in a fresh process."""
    x, y, test = splits
    model = PIPELINES["scaler+lr"]().fit(x, y)
    old = {name: subprocess.run(["git", "show", f"2609839:{name}"], cwd=ROOT, capture_output=True, text=True)
           for name in ("core/modeling/pyfunc_model.py", "core/data/rules.py")}  # their paths at that commit
    if any(out.returncode != 0 for out in old.values()):
        pytest.skip("the earlier loader is not in this checkout's history")
    path = tmp_path / "old-model"
    mlflow.sklearn.save_model(model, path, serialization_format="skops",
                              skops_trusted_types=model_io.trusted_types(model), pyfunc_predict_fn="predict_proba")
    (path / "code").mkdir()
    (path / "code" / f"{loader}.py").write_text(old["core/modeling/pyfunc_model.py"].stdout)
    if loader == "pyfunc_model":
        (path / "code" / "rules.py").write_text(old["core/data/rules.py"].stdout)
        (path / "code" / pyfunc_model.RULES_FILE).write_text(json.dumps(prepared_settings.dataset.rules.to_dict()))
    mlmodel = (path / "MLmodel").read_text()
    (path / "MLmodel").write_text(mlmodel.replace("loader_module: mlflow.sklearn", f"loader_module: {loader}\n    code: code"))
    frame = test.head(20)
    # The rows travel as a pickle, not parquet: a process that has read parquet sometimes aborts
    # at exit ("terminate called without an active exception", apache/arrow#34314), which is
    # pyarrow's thread pool, not the loader under test (the CI run of 2026-12-07 failed on it).
    frame.to_pickle(tmp_path / "rows.pkl")
    script = ("import mlflow, pandas as pd, numpy as np, sys; m = mlflow.pyfunc.load_model(sys.argv[1]); "
              "print(type(m._model_impl).__module__); "
              "np.save(sys.argv[3], np.asarray(m.predict(pd.read_pickle(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "rows.pkl"),
                          str(tmp_path / "p.npy")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == loader
    assert float(np.max(np.abs(np.load(tmp_path / "p.npy") - model.predict_proba(frame)))) <= 1e-12
