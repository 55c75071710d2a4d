"""Explanations (core/modeling/explanations.py, issue 31): per-row contributions per RAW feature
add up to the model's output on their stated scale within 1e-6, for every task kind and model
family (linear, decision tree, LightGBM, the permutation fallback), calibrated or not; a
feature's one-hot and target-encoded columns are summed back to it; categories included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from scipy.special import expit, logit, softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from core.dataset import DatasetSpec, Feature, Subset, Target
from core.modeling import explanations, preprocess

PLANS = ("basic", "plus", "pro")
CODES = tuple(f"c{i:02d}" for i in range(40))  # more than ONE_HOT_MAX: target encoded
CLASSES = ("low", "mid", "high")


def spec(task: str) -> DatasetSpec:
    target = Target(column="y", task=task, classes=CLASSES if task == "multiclass" else None) \
        if task != "binary" else Target(column="y")
    return DatasetSpec(
        name="shop", title="Shop", target=target,
        features_spec=(Feature("usage", "numeric", minimum=0.0, maximum=100.0, nullable=True),
                       Feature("age", "numeric", minimum=0.0, maximum=100.0),
                       Feature("plan", "categorical", values=PLANS, nullable=True),
                       Feature("code", "categorical", values=CODES, nullable=True)),
        sources=(), dev=Subset(source="shop.parquet"))


def shop(task: str, n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, n).astype(object)
    code = np.array(CODES, dtype=object)[rng.integers(0, len(CODES), n)]
    usage, age = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    score = 0.03 * (usage - 50) + (plan == "pro") - (plan == "basic") \
        + np.array([int(c[1:]) % 3 == 0 for c in code]) - 0.01 * age
    if task == "binary":
        y = (rng.random(n) < expit(score)).astype(int)
    elif task == "multiclass":
        y = np.digitize(score + rng.normal(0, 0.5, n), [-0.5, 0.5])
    else:
        y = 100 + 20 * score + rng.normal(0, 2, n)
    frame = pd.DataFrame({"usage": usage, "age": age, "plan": plan, "code": code, "y": y})
    frame.loc[rng.random(n) < 0.05, "plan"] = np.nan
    frame.loc[rng.random(n) < 0.05, "usage"] = np.nan
    return frame


FEATURES = ["usage", "age", "plan", "code"]
ESTIMATORS = {
    "binary": {"lr": lambda: LogisticRegression(max_iter=500), "dt": lambda: DecisionTreeClassifier(max_depth=4),
               "lightgbm": lambda: LGBMClassifier(n_estimators=20, num_leaves=6, verbosity=-1)},
    "multiclass": {"lr": lambda: LogisticRegression(max_iter=500), "dt": lambda: DecisionTreeClassifier(max_depth=4),
                   "lightgbm": lambda: LGBMClassifier(n_estimators=20, num_leaves=6, verbosity=-1)},
    "regression": {"ridge": lambda: Ridge(), "dt": lambda: DecisionTreeRegressor(max_depth=4),
                   "lightgbm": lambda: LGBMRegressor(n_estimators=20, num_leaves=6, verbosity=-1)},
}


def fit(task: str, estimator, calibration: str | None = None):
    train = shop(task)
    pipeline = Pipeline([*preprocess.preprocessor(spec(task), 0), ("model", estimator)])
    model = pipeline if calibration is None else CalibratedClassifierCV(pipeline, method=calibration, ensemble=False,
                                                                        cv=3)
    return model.fit(train[FEATURES], train["y"]), train


def expected_output(task: str, model, x: pd.DataFrame, scale: str) -> np.ndarray:
    """The model's output on `scale`, computed without the explainer."""
    if task == "regression":
        return model.predict(x)
    proba = model.predict_proba(x)
    if scale == "probability":
        return proba[:, 1] if task == "binary" else proba
    if scale == "log_odds":
        return logit(proba[:, 1])
    raise AssertionError(scale)


@pytest.mark.parametrize("task,name", [(t, m) for t in ESTIMATORS for m in ESTIMATORS[t]])
def test_contributions_add_up_to_the_output_on_their_scale(task: str, name: str) -> None:
    model, train = fit(task, ESTIMATORS[task][name]())
    x = shop(task, n=40, seed=9)[FEATURES]
    expl = explanations.explainer(model, train, task, FEATURES, list(CLASSES)).explain(x)
    assert expl.features == tuple(FEATURES)  # per RAW feature: plan's 4 and code's columns summed back
    n = len(x)
    if task == "multiclass":
        assert expl.contributions.shape == (n, 3, 4) and expl.scale in ("logit", "probability")
        if expl.scale == "logit":  # per-class scores whose softmax is the probabilities
            np.testing.assert_allclose(softmax(expl.output, axis=1), model.predict_proba(x), atol=1e-6)
            if name == "lightgbm":
                raw = model.steps[-1][1].predict(explanations.transform([s for _, s in model.steps[:-1]], x),
                                                 raw_score=True)
                np.testing.assert_allclose(expl.output, raw, atol=1e-6)
        else:
            np.testing.assert_allclose(expl.output, model.predict_proba(x), atol=1e-6)
    else:
        assert expl.contributions.shape == (n, 4)
        expected_scale = {"binary": {"lr": "log_odds", "dt": "probability", "lightgbm": "log_odds"},
                          "regression": {"ridge": "value", "dt": "value", "lightgbm": "value"}}[task][name]
        assert expl.scale == expected_scale
        np.testing.assert_allclose(expl.output, expected_output(task, model, x, expl.scale), atol=1e-6)
    # the categorical features do contribute (the data depend on them)
    assert np.abs(expl.contributions[..., 2]).max() > 1e-6 and np.abs(expl.contributions[..., 3]).max() > 1e-6
    row = expl.row(0)
    assert set(row) >= {"base_value", "contributions", "scale"}
    if task == "multiclass":
        assert set(row["contributions"]) == set(CLASSES) and set(row["contributions"]["mid"]) == set(FEATURES)
    else:
        assert set(row["contributions"]) == set(FEATURES)
        assert abs(row["base_value"] + sum(row["contributions"].values()) - row["output"]) < 1e-6


def test_one_hot_columns_are_summed_back_to_their_feature() -> None:
    model, train = fit("binary", LogisticRegression(max_iter=500))
    ex = explanations.explainer(model, train, "binary", FEATURES)
    owner = ex.owner
    # usage, age: one column each; plan: its categories (and missing / infrequent); code: 1 column
    assert list(owner[:2]) == [0, 1] and (owner == 2).sum() >= 3 and (owner == 3).sum() == 1
    x = shop("binary", n=5, seed=3)[FEATURES]
    z = explanations.transform(ex.steps, x)
    coef = model.steps[-1][1].coef_[0]
    by_column = (z - ex.mean) * coef
    np.testing.assert_allclose(ex.explain(x).contributions[:, 2], by_column[:, owner == 2].sum(axis=1), atol=1e-12)
    # a multiclass target encoding gives k columns per feature: all of them code's
    mc, mc_train = fit("multiclass", LogisticRegression(max_iter=500))
    assert (explanations.explainer(mc, mc_train, "multiclass", FEATURES, list(CLASSES)).owner == 3).sum() == 3


def test_a_sigmoid_calibrated_model_is_explained_on_its_calibrated_log_odds() -> None:
    x = shop("binary", n=30, seed=4)[FEATURES]
    for estimator in (LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=3)):
        model, train = fit("binary", estimator, calibration="sigmoid")
        expl = explanations.explainer(model, train, "binary", FEATURES).explain(x)
        assert expl.scale == "log_odds"
        np.testing.assert_allclose(expl.output, logit(model.predict_proba(x)[:, 1]), atol=1e-6)


def test_otherwise_a_calibrated_model_is_explained_before_calibration_and_says_so() -> None:
    x = shop("binary", n=30, seed=4)[FEATURES]
    model, train = fit("binary", DecisionTreeClassifier(max_depth=3), calibration="isotonic")
    expl = explanations.explainer(model, train, "binary", FEATURES).explain(x)
    assert expl.scale == "probability_before_calibration"
    base = model.calibrated_classifiers_[0].estimator
    np.testing.assert_allclose(expl.output, base.predict_proba(x)[:, 1], atol=1e-6)


def test_other_models_fall_back_to_the_permutation_explainer_additively() -> None:
    model, train = fit("binary", KNeighborsClassifier(n_neighbors=15))
    x = shop("binary", n=3, seed=5)[FEATURES]
    ex = explanations.explainer(model, train, "binary", FEATURES)
    expl = ex.explain(x)
    assert ex.kind == "fallback" and expl.scale == "probability"
    np.testing.assert_allclose(expl.output, model.predict_proba(x)[:, 1], atol=1e-6)


def test_global_importance_ranks_the_features_by_mean_absolute_contribution() -> None:
    model, train = fit("regression", Ridge())
    x = shop("regression", n=80, seed=7)[FEATURES]
    expl = explanations.explainer(model, train, "regression", FEATURES).explain(x)
    view = explanations.global_importance(expl, x)
    assert view["mean_abs"] == sorted(view["mean_abs"], reverse=True) and set(view["features"]) == set(FEATURES)
    assert view["features"][-1] != "usage"  # usage moves the value most per unit range; age barely
    assert all(len(s["contributions"]) == 80 and len(s["value_rank"]) == 80 for s in view["strip"])
