"""The decision threshold of a model version, whether it beats always answering the majority
class, and whether calibrating its probabilities helps.

All are decided on cross-validated (out-of-fold) predictions of the training split, never on
the test split, so the test figures stay an unbiased estimate:

- `choose`: the threshold on P(positive) that maximises accuracy (`rule="accuracy"`, the
  default: fewest false positives + false negatives), that maximises F1 (`rule="f1"`), or that
  minimises the expected cost `cost_ratio * FP + FN` (`rule="cost"`, a false positive costing
  `cost_ratio` times a false negative; ratio 1 is the accuracy rule). Candidate thresholds are
  the distinct out-of-fold probabilities (scikit-learn's `precision_recall_curve` / `roc_curve`
  give them with the counts); the accuracy and cost rules may also call no row positive, so on
  the out-of-fold predictions they are never below always answering the majority class.
  Accuracy is the default because F1 rewards calling every row positive when positives are
  common and the model is weak (Kobe: F1 picked 0.33, recall 1.000, accuracy 0.477 below the
  0.523 of always answering "missed"); `bench/threshold_rules.py` compares the rules.
- `against_majority`: whether a version's accuracy at its threshold is below that of always
  answering the majority class, and why, in words (what `train --json` and the Train page say).
- `calibration_gain`: the out-of-fold log loss before and after a sigmoid or isotonic map, each
  map itself fitted and judged by cross-validation over the out-of-fold predictions. For a
  multiclass model's probabilities (`out_of_fold_proba`, rows x classes) one map per class
  (one-vs-rest), then each row normalised, which is what scikit-learn's `CalibratedClassifierCV`
  does with a multiclass model. Thresholds and the majority check are binary only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.modeling.model_version import CALIBRATION_TAG, THRESHOLD_RULE_TAG as RULE_TAG  # noqa: F401 (re-exported)
from core.modeling.model_version import THRESHOLD_TAG as VERSION_TAG  # noqa: F401 (re-exported)

RULES = ("accuracy", "f1", "cost")
DEFAULT_RULE = "accuracy"  # see the module docstring and bench/RESULTS.md


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the rule that chose it and the out-of-fold figures at it, with the
    out-of-fold accuracy of always answering the majority class (`majority_accuracy`)."""

    value: float
    rule: str
    f1: float
    precision: float
    recall: float
    cost_ratio: float = 1.0
    positive_share: float = 0.0  # share of the rows classed positive at the threshold
    accuracy: float = 0.0
    majority_accuracy: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(y_true: np.ndarray, proba: np.ndarray, rule: str = DEFAULT_RULE, cost_ratio: float = 1.0) -> ThresholdChoice:
    """The decision threshold chosen on out-of-fold predictions (see the module docstring).

    The threshold is the midpoint between the chosen probability and the next lower distinct one
    (predictions `>= threshold` are positive), rounded to 4 decimals, so that a score equal to a
    training score is classed as in the search. Calling no row positive (a threshold halfway
    between the highest probability and 1) is an option of the accuracy and cost rules, taken
    only when it is strictly better. `rule="accuracy"` ignores `cost_ratio` (it is 1). With one
    class only, 0.5 is kept. ValueError for an unknown rule.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    if rule not in RULES:
        raise ValueError(f"Unknown threshold rule {rule!r}; choose one of {', '.join(RULES)}.")
    cost_ratio = 1.0 if rule == "accuracy" else float(cost_ratio)
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
        best = 1 + int(np.argmin(cost[1:]))  # cut 0 (inf) calls nothing positive: only when strictly cheaper
        if cost[0] < cost[best]:
            return _at(y, p, float(np.clip(round((float(p.max()) + 1) / 2, 4), 1e-4, 1 - 1e-4)), rule, cost_ratio)
    cut = float(cuts[best])
    lower = p[p < cut]
    value = (cut + float(lower.max())) / 2 if lower.size else cut
    return _at(y, p, float(np.clip(round(value, 4), 1e-4, 1 - 1e-4)), rule, cost_ratio)


def _at(y: np.ndarray, p: np.ndarray, value: float, rule: str, cost_ratio: float) -> ThresholdChoice:
    from sklearn.metrics import f1_score, precision_score, recall_score

    pred = (p >= value).astype(int)
    rate = float(y.mean()) if len(y) else 0.0
    return ThresholdChoice(value=value, rule=rule, cost_ratio=float(cost_ratio),
                           f1=float(f1_score(y, pred, zero_division=0)),
                           precision=float(precision_score(y, pred, zero_division=0)),
                           recall=float(recall_score(y, pred, zero_division=0)),
                           positive_share=float(pred.mean()) if len(pred) else 0.0,
                           accuracy=float(np.mean(pred == y)) if len(y) else 0.0,
                           majority_accuracy=max(rate, 1 - rate) if len(y) else 0.0)


@dataclass(frozen=True)
class MajorityCheck:
    """A version's accuracy at its threshold on a test split against always answering the
    majority class of its training split there; `why` says in words why it is below (else "")."""

    below: bool
    accuracy: float
    majority_accuracy: float
    majority_class: str
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def against_majority(test: dict[str, float], majority_accuracy: float, majority_class: str, rule: str | None,
                     threshold: float | None, choice: ThresholdChoice | None = None,
                     positive_share: float | None = None, positive_name: str = "positive") -> MajorityCheck:
    """Whether `test["accuracy"]` (at the version's `threshold`) is below `majority_accuracy`, and
    why: the F1 rule calling (almost) every row positive; no threshold beating the majority on the
    out-of-fold predictions (`choice`), i.e. a model that barely separates the classes; or an edge
    seen on them that the test split does not confirm. `positive_share`: the share of test rows
    called positive at the threshold, when known."""
    accuracy = float(test.get("accuracy", float("nan")))
    below = bool(accuracy < majority_accuracy - 1e-9)
    if not below:
        return MajorityCheck(False, accuracy, float(majority_accuracy), majority_class)
    at = f"at its threshold {threshold:.4f}" if threshold is not None else "at its threshold"
    head = (f"accuracy {accuracy:.3f} {at} is below the {majority_accuracy:.3f} of always answering "
            f"'{majority_class}'")
    calls_all = (positive_share is not None and positive_share >= 0.99) or (
        positive_share is None and test.get("recall", 0.0) >= 0.99 and test.get("precision", 1.0) < 0.99)
    if rule == "f1" and calls_all:
        share = f"{positive_share:.1%} of the rows" if positive_share is not None else "almost every row"
        why = (f"{head}: the F1 rule calls {share} '{positive_name}', which maximises F1 when "
               f"'{positive_name}' is common and the model is weak; the accuracy rule (the default) "
               "chooses the most accurate threshold instead")
    elif rule == "cost" and choice is not None and choice.cost_ratio != 1.0:
        why = (f"{head}: the cost rule with ratio {choice.cost_ratio:g} counts a false positive "
               f"{choice.cost_ratio:g} times a false negative, so it gives up accuracy on purpose")
    elif choice is not None and choice.accuracy < choice.majority_accuracy - 1e-9:
        why = (f"{head}: already on the cross-validated predictions no threshold of the {rule or 'chosen'} rule "
               f"beat the majority class ({choice.accuracy:.3f} vs {choice.majority_accuracy:.3f}): the model "
               "barely separates the classes")
    elif choice is not None:
        why = (f"{head}: on the cross-validated predictions it beat the majority class ({choice.accuracy:.3f} "
               f"vs {choice.majority_accuracy:.3f}) but not on the test split, so its edge is within noise: "
               "the model barely separates the classes")
    else:
        why = f"{head} on this test split"
    return MajorityCheck(True, accuracy, float(majority_accuracy), majority_class, why)


def out_of_fold(pipeline: Any, x: Any, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """P(positive) of every row from a copy of `pipeline` fitted without it (stratified K-fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(pipeline, x, y, cv=cv, method="predict_proba")[:, 1]


def out_of_fold_proba(pipeline: Any, x: Any, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Every class's probability (rows x classes, label order) of every row from a copy of
    `pipeline` fitted without it (stratified K-fold): a multiclass model's out-of-fold predictions."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(pipeline, x, y, cv=cv, method="predict_proba"), dtype=float)


def _calibration_gain_multiclass(y: np.ndarray, proba: np.ndarray, folds: int, seed: int) -> dict[str, float]:
    """`calibration_gain` of class probabilities (rows x classes): one map per class on its
    probability against "this class or not", then each row normalised (CalibratedClassifierCV's
    one-vs-rest scheme), each map fitted on the other folds of these predictions."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    k = proba.shape[1]
    labels = list(range(k))
    p = np.clip(proba, 1e-6, 1 - 1e-6)
    out = {"none": float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=labels))}
    if min(np.bincount(y, minlength=k)) < folds:
        return out
    logit = np.log(p / (1 - p))
    mapped = {"sigmoid": np.empty_like(p), "isotonic": np.empty_like(p)}
    for fit, judge in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(p, y):
        for c in range(k):
            hit = (y[fit] == c).astype(int)
            if hit.min() == hit.max():  # a fold without the class (or with only it): leave it as it is
                mapped["sigmoid"][judge, c] = mapped["isotonic"][judge, c] = p[judge, c]
                continue
            platt = LogisticRegression(C=1e6).fit(logit[fit, c:c + 1], hit)
            mapped["sigmoid"][judge, c] = platt.predict_proba(logit[judge, c:c + 1])[:, 1]
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p[fit, c], hit)
            mapped["isotonic"][judge, c] = iso.predict(p[judge, c])
    for name, q in mapped.items():
        q = np.clip(q, 1e-6, None)
        out[name] = float(log_loss(y, q / q.sum(axis=1, keepdims=True), labels=labels))
    return out


def calibration_gain(y_true: np.ndarray, proba: np.ndarray, folds: int, seed: int) -> dict[str, float]:
    """Out-of-fold log loss as it is (`none`) and after a sigmoid or isotonic map of the
    probabilities, each map fitted on the other folds of these predictions (scikit-learn's
    `LogisticRegression` on the logit for Platt's sigmoid, `IsotonicRegression` for isotonic).
    `proba`: the positive class's probability (binary), or every class's (rows x classes:
    one map per class, see the module docstring)."""
    if np.ndim(proba) == 2:
        return _calibration_gain_multiclass(np.asarray(y_true).astype(int), np.asarray(proba, dtype=float),
                                            folds, seed)
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
