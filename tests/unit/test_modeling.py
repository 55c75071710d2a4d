"""Modeling (`core/modeling/`): metrics, candidates, the lock, diagnostics, logged models, the
registry, tracking and the Compare page's readers, on the tiny dataset (no PyCaret training)."""
from __future__ import annotations

from core.modeling import promotion

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from core import tracking
from core.data import preparation
from core.errors import TrackingError, TrainingBusyError, TrainingError
from core.modeling import (
    candidates,
    comparison,
    diagnostics,
    lock,
    metrics,
    model_io,
    pyfunc_model,
    registry,
)
from tests.unit.conftest import FEATURES, TARGET, Lab, register_lr, with_spec


# --------------------------------------------------------------------------- metrics
def test_from_proba_on_a_case_worked_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])  # classes at 0.5: 0, 1, 0, 1 -> one TN, FP, FN, TP each
    m = metrics.from_proba(y, p)
    assert set(m) == set(metrics.METRIC_NAMES)
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 0.5
    assert m["roc_auc"] == 0.75  # 3 of the 4 (positive, negative) pairs ranked right
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2)
    low = metrics.from_proba(y, p, threshold=0.3)  # classes 0, 1, 1, 1
    assert (low["recall"], low["precision"]) == (1.0, pytest.approx(2 / 3))


def test_from_proba_with_one_class_and_extreme_probabilities() -> None:
    m = metrics.from_proba(np.array([1, 1, 1]), np.array([1.0, 0.0, 0.7]))
    assert math.isnan(m["roc_auc"]) and math.isfinite(m["log_loss"])  # clipped, not infinite
    assert m["recall"] == pytest.approx(2 / 3)
    none = metrics.from_proba(np.array([0, 0]), np.array([0.1, 0.2]))
    assert none["f1"] == 0.0 and none["precision"] == 0.0  # no division warning, zero


def test_every_metric_has_one_display_label_used_by_the_tables() -> None:
    every = {name for names in metrics.TASK_METRICS.values() for name in names}
    assert set(metrics.METRIC_LABELS) == every and set(metrics.METRIC_NAMES) <= every
    assert len(set(metrics.METRIC_LABELS.values())) == len(every)  # no two metrics look alike
    assert all("_" not in text for text in metrics.METRIC_LABELS.values())  # no raw key shown
    assert metrics.label("roc_auc") == "ROC-AUC" and metrics.label("not_a_metric") == "not_a_metric"
    # the Compare page's columns are spelled from the same labels; MLflow's metric names stay the keys
    assert comparison.METRIC_COLUMNS["test_roc_auc"] == "test " + metrics.METRIC_LABELS["roc_auc"]
    assert comparison.METRIC_COLUMNS["cv_log_loss"] == "CV " + metrics.METRIC_LABELS["log_loss"]


def test_baselines_use_the_training_rate() -> None:
    b = metrics.baselines(np.array([1, 1, 1, 0]), np.array([0, 1, 1, 1]))
    assert b["majority_class"]["accuracy"] == 0.75 and b["majority_class"]["recall"] == 1.0
    assert b["base_rate"]["brier"] == pytest.approx(((0.75) ** 2 + 3 * 0.25 ** 2) / 4)


# --------------------------------------------------------------------------- candidates and the lock
def test_resolve_models_always_adds_lr_and_dt_once() -> None:
    assert candidates.resolve_models(None) == ("lr", "dt", "lightgbm")
    assert candidates.resolve_models([" RF", "", "lr", "rf"]) == ("lr", "dt", "rf")
    assert candidates.resolve_models([]) == ("lr", "dt")


def test_resolve_models_refuses_unknown_ids_naming_them() -> None:
    with pytest.raises(TrainingError, match=r"Unknown model id\(s\): svm, xgb\. Choose from: lr, dt"):
        candidates.resolve_models(["svm", "lr", "xgb"])


@pytest.mark.parametrize("folds, n_iter, criterion, match", [
    (1, 4, "log_loss", "folds must be between 2 and 20, got 1"),
    (21, 4, "log_loss", "folds must be between 2 and 20, got 21"),
    (3, 0, "log_loss", "iterations must be between 1 and 200, got 0"),
    (3, 201, "log_loss", "iterations must be between 1 and 200, got 201"),
    (3, 4, "auc", "Unknown criterion 'auc'"),
])
def test_check_budget_refuses_unusable_choices(folds: int, n_iter: int, criterion: str, match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        candidates.check_budget(folds, n_iter, criterion)


def test_check_budget_accepts_the_bounds() -> None:
    for folds, n_iter in ((2, 1), (20, 200), (candidates.DEFAULT_FOLDS, candidates.DEFAULT_N_ITER)):
        candidates.check_budget(folds, n_iter, "brier")


def test_the_training_lock_refuses_a_second_training(tiny) -> None:
    assert not lock.is_training(tiny)
    with lock.training_lock(tiny):
        assert lock.is_training(tiny)
        with pytest.raises(TrainingBusyError, match=r"already running \(since .*, process \d+\)"):
            with lock.training_lock(tiny):
                pass
    assert not lock.is_training(tiny)


# --------------------------------------------------------------------------- diagnostics
@pytest.fixture(scope="module")
def xy(lab: Lab) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    train = preparation.load_split(lab.settings, "train")
    test = preparation.load_split(lab.settings, "test")
    return (model_io.feature_frame(train, FEATURES), train[TARGET].to_numpy(),
            model_io.feature_frame(test, FEATURES), test[TARGET].to_numpy())


def test_feature_importance_of_each_kind_of_model(xy) -> None:
    x, y, *_ = xy
    lr = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    kind, values = diagnostics.feature_importance(lr, x, y, seed=0)
    assert kind == "coefficient" and len(values) == len(FEATURES)
    # the law of the data: more usage lowers churn, more calls raise it, premium lowers it
    assert values[0] < 0 < values[1] and values[2] < 0
    tree = make_pipeline(DecisionTreeClassifier(max_depth=3, random_state=0)).fit(x, y)
    kind, values = diagnostics.feature_importance(tree, x, y, seed=0)
    assert kind == "importance" and sum(values) == pytest.approx(1.0)
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(15)).fit(x, y)
    kind, values = diagnostics.feature_importance(knn, x, y, seed=0)
    assert kind == "permutation" and len(values) == len(FEATURES)


def test_learning_curve_data_refits_on_shares_of_the_training_data(xy) -> None:
    x, y, xt, yt = xy
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    curve = diagnostics.learning_curve_data(model, x, y, xt, yt, seed=0)
    sizes = curve["sizes"]
    assert sizes == sorted(sizes) and sizes[-1] == len(x) and len(sizes) == 4
    assert len(curve["train_loss"]) == len(curve["test_loss"]) == 4
    assert all(0 < v < 1.5 for v in curve["test_loss"])


# --------------------------------------------------------------------------- logged models
def test_feature_frame_is_the_features_as_doubles_in_model_order(lab: Lab) -> None:
    prod = preparation.load_split(lab.settings, "prod")
    x = model_io.feature_frame(prod[[TARGET, "premium", "customer_id", "support_calls", "usage_hours"]], FEATURES)
    assert list(x.columns) == list(FEATURES) and all(x.dtypes == "float64")


def test_model_requirements_are_pinned() -> None:
    from importlib.metadata import version

    reqs = model_io.model_requirements(make_pipeline(StandardScaler(), LogisticRegression()))
    assert f"scikit-learn=={version('scikit-learn')}" in reqs and all("==" in r for r in reqs)
    assert not any(r.startswith("lightgbm") for r in reqs)


def _odd(x):
    return x


def test_a_model_holding_untrusted_types_is_refused(xy) -> None:
    x, y, *_ = xy
    odd = make_pipeline(FunctionTransformer(_odd), LogisticRegression()).fit(x, y)
    with pytest.raises(TrackingError, match="cannot be stored safely"):
        model_io.trusted_types(odd)
    assert all(t.startswith(model_io.TRUSTED_PREFIXES)
               for t in model_io.trusted_types(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)))


def test_the_served_model_computes_the_pipelines_probabilities(lab: Lab, xy) -> None:
    from mlflow.exceptions import MlflowException

    from core.modeling import onnx_export

    x, y, xt, _ = xy
    rules = lab.settings.dataset.rules
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    served = pyfunc_model.ServedModel(model, rules, onnx_export.export(model, xt))
    assert served.features == list(FEATURES) and served.engine == "onnxruntime"
    np.testing.assert_allclose(served.predict_proba(xt), model.predict_proba(xt), rtol=0, atol=1e-12)
    # a non-finite value is refused by the rules (HTTP 400 when served), naming the column
    with pytest.raises(MlflowException, match="usage_hours"):
        served.predict_proba(xt.head(2).assign(usage_hours=[np.inf, 1.0]))
    unknown = make_pipeline(PolynomialFeatures(2), StandardScaler(), LogisticRegression()).fit(x, y)
    slow = pyfunc_model.ServedModel(unknown, rules, onnx_export.export(unknown, xt))
    assert slow.engine == "scikit-learn"  # a step ONNX Runtime is not trusted with: the pipeline itself
    np.testing.assert_allclose(slow.predict_proba(xt), unknown.predict_proba(xt))


def test_predict_proba_is_the_positive_class_probability(lab: Lab) -> None:
    test = preparation.load_split(lab.settings, "test")
    p = model_io.predict_proba(lab.model, test, FEATURES)
    assert p.shape == (len(test),) and ((0 < p) & (p < 1)).all()
    np.testing.assert_allclose(p, lab.model.predict_proba(test[list(FEATURES)].astype(float))[:, 1])
    assert metrics.from_proba(test[TARGET], p)["roc_auc"] > 0.65  # it learned something


def test_the_logged_champion_loads_as_scikit_learn_and_as_pyfunc(lab: Lab) -> None:
    import mlflow

    s = lab.settings
    version, model = registry.load_model(s)
    assert version == lab.version
    test = preparation.load_split(s, "test")
    x = model_io.feature_frame(test, FEATURES)
    np.testing.assert_allclose(model.predict_proba(x), lab.model.predict_proba(x))
    tracking.use(s)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
    assert pyfunc.metadata.get_input_schema().input_names() == list(FEATURES)
    schema = pyfunc.metadata.get_input_schema()
    whole = [c.name for c in schema.inputs if c.type.name == "long"]  # declared long: sent as int64
    assert whole and set(whole) < set(FEATURES)
    out = np.asarray(pyfunc.predict(x.astype({c: "int64" for c in whole})))
    assert out.shape == (len(x), 2)
    np.testing.assert_allclose(out[:, 1], model_io.predict_proba(lab.model, test, FEATURES), atol=1e-12)


def test_the_served_champion_refuses_rows_outside_the_definition(lab: Lab) -> None:
    import mlflow

    s = lab.settings
    tracking.use(s)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{lab.version}")
    good = pd.DataFrame([{"usage_hours": 42.5, "support_calls": 3, "premium": 1}])
    assert np.asarray(pyfunc.predict(good)).shape == (1, 2)
    bad = pd.DataFrame([{"usage_hours": 420.0, "support_calls": 3, "premium": 1},
                        {"usage_hours": 42.5, "support_calls": 3, "premium": 2}])
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        pyfunc.predict(bad)
    msg = str(err.value)
    assert "usage_hours: out-of-domain values in 1 row" in msg
    assert "premium: out-of-domain values in 1 row" in msg and "premium must be one of 0, 1" in msg
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"missing (inputs|column).*premium"):
        pyfunc.predict(good.drop(columns=["premium"]))


# --------------------------------------------------------------------------- the registry
def test_register_promote_and_roll_back(lab: Lab) -> None:
    s = with_spec(lab.settings, model_name="tiny-registry-model")
    assert registry.champion(s) is None and registry.versions(s) == []
    with pytest.raises(TrackingError, match="no previous champion"):
        promotion.rollback(s)
    with pytest.raises(TrackingError, match="No champion yet"):
        registry.load_model(s)
    v1, m1 = register_lr(s, c=1.0, run_name="registry-v1")
    v2, m2 = register_lr(s, c=0.001, run_name="registry-v2")
    assert [v.version for v in registry.versions(s)] == [v2, v1] and int(v2) == int(v1) + 1

    first = promotion.promote(s, v1)
    assert first.version == v1 and first.aliases == (registry.CHAMPION,)
    assert registry.alias_version(s, registry.PREVIOUS) is None
    second = promotion.promote(s, v2)
    assert second.aliases == (registry.CHAMPION,)
    assert registry.version_info(s, v1).aliases == (registry.PREVIOUS,)
    assert promotion.promote(s, v2).version == v2  # promoting the champion again changes nothing
    assert registry.alias_version(s, registry.PREVIOUS).version == v1

    back = promotion.rollback(s)
    assert back.version == v1 and registry.champion(s).version == v1
    assert registry.alias_version(s, registry.PREVIOUS).version == v2
    with pytest.raises(TrackingError, match="has no version 99"):
        promotion.promote(s, "99")
    assert registry.champion(s).version == v1  # a failed promotion leaves the aliases alone

    x = model_io.feature_frame(preparation.load_split(s, "test"), FEATURES)
    version, model = registry.load_model(s)
    assert version == v1
    np.testing.assert_allclose(model.predict_proba(x), m1.predict_proba(x))
    version, model = registry.load_model(s, v2)
    np.testing.assert_allclose(model.predict_proba(x), m2.predict_proba(x))
    assert registry.champion(lab.settings).version == lab.version  # the lab's own model untouched


def test_a_missing_version_has_no_info(lab: Lab) -> None:
    assert registry.version_info(lab.settings, "999") is None


# --------------------------------------------------------------------------- tracking
def test_the_experiment_comes_from_the_definition(lab: Lab) -> None:
    import mlflow

    s = lab.settings
    exp_id = tracking.use(s)
    assert tracking.use(s) == exp_id
    assert mlflow.get_tracking_uri() == s.tracking_uri == f"sqlite:///{s.home / 'mlruns' / 'mlflow.db'}"
    assert tracking.client(s).get_experiment(exp_id).name == "tiny-experiment"
    assert tracking.last_run(s, "no such run") is None
    assert [r.info.run_id for r in tracking.runs(s, preparation.PREPARE_RUN)] == [lab.prep.mlflow_run_id]
    assert tracking.store_description(s) == f"embedded SQLite at {s.home / 'mlruns' / 'mlflow.db'}"


def test_store_descriptions_never_show_a_password(tiny) -> None:
    pg = tiny.replace(tracking_uri_override="postgresql://ana:s3cret@db.example:5432/mlflow")
    assert tracking.store_description(pg) == ("PostgreSQL database at postgresql://ana:***@db.example:5432/mlflow "
                                              "(used directly, no tracking server)")
    from core.serving.server import free_port

    down = tiny.replace(tracking_uri_override=f"http://bob:pw@127.0.0.1:{free_port()}", request_timeout_s=2.0)
    text = tracking.store_description(down)
    assert "not reachable" in text and "pw" not in text and "bob:***@" in text


# --------------------------------------------------------------------------- the Compare page's readers
def test_without_training_runs_the_candidates_table_is_empty_with_its_columns(lab: Lab) -> None:
    runs = comparison.training_runs(lab.settings)
    assert runs.empty and {"model", "test log loss", "version", "aliases"} <= set(runs.columns)


def test_the_registry_table_shows_the_champion(lab: Lab) -> None:
    table = comparison.registry_table(lab.settings)
    row = table[table["version"] == lab.version].iloc[0]
    assert "champion" in row["aliases"] and row["run_id"]


def test_a_run_without_training_artifacts_is_refused(lab: Lab) -> None:
    with pytest.raises(TrackingError, match="has no training artifacts"):
        comparison.load_candidate(lab.settings, lab.prep.mlflow_run_id)


def test_a_calibrated_lightgbm_model_requires_lightgbm(xy) -> None:
    from lightgbm import LGBMClassifier
    from sklearn.calibration import CalibratedClassifierCV

    x, y, *_ = xy
    model = CalibratedClassifierCV(make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=5, verbosity=-1)),
                                   method="sigmoid", cv=2, ensemble=False).fit(x, y)
    assert any(r.startswith("lightgbm==") for r in model_io.model_requirements(model))
