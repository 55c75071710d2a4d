"""Metrics of every task kind, shared by training, scoring and drift: binary from the positive
class's probability (`from_proba`), multiclass from the class probabilities (`multiclass`),
regression from the predictions and their intervals (`regression`).
"""
from __future__ import annotations

import numpy as np

METRIC_NAMES: tuple[str, ...] = ("log_loss", "f1", "roc_auc", "accuracy", "precision", "recall", "brier")
# each task's metrics (binary: METRIC_NAMES; multiclass adds F1 per class as f1_<label>)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": METRIC_NAMES,
    "multiclass": ("log_loss", "accuracy", "f1_macro"),
    "regression": ("rmse", "mae", "r2", "mape", "interval_coverage"),
}
# how a metric is named on a page or in a table (the keys of `from_proba`, MLflow's metric names
# and the CLI's JSON keys stay the names above)
METRIC_LABELS: dict[str, str] = {"log_loss": "log loss", "f1": "F1", "roc_auc": "ROC-AUC", "accuracy": "accuracy",
                                 "precision": "precision", "recall": "recall", "brier": "Brier",
                                 "f1_macro": "macro F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "mape": "MAPE",
                                 "interval_coverage": "interval coverage"}


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


def multiclass(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Log loss, accuracy and macro F1 of the class probabilities `proba` (rows x classes, the
    model's label order; `y_true` the label positions), and F1 per class as `f1_<i>`. The class is
    the most probable one."""
    from sklearn import metrics as skm

    p = np.asarray(proba, dtype=float)
    y = np.asarray(y_true).astype(int)
    k = p.shape[1]
    p = np.clip(p, 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    per_class = skm.f1_score(y, pred, labels=list(range(k)), average=None, zero_division=0)
    return {
        "log_loss": float(skm.log_loss(y, p, labels=list(range(k)))),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1_macro": float(skm.f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)),
        **{f"f1_{i}": float(v) for i, v in enumerate(per_class)},
    }


def regression(y_true: np.ndarray, pred: np.ndarray, lower: np.ndarray | None = None,
               upper: np.ndarray | None = None) -> dict[str, float]:
    """RMSE, MAE, R² of the predictions; MAPE when no target value is 0; the share of targets
    inside [lower, upper] (`interval_coverage`) when an interval is given."""
    from sklearn import metrics as skm

    y, p = np.asarray(y_true, dtype=float), np.asarray(pred, dtype=float)
    out = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": float(skm.mean_absolute_error(y, p)),
        "r2": float(skm.r2_score(y, p)) if len(y) > 1 else float("nan"),
    }
    if len(y) and not np.any(y == 0):
        out["mape"] = float(skm.mean_absolute_percentage_error(y, p))
    if lower is not None and upper is not None:
        out["interval_coverage"] = float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))
    return out


def task_baselines(task: str, y_train: np.ndarray, y_test: np.ndarray, n_classes: int = 0,
                   level: float = 0.9) -> dict[str, dict[str, float]]:
    """Reference figures of the obvious answers on the test labels, per task kind: binary
    `baselines`; multiclass always the training split's majority class (`majority_class`) and
    always its class shares as the probabilities (`class_shares`); regression always the training
    mean (`mean`), with a conformal interval from the training residuals at `level`."""
    if task == "binary":
        return baselines(y_train, y_test)
    if task == "multiclass":
        y_tr = np.asarray(y_train).astype(int)
        k = max(int(n_classes), int(y_tr.max(initial=0)) + 1)
        shares = np.bincount(y_tr, minlength=k) / max(len(y_tr), 1)
        n = len(y_test)
        one_hot = np.zeros((n, k))
        one_hot[:, int(np.argmax(shares))] = 1.0
        return {"majority_class": multiclass(y_test, one_hot), "class_shares": multiclass(y_test, np.tile(shares, (n, 1)))}
    from core.modeling.intervals import conformal_halfwidth

    y_tr = np.asarray(y_train, dtype=float)
    mean = float(y_tr.mean()) if len(y_tr) else 0.0
    q = conformal_halfwidth(y_tr, np.full(len(y_tr), mean), level) if len(y_tr) else 0.0
    pred = np.full(len(y_test), mean)
    return {"mean": regression(y_test, pred, pred - q, pred + q)}
