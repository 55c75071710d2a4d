"""The decision threshold of a model version, and whether calibrating its probabilities helps.

Both are decided on cross-validated (out-of-fold) predictions of the training split, never on
the test split, so the test figures stay an unbiased estimate:

- `choose`: the threshold on P(positive) that maximises F1 (`rule="f1"`), or that minimises
  the expected cost `cost_ratio * FP + FN` (`rule="cost"`, a false positive costing
  `cost_ratio` times a false negative). Candidate thresholds are the distinct out-of-fold
  probabilities (scikit-learn's `precision_recall_curve` / `roc_curve` give them with the counts).
- `calibration_gain`: the out-of-fold log loss before and after a sigmoid or isotonic map, each
  map itself fitted and judged by cross-validation over the out-of-fold predictions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.modeling.model_version import CALIBRATION_TAG, THRESHOLD_RULE_TAG as RULE_TAG  # noqa: F401 (re-exported)
from core.modeling.model_version import THRESHOLD_TAG as VERSION_TAG  # noqa: F401 (re-exported)

RULES = ("f1", "cost")


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the rule that chose it and the out-of-fold figures at it."""

    value: float
    rule: str
    f1: float
    precision: float
    recall: float
    cost_ratio: float = 1.0
    positive_share: float = 0.0  # share of the rows classed positive at the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(y_true: np.ndarray, proba: np.ndarray, rule: str = "f1", cost_ratio: float = 1.0) -> ThresholdChoice:
    """The decision threshold chosen on out-of-fold predictions (see the module docstring).

    The threshold is the midpoint between the chosen probability and the next lower distinct one
    (predictions `>= threshold` are positive), rounded to 4 decimals, so that a score equal to a
    training score is classed as in the search. With one class only, 0.5 is kept.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    if rule not in RULES:
        raise ValueError(f"Unknown threshold rule {rule!r}; choose one of {', '.join(RULES)}.")
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    if len(np.unique(y)) < 2:
        return _at(y, p, 0.5, rule, cost_ratio)
    if rule == "f1":
        precision, recall, cuts = precision_recall_curve(y, p)
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        best = int(np.argmax(f1))
    else:
        fpr, tpr, cuts = roc_curve(y, p, drop_intermediate=False)
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        cost = cost_ratio * fpr * n_neg + (1 - tpr) * n_pos
        cuts, cost = cuts[1:], cost[1:]  # the first cut (inf) calls nothing positive: keep it out
        best = int(np.argmin(cost))
    cut = float(cuts[best])
    lower = p[p < cut]
    value = (cut + float(lower.max())) / 2 if lower.size else cut
    return _at(y, p, float(np.clip(round(value, 4), 1e-4, 1 - 1e-4)), rule, cost_ratio)


def _at(y: np.ndarray, p: np.ndarray, value: float, rule: str, cost_ratio: float) -> ThresholdChoice:
    from sklearn.metrics import f1_score, precision_score, recall_score

    pred = (p >= value).astype(int)
    return ThresholdChoice(value=value, rule=rule, cost_ratio=float(cost_ratio),
                           f1=float(f1_score(y, pred, zero_division=0)),
                           precision=float(precision_score(y, pred, zero_division=0)),
                           recall=float(recall_score(y, pred, zero_division=0)),
                           positive_share=float(pred.mean()) if len(pred) else 0.0)


def out_of_fold(pipeline: Any, x: Any, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """P(positive) of every row from a copy of `pipeline` fitted without it (stratified K-fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(pipeline, x, y, cv=cv, method="predict_proba")[:, 1]


def calibration_gain(y_true: np.ndarray, proba: np.ndarray, folds: int, seed: int) -> dict[str, float]:
    """Out-of-fold log loss as it is (`none`) and after a sigmoid or isotonic map of the
    probabilities, each map fitted on the other folds of these predictions (scikit-learn's
    `LogisticRegression` on the logit for Platt's sigmoid, `IsotonicRegression` for isotonic)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-6, 1 - 1e-6)
    out = {"none": float(log_loss(y, p, labels=[0, 1]))}
    if len(np.unique(y)) < 2 or min(np.bincount(y)) < folds:
        return out
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    mapped = {"sigmoid": np.empty_like(p), "isotonic": np.empty_like(p)}
    for fit, judge in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(logit, y):
        platt = LogisticRegression(C=1e6).fit(logit[fit], y[fit])
        mapped["sigmoid"][judge] = platt.predict_proba(logit[judge])[:, 1]
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(p[fit], y[fit])
        mapped["isotonic"][judge] = iso.predict(p[judge])
    for name, q in mapped.items():
        out[name] = float(log_loss(y, np.clip(q, 1e-6, 1 - 1e-6), labels=[0, 1]))
    return out


def pick_calibration(gains: dict[str, float], min_gain: float) -> str:
    """'sigmoid' or 'isotonic' when it lowers the out-of-fold log loss by at least `min_gain`
    (the larger gain wins), else 'none'."""
    base = gains["none"]
    best = min((k for k in gains if k != "none"), key=lambda k: gains[k], default=None)
    if best is None or base - gains[best] < min_gain:
        return "none"
    return best
