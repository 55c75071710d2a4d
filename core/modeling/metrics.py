"""Classification metrics computed from the positive class's probability, shared by training,
scoring and drift.
"""
from __future__ import annotations

import numpy as np

METRIC_NAMES: tuple[str, ...] = ("log_loss", "f1", "roc_auc", "accuracy", "precision", "recall", "brier")
# how a metric is named on a page or in a table (the keys of `from_proba`, MLflow's metric names
# and the CLI's JSON keys stay the names above)
METRIC_LABELS: dict[str, str] = {"log_loss": "log loss", "f1": "F1", "roc_auc": "ROC-AUC", "accuracy": "accuracy",
                                 "precision": "precision", "recall": "recall", "brier": "Brier"}


def label(name: str) -> str:
    """The display label of a metric name ('roc_auc' -> 'ROC-AUC'); an unknown name as it is."""
    return METRIC_LABELS.get(name, name)


def from_proba(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Log loss, F1, ROC-AUC, accuracy, precision, recall and Brier score of the probability `proba`.

    The class is `proba >= threshold`. ROC-AUC is NaN when only one class is present.
    """
    from sklearn import metrics as skm  # here, not at the top: a page that needs only the labels skips it

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-15, 1 - 1e-15)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "brier": float(skm.brier_score_loss(y, p)),
    }


def baselines(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, dict[str, float]]:
    """Reference figures on the test labels: the majority class, and the train base rate as the probability."""
    rate = float(np.mean(y_train))
    n = len(y_test)
    majority = np.full(n, 1.0 if rate >= 0.5 else 0.0)
    return {
        "majority_class": from_proba(y_test, majority),
        "base_rate": from_proba(y_test, np.full(n, rate)),
    }
