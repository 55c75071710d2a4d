"""The served model's fast path (issue 33: core/modeling/fast_scoring.py, fast_check.py) gives the
pipeline's own answers within 1e-9 for every family the workbench trains (logistic regression,
decision tree, LightGBM and the other PyCaret candidates: random forest, extra trees, gradient
boosting, AdaBoost, k-NN, naive Bayes, LDA, MLP; numeric, categorical and nullable
features; calibrated or not; binary, multiclass and regression), on rows Hypothesis draws from
the dataset's rules; where it could not, the model says so and the pipeline serves.

The pipelines are the workbench's own (`core.modeling.preprocess.preprocessor`: imputation and
scaling, one-hot encoding with infrequent categories, target encoding of a many-category
feature), fitted on a few hundred rows in memory.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.modeling import fast_check, fast_scoring, pyfunc_model
from core.rules import CATEGORY, Rule, RuleTable

FEW = ("red", "green", "blue", "rare")  # "rare": fewer rows than MIN_FREQUENCY: an infrequent column
MANY = tuple(f"s{i:02d}" for i in range(30))  # > ONE_HOT_MAX: target encoded
RULES = RuleTable((
    Rule(name="size", minimum=0.0, maximum=10.0, nullable=True),
    Rule(name="calls", integer=True, minimum=0, maximum=20),
    Rule(name="colour", kind=CATEGORY, values=FEW),
    Rule(name="shop", kind=CATEGORY, values=MANY, nullable=True),
))
NUMERIC_RULES = RuleTable(RULES.rules[:2])


def _spec(rules: RuleTable, task: str) -> SimpleNamespace:
    features = [SimpleNamespace(name=r.name, kind="categorical" if r.categorical else "numeric",
                                nullable=r.nullable, values=r.values) for r in rules.rules]
    return SimpleNamespace(features_spec=features, target=SimpleNamespace(task=task))


def _frame(n: int, seed: int, rules: RuleTable) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, n), "calls": rng.integers(0, 21, n).astype(float)})
    frame.loc[rng.random(n) < 0.05, "size"] = np.nan
    if rules.has_categories:
        frame["colour"] = rng.choice(np.array(FEW, dtype=object), n, p=[0.4, 0.3, 0.28, 0.02])
        frame["shop"] = rng.choice(np.array(MANY, dtype=object), n).astype(object)
        frame.loc[rng.random(n) < 0.05, "shop"] = np.nan
    return frame


def _target(frame: pd.DataFrame, task: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    score = frame["size"].fillna(5).to_numpy() / 3 - frame["calls"].to_numpy() / 10 + rng.normal(0, 0.7, len(frame))
    if "colour" in frame:
        score += (frame["colour"] == "red").to_numpy() * 0.8
    if task == "regression":
        return score * 10.0
    if task == "multiclass":
        return np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return (score > np.median(score)).astype(int)


def _estimator(family: str, task: str):
    regression = task == "regression"
    if family == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor
        kind = LGBMRegressor if regression else LGBMClassifier
        return kind(n_estimators=15, num_leaves=6, min_child_samples=10, random_state=0, verbose=-1, n_jobs=1)
    if family == "dt":
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
        return (DecisionTreeRegressor if regression else DecisionTreeClassifier)(max_depth=5, random_state=0)
    if family == "rf":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        return (RandomForestRegressor if regression else RandomForestClassifier)(n_estimators=5, max_depth=4,
                                                                                  random_state=0)
    if family == "knn":
        from sklearn.neighbors import KNeighborsClassifier
        return KNeighborsClassifier(n_neighbors=7)
    if family == "nb":
        from sklearn.naive_bayes import GaussianNB
        return GaussianNB()
    if family == "gbc":
        from sklearn.ensemble import GradientBoostingClassifier
        return GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0)
    if family == "et":
        from sklearn.ensemble import ExtraTreesClassifier
        return ExtraTreesClassifier(n_estimators=5, max_depth=5, random_state=0)
    if family == "ada":
        from sklearn.ensemble import AdaBoostClassifier
        return AdaBoostClassifier(n_estimators=10, algorithm="SAMME", random_state=0)
    if family == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        return LinearDiscriminantAnalysis()
    if family == "mlp":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0)
    if family == "ridge":
        from sklearn.linear_model import Ridge
        return Ridge(alpha=1.0)
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=500)


def _fitted(family: str, task: str, calibration: str = "none", rules: RuleTable = RULES):
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline

    from core.modeling import preprocess

    frame = _frame(400, 1, rules)
    model = Pipeline([*preprocess.preprocessor(_spec(rules, task), 0), ("model", clone(_estimator(family, task)))])
    if calibration != "none":
        model = CalibratedClassifierCV(model, method=calibration, ensemble=False, cv=3)
    return model.fit(frame, _target(frame, task, 2)), frame


# (family, task, calibration, rules): the workbench's candidates, every task kind, both input kinds
CASES = [
    ("lr", "binary", "none", RULES), ("dt", "binary", "none", RULES), ("lightgbm", "binary", "none", RULES),
    ("lightgbm", "binary", "sigmoid", RULES), ("dt", "binary", "isotonic", RULES), ("rf", "binary", "none", RULES),
    ("knn", "binary", "none", RULES), ("nb", "binary", "none", RULES), ("gbc", "binary", "none", RULES),
    ("et", "binary", "none", RULES), ("ada", "binary", "none", RULES), ("lda", "binary", "none", RULES),
    ("mlp", "binary", "none", RULES),
    ("lightgbm", "binary", "sigmoid", NUMERIC_RULES), ("dt", "binary", "none", NUMERIC_RULES),
    ("lr", "multiclass", "none", RULES), ("lightgbm", "multiclass", "none", RULES),
    ("dt", "multiclass", "sigmoid", RULES),
    ("ridge", "regression", "none", RULES), ("dt", "regression", "none", RULES),
    ("lightgbm", "regression", "none", RULES), ("lightgbm", "regression", "none", NUMERIC_RULES),
]


def _rows(rules: RuleTable):
    """Hypothesis: 1 to 6 rows that keep `rules` (every category, unseen ones, missing where allowed)."""
    def value(rule: Rule):
        if rule.categorical:
            cats = st.sampled_from([*rule.values, fast_check.UNSEEN])
            return st.one_of(cats, st.none()) if rule.nullable else cats
        number = st.integers(int(rule.minimum), int(rule.maximum)).map(float) if rule.integer \
            else st.floats(rule.minimum, rule.maximum, allow_nan=False)
        return st.one_of(number, st.just(float("nan"))) if rule.nullable else number
    row = st.fixed_dictionaries({r.name: value(r) for r in rules.rules})
    return st.lists(row, min_size=1, max_size=6).map(lambda rs: pd.DataFrame(rs, columns=list(rules.names)))


def _as_served(frame: pd.DataFrame, rules: RuleTable) -> pd.DataFrame:
    """Categories as text with NaN for missing: what the served model hands the pipeline."""
    out = frame.copy()
    for r in rules.rules:
        out[r.name] = out[r.name].astype(object).where(out[r.name].notna(), np.nan) if r.categorical \
            else out[r.name].astype(np.float64)
    return out


@pytest.mark.parametrize("family,task,calibration,rules", CASES,
                         ids=[f"{f}-{t}-{c}-{'cat' if r.has_categories else 'num'}" for f, t, c, r in CASES])
def test_the_fast_path_gives_the_pipelines_answers(family, task, calibration, rules) -> None:
    model, frame = _fitted(family, task, calibration, rules)
    regression = task == "regression"
    verdict = fast_check.check(model, frame, rules, regression)
    assert verdict["engine"] == "fast-path", verdict
    assert verdict["max_difference"] <= fast_check.TOLERANCE and verdict["checked_rows"] == 400 + fast_check.RANDOM_ROWS
    fast = fast_scoring.fast_model(model)
    features = list(rules.names)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_rows(rules))
    def same(rows: pd.DataFrame) -> None:
        rows = _as_served(rows, rules)
        want = fast_check.pipeline_answers(model, rows, regression)
        got = fast_check.fast_answers(fast, rows, features, regression)
        assert fast_check.difference(want, got, regression) <= fast_check.TOLERANCE
    same()


def test_a_pipeline_the_fast_path_does_not_know_is_served_by_the_pipeline_and_says_why() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    frame = _frame(200, 3, NUMERIC_RULES).fillna(5.0)
    model = make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=500)).fit(frame, _target(frame, "binary", 4))
    verdict = fast_check.check(model, frame, NUMERIC_RULES, False)
    assert verdict["engine"] == "scikit-learn" and "PolynomialFeatures" in verdict["note"]


def test_answers_that_differ_by_more_than_the_tolerance_are_never_served_fast(monkeypatch) -> None:
    model, frame = _fitted("lightgbm", "binary", "none")
    real = fast_scoring.FastPipeline.transform
    monkeypatch.setattr(fast_scoring.FastPipeline, "transform", lambda self, X: real(self, X) + 1e-3)
    verdict = fast_check.check(model, frame, RULES, False)
    assert verdict["engine"] == "scikit-learn" and "differ" in verdict["note"] and verdict["max_difference"] > 1e-9


def test_a_model_without_the_fast_path_files_loads_as_before(tmp_path) -> None:
    model, _ = _fitted("dt", "binary", "none")
    assert pyfunc_model.fast_path(model, str(tmp_path)) is None  # logged before issue 33: no code/fast_path.json
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / pyfunc_model.FAST_NOTE).write_text('{"engine": "scikit-learn", "note": "differ"}')
    (tmp_path / "code" / pyfunc_model.FAST_FILE).write_text((fast_scoring.__file__ and open(fast_scoring.__file__).read()))
    assert pyfunc_model.fast_path(model, str(tmp_path)) is None  # the check said no: the pipeline serves
    served = pyfunc_model.ServedModel(model, rules=RULES)
    assert served.engine == "scikit-learn"


def test_the_served_model_scores_through_the_fast_path_with_the_same_answers_and_refusals() -> None:
    model, frame = _fitted("lightgbm", "binary", "sigmoid")
    fast = fast_scoring.fast_model(model)
    served = pyfunc_model.ServedModel(model, rules=RULES, fast=fast)
    plain = pyfunc_model.ServedModel(model, rules=RULES)
    assert (served.engine, plain.engine) == ("fast-path", "scikit-learn")
    rows = _as_served(frame.head(50), RULES).astype({"colour": object, "shop": object})
    np.testing.assert_allclose(served.predict_proba(rows), plain.predict_proba(rows), rtol=0, atol=1e-12)
    assert list(served.predict(rows)) == list(plain.predict(rows))
    bad = rows.head(1).assign(colour="purple")
    with pytest.raises(pyfunc_model.InputRefused, match="colour"):
        served.predict_proba(bad)
    unseen = served.predict_proba(bad, params={pyfunc_model.ALLOW_UNSEEN: True})
    np.testing.assert_allclose(unseen, plain.predict_proba(bad, params={pyfunc_model.ALLOW_UNSEEN: True}), atol=1e-12)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_logged_model_of_each_task_kind_serves_through_the_fast_path(tmp_path, task) -> None:
    """Logged as training logs it (`model_io.log_model`): the check ran, the MLmodel says so, and
    MLflow's pyfunc answers the task's answer of the pipeline."""
    import mlflow

    from core.modeling import model_io

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("fast", artifact_location=(tmp_path / "artifacts").as_uri())
        model, frame = _fitted("lightgbm", task, "sigmoid" if task == "multiclass" else "none")
        told = {"task": "multiclass", "classes": ["low", "mid", "high"]} if task == "multiclass" else \
            {"task": "regression", "interval": {"level": 0.9, "halfwidth": 2.0}}
        with mlflow.start_run(experiment_id=experiment):
            info = model_io.log_model(model, RULES.names, frame, rules=RULES, categorical=("colour", "shop"), task=told)
        served = mlflow.pyfunc.load_model(info.model_uri)
        conf = served.metadata.flavors["python_function"]
        assert served._model_impl.engine == conf["engine"] == conf["fast_path"]["engine"] == "fast-path"
        rows = _as_served(frame.head(40), RULES)
        raw = model.predict(rows) if task == "regression" else model.predict_proba(rows)
        want = pyfunc_model.task_answer(told, raw, getattr(model, "classes_", None))
        got = served._model_impl.predict(rows)
        assert got.shape == want.shape and float(np.max(np.abs(got - want))) <= fast_check.TOLERANCE
    finally:
        mlflow.set_tracking_uri(before)
