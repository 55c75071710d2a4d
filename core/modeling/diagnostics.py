"""Diagnostics of a fitted candidate: feature importance (coefficients, split importances or
permutation importance) and learning-curve data (log loss when refit on shares of the training data).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd


def feature_importance(pipeline: Any, x: pd.DataFrame, y: np.ndarray, seed: int) -> tuple[str, list[float]]:
    """(kind, values per feature): coefficients, split importances, or permutation importance."""
    est = pipeline.steps[-1][1]
    # encoded categories give the model one input per category: then each raw feature is measured
    per_feature = getattr(est, "n_features_in_", x.shape[1]) == x.shape[1]
    if per_feature and hasattr(est, "coef_"):
        return "coefficient", [float(v) for v in np.ravel(est.coef_)[: x.shape[1]]]
    if per_feature and hasattr(est, "feature_importances_"):
        vals = np.asarray(est.feature_importances_, dtype=float)
        return "importance", [float(v) for v in vals / max(vals.sum(), 1e-12)]
    from sklearn.inspection import permutation_importance

    sample = x.sample(min(len(x), 2000), random_state=seed).index
    res = permutation_importance(pipeline, x.loc[sample], y[x.index.get_indexer(sample)], scoring="neg_log_loss",
                                 n_repeats=3, random_state=seed, n_jobs=1)
    return "permutation", [float(v) for v in res.importances_mean]


def learning_curve_data(pipeline: Any, x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame,
                        y_test: np.ndarray, seed: int, fractions: Sequence[float] = (0.1, 0.25, 0.5)) -> dict[str, Any]:
    """Log loss on the training subset and on the test set when refit on stratified shares of
    the training data (plus the fitted `pipeline` itself at 100 %): three extra fits."""
    from sklearn.base import clone
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    sizes, train_loss, test_loss = [], [], []
    for frac in fractions:
        xs, _, ys, _ = train_test_split(x_train, y_train, train_size=frac, stratify=y_train, random_state=seed)
        model = clone(pipeline).fit(xs, ys)
        sizes.append(len(xs))
        train_loss.append(float(log_loss(ys, model.predict_proba(xs)[:, 1], labels=[0, 1])))
        test_loss.append(float(log_loss(y_test, model.predict_proba(x_test)[:, 1], labels=[0, 1])))
    sizes.append(len(x_train))
    train_loss.append(float(log_loss(y_train, pipeline.predict_proba(x_train)[:, 1], labels=[0, 1])))
    test_loss.append(float(log_loss(y_test, pipeline.predict_proba(x_test)[:, 1], labels=[0, 1])))
    return {"sizes": sizes, "train_loss": train_loss, "test_loss": test_loss}
