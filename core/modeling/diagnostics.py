"""Diagnostics of a fitted candidate: feature importance (coefficients, split importances or
permutation importance with the task's score) and learning-curve data (the task's loss when
refit on shares of the training data: log loss for a classifier, RMSE for a regression).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

# the loss a learning curve and a permutation importance measure, per task kind
LOSS: dict[str, str] = {"binary": "log_loss", "multiclass": "log_loss", "regression": "rmse"}


def _loss(task: str, model: Any, x: pd.DataFrame, y: np.ndarray, n_classes: int = 2) -> float:
    """The task's loss of a fitted `model` on (x, y): binary log loss of the positive class's
    probability, multiclass log loss over every class, regression RMSE."""
    from sklearn.metrics import log_loss, mean_squared_error

    if task == "regression":
        return float(np.sqrt(mean_squared_error(y, model.predict(x))))
    if task == "multiclass":
        return float(log_loss(y, model.predict_proba(x), labels=list(range(n_classes))))
    return float(log_loss(y, model.predict_proba(x)[:, 1], labels=[0, 1]))


def _scorer(task: str, n_classes: int) -> Any:
    """The permutation importance's score (higher is better): minus the task's loss."""
    if task == "binary":
        return "neg_log_loss"
    return lambda model, x, y: -_loss(task, model, x, y, n_classes)


def feature_importance(pipeline: Any, x: pd.DataFrame, y: np.ndarray, seed: int, task: str = "binary",
                       n_classes: int = 2) -> tuple[str, list[float]]:
    """(kind, values per feature): coefficients (one per feature: a binary classifier's or a
    regression's), split importances, or permutation importance (the rise of the task's loss on
    up to 2,000 rows of `x` when a feature is shuffled)."""
    est = pipeline.steps[-1][1]
    # encoded categories give the model one input per category: then each raw feature is measured
    per_feature = getattr(est, "n_features_in_", x.shape[1]) == x.shape[1]
    coef = np.asarray(getattr(est, "coef_", np.empty((2, 0))))
    # a multiclass model has a row of coefficients per class: one number per feature would hide them
    if per_feature and coef.size and (coef.ndim == 1 or coef.shape[0] == 1):
        return "coefficient", [float(v) for v in np.ravel(coef)[: x.shape[1]]]
    if per_feature and hasattr(est, "feature_importances_"):
        vals = np.asarray(est.feature_importances_, dtype=float)
        return "importance", [float(v) for v in vals / max(vals.sum(), 1e-12)]
    from sklearn.inspection import permutation_importance

    sample = x.sample(min(len(x), 2000), random_state=seed).index
    res = permutation_importance(pipeline, x.loc[sample], y[x.index.get_indexer(sample)],
                                 scoring=_scorer(task, n_classes), n_repeats=3, random_state=seed, n_jobs=1)
    return "permutation", [float(v) for v in res.importances_mean]


def learning_curve_data(pipeline: Any, x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame,
                        y_test: np.ndarray, seed: int, fractions: Sequence[float] = (0.1, 0.25, 0.5),
                        task: str = "binary", n_classes: int = 2) -> dict[str, Any]:
    """The task's loss (`LOSS`) on the training subset and on the test set when refit on shares of
    the training data (stratified for a classifier; plus the fitted `pipeline` itself at 100 %):
    three extra fits. A binary curve's data is what it always was (no `metric` key)."""
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    sizes, train_loss, test_loss = [], [], []
    for frac in fractions:
        if task == "multiclass" and int(frac * len(y_train)) < 2 * n_classes:
            continue  # too few rows to hold every class: the point is left out
        xs, _, ys, _ = train_test_split(x_train, y_train, train_size=frac, random_state=seed,
                                        stratify=None if task == "regression" else y_train)
        if task == "multiclass" and len(np.unique(ys)) < n_classes:
            continue
        model = clone(pipeline).fit(xs, ys)
        sizes.append(len(xs))
        train_loss.append(_loss(task, model, xs, ys, n_classes))
        test_loss.append(_loss(task, model, x_test, y_test, n_classes))
    sizes.append(len(x_train))
    train_loss.append(_loss(task, pipeline, x_train, y_train, n_classes))
    test_loss.append(_loss(task, pipeline, x_test, y_test, n_classes))
    out: dict[str, Any] = {"sizes": sizes, "train_loss": train_loss, "test_loss": test_loss}
    if task != "binary":
        out["metric"] = LOSS[task]
    return out
