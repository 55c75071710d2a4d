"""Label-free performance estimates of multiclass and regression models (binary: `health`).

Both are the methods NannyML uses (CBPE for classifiers, DLE for regressors). NannyML does not
install beside this stack (its pins clash with PyCaret's and MLflow's), so they are written here
from its documentation, with scikit-learn's isotonic regression and histogram gradient boosting;
`bench/estimates_vs_nannyml.py` compares them with NannyML 0.13.1 on the same batches.

- **Multiclass CBPE** (confidence-based performance estimation). Each class's probability is
  calibrated one-vs-rest on the test split (isotonic regression, as `health.fit_isotonic`), and
  each row's calibrated probabilities are renormalised to sum to 1. The model predicts the most
  probable class (its raw probabilities' argmax); a row of a batch without labels then is of
  class c with its calibrated probability q_c, so:
  - expected accuracy = the mean of q at the predicted class;
  - per class c (one-vs-rest): expected TP_c = sum of q_c over the rows predicted c, FP_c = the
    rows predicted c less TP_c, FN_c = sum of q_c over the other rows; expected F1_c =
    2 TP_c / (2 TP_c + FP_c + FN_c); expected macro F1 = their mean.
- **Regression DLE** (direct loss estimation). A small model learns, on the test split, each
  row's loss from its features and the prediction: one the absolute error, one the squared
  error, and a classifier whether the target falls outside the prediction interval. On a batch
  without labels: expected MAE = the mean predicted absolute error, expected RMSE = the square
  root of the mean predicted squared error, expected interval coverage = 1 - the mean predicted
  chance of falling outside. The loss models are scikit-learn's `HistGradientBoostingRegressor`
  / `Classifier` (NannyML uses LightGBM; both are histogram gradient boosting) of LightGBM's
  default size, as NannyML fits them. They fit and predict on one thread (`one_thread`): OpenMP's threads spin
  while they wait, and on a busy machine a 600-row fit took 26 s on two threads against 0.6 s
  on one.

Both assume that what the reference (test split) taught about the model's errors still holds on
the batch: that the batch lies where the model and its loss model were measured. When it does not
(features outside the training data, a domain classifier that tells batch from training rows),
the estimate is flagged untrustworthy by `core.monitoring.policy.trust`, as for binary; a
reference too small to learn from adds its own reason (`reference_reasons`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

#: test rows a label-free estimate needs before it can be trusted: below this the calibration
#: (multiclass) or the loss model (regression) is learned from too few rows
MIN_REFERENCE_ROWS = {"multiclass": 100, "regression": 200}
#: labelled test rows of each class the multiclass calibration needs (fewer: that class's
#: calibrated probability is a rough guess)
MIN_CLASS_ROWS = 10


# --------------------------------------------------------------------------- multiclass: CBPE
@dataclass(frozen=True)
class ClassCalibration:
    """One isotonic calibration map per class (one-vs-rest), as breakpoints (x, y)."""

    xs: tuple[tuple[float, ...], ...]
    ys: tuple[tuple[float, ...], ...]

    @property
    def k(self) -> int:
        return len(self.xs)

    def to_dict(self) -> dict[str, Any]:
        return {"xs": [list(x) for x in self.xs], "ys": [list(y) for y in self.ys]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClassCalibration":
        return cls(xs=tuple(tuple(float(v) for v in x) for x in d["xs"]),
                   ys=tuple(tuple(float(v) for v in y) for y in d["ys"]))


def fit_class_calibration(proba: np.ndarray, y: np.ndarray) -> ClassCalibration:
    """Per class, the isotonic map of its predicted probability onto whether the row is of that
    class (one-vs-rest), fitted on labelled rows (`y`: class positions 0..k-1)."""
    from core.monitoring.health import fit_isotonic

    p = np.asarray(proba, dtype="float64")
    y = np.asarray(y).astype(int)
    xs, ys = [], []
    for c in range(p.shape[1]):
        x, v = fit_isotonic(p[:, c], (y == c).astype("float64"))
        xs.append(x)
        ys.append(v)
    return ClassCalibration(tuple(xs), tuple(ys))


def calibrate_classes(proba: np.ndarray, cal: ClassCalibration) -> np.ndarray:
    """The calibrated class probabilities: each class's map applied, each row renormalised to sum
    to 1 (a row all of whose maps give 0 keeps its raw probabilities)."""
    p = np.asarray(proba, dtype="float64")
    q = np.column_stack([np.interp(p[:, c], np.asarray(cal.xs[c]), np.asarray(cal.ys[c])) for c in range(p.shape[1])])
    total = q.sum(axis=1, keepdims=True)
    return np.where(total > 0, q / np.where(total > 0, total, 1.0), p)


def cross_fitted_classes(proba: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold calibrated class probabilities (an honest calibrated reliability on the test split)."""
    p = np.asarray(proba, dtype="float64")
    fold = np.random.default_rng(seed).integers(0, folds, len(p))
    out = np.empty_like(p)
    for k in range(folds):
        inside = fold == k
        if inside.any():
            out[inside] = calibrate_classes(p[inside], fit_class_calibration(p[~inside], y[~inside]))
    return out


def cbpe(proba: np.ndarray, calibrated: np.ndarray) -> dict[str, float]:
    """Expected accuracy, macro F1 and F1 per class (`f1_<i>`) of the argmax decisions of `proba`
    when each row is of class c with probability `calibrated[:, c]` (see the module docstring)."""
    p = np.asarray(proba, dtype="float64")
    q = np.asarray(calibrated, dtype="float64")
    n, k = p.shape
    if n == 0:
        return {"accuracy": float("nan"), "f1_macro": float("nan")}
    pred = p.argmax(axis=1)
    accuracy = float(q[np.arange(n), pred].mean())
    f1 = []
    for c in range(k):
        called = pred == c
        tp = float(q[called, c].sum())
        fp = float(called.sum()) - tp
        fn = float(q[~called, c].sum())
        f1.append(2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0)
    return {"accuracy": accuracy, "f1_macro": float(np.mean(f1)), **{f"f1_{i}": v for i, v in enumerate(f1)}}


def top_label(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's predicted class (argmax) and its probability (the model's confidence)."""
    p = np.asarray(proba, dtype="float64")
    pred = p.argmax(axis=1)
    return pred, p[np.arange(len(p)), pred]


# --------------------------------------------------------------------------- regression: DLE
@dataclass
class LossModels:
    """The fitted loss models of DLE (see the module docstring) and what they were fitted on.
    Fitted estimators, so stored with joblib beside the JSON reference (`task_health`)."""

    features: tuple[str, ...]
    categorical: tuple[str, ...]
    encoder: Any  # the categorical features' ordinal encoder (None without any)
    absolute: Any  # |y - prediction|
    squared: Any  # (y - prediction)^2
    outside: Any  # P(y outside the interval); None when no (or every) test row fell outside
    outside_rate: float  # the test split's share outside the interval (used when `outside` is None)
    n_reference: int


def _loss_inputs(frame: pd.DataFrame, prediction: np.ndarray, features: tuple[str, ...],
                 categorical: tuple[str, ...], encoder: Any) -> np.ndarray:
    """The loss models' inputs: the numeric features as doubles, the categorical ones as their
    ordinal codes (NaN for a category never seen in the reference, or a missing one), and the
    prediction, in that order."""
    numbers = [f for f in features if f not in categorical]
    parts = [frame[numbers].to_numpy(dtype="float64", na_value=np.nan)] if numbers else []
    if categorical:
        from core.data.columns import as_text

        text = pd.DataFrame({c: as_text(frame[c]) for c in categorical}, index=frame.index)
        parts.append(encoder.transform(text.astype(object).where(text.notna(), None)).astype("float64"))
    parts.append(np.asarray(prediction, dtype="float64").reshape(-1, 1))
    return np.hstack(parts)


def one_thread() -> Any:
    """A context in which OpenMP (the loss models' boosting) uses one thread (see the module
    docstring)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _booster(kind: str, categorical_mask: np.ndarray, seed: int) -> Any:
    """A histogram gradient boosting model with LightGBM's default size (100 trees of up to 31
    leaves, learning rate 0.1, leaves of 20 rows at least), as NannyML's DLE fits. Early stopping
    was tried and stopped too soon: on a noisy loss (a squared error) the validation score stalls
    early and the model stays near the mean loss (RMSE 17 % too high on a calm batch)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if kind == "regressor" else HistGradientBoostingClassifier
    return cls(max_iter=100, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, early_stopping=False,
               categorical_features=categorical_mask if categorical_mask.any() else None, random_state=seed)


def fit_dle(frame: pd.DataFrame, prediction: np.ndarray, y: np.ndarray, halfwidth: float | None,
            features: tuple[str, ...], categorical: tuple[str, ...] = (), seed: int = 0) -> LossModels:
    """Fit the loss models on the labelled reference rows (the test split): `frame` holds the
    features, `prediction` the model's predictions, `y` the targets, `halfwidth` the interval's
    half width (None: no interval model)."""
    from sklearn.preprocessing import OrdinalEncoder

    y = np.asarray(y, dtype="float64")
    pred = np.asarray(prediction, dtype="float64")
    cats = tuple(c for c in features if c in set(categorical))
    encoder = None
    if cats:
        from core.data.columns import as_text

        text = pd.DataFrame({c: as_text(frame[c]) for c in cats}, index=frame.index)
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan, dtype="float64")
        encoder.fit(text.astype(object).where(text.notna(), None))
    x = _loss_inputs(frame, pred, features, cats, encoder)
    numbers = [f for f in features if f not in cats]
    # a category with more codes than the booster's bins is taken as a number (its code)
    mask = np.array([False] * len(numbers)
                    + [len(encoder.categories_[i]) < 250 for i in range(len(cats))] if cats else
                    [False] * len(numbers), dtype=bool)
    mask = np.append(mask, False)  # the prediction
    error = y - pred
    outside, rate = None, float("nan")
    with one_thread():
        absolute = _booster("regressor", mask, seed).fit(x, np.abs(error))
        squared = _booster("regressor", mask, seed).fit(x, error ** 2)
        if halfwidth is not None:
            out = (np.abs(error) > halfwidth).astype(int)
            rate = float(out.mean())
            if 0 < out.sum() < len(out):
                outside = _booster("classifier", mask, seed).fit(x, out)
    return LossModels(features=tuple(features), categorical=cats, encoder=encoder, absolute=absolute,
                      squared=squared, outside=outside, outside_rate=rate, n_reference=len(y))


def dle_rows(models: LossModels, frame: pd.DataFrame, prediction: np.ndarray) -> np.ndarray:
    """Each row's estimated absolute error, squared error and chance of falling outside the
    interval (n, 3); losses floored at 0; the chance is the test split's share outside when no
    test row (or every one) fell outside. Row by row, so a batch read in record batches is
    estimated chunk by chunk."""
    x = _loss_inputs(frame, prediction, models.features, models.categorical, models.encoder)
    with one_thread():
        absolute = np.maximum(models.absolute.predict(x), 0.0)
        squared = np.maximum(models.squared.predict(x), 0.0)
        if models.outside is not None:
            outside = models.outside.predict_proba(x)[:, 1]
        else:
            outside = np.full(len(x), models.outside_rate)
    return np.column_stack([absolute, squared, outside])


def dle(rows: np.ndarray) -> dict[str, float]:
    """Expected MAE, RMSE and interval coverage of a batch from `dle_rows`."""
    r = np.asarray(rows, dtype="float64")
    if len(r) == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "interval_coverage": float("nan")}
    mae = float(r[:, 0].mean())
    # RMSE is never below MAE; the two models learn apart and, far from the reference, may disagree.
    # (Flooring each row's squared error at its absolute error squared instead raised the RMSE
    # estimate's error on bench/estimates_vs_nannyml.py from 62 to 69: the absolute error model's
    # rows are not exact enough for it.)
    out = {"mae": mae, "rmse": max(float(np.sqrt(r[:, 1].mean())), mae)}
    if np.isfinite(r[:, 2]).all():
        out["interval_coverage"] = float(1.0 - r[:, 2].mean())
    return out


# --------------------------------------------------------------------------- trust
def reference_reasons(task: str, n_reference: int, class_counts: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """Why the reference (the test split) is too small for a label-free estimate to be trusted:
    fewer than `MIN_REFERENCE_ROWS` test rows, or (multiclass) a class with fewer than
    `MIN_CLASS_ROWS` of them. Empty when it is large enough."""
    reasons = []
    least = MIN_REFERENCE_ROWS.get(task, 0)
    what = "calibration" if task == "multiclass" else "loss model"
    if n_reference < least:
        reasons.append(f"the estimate's {what} was learned from only {n_reference:,} test rows (at least "
                       f"{least:,} needed)")
    rare = [f"{name} ({n})" for name, n in (class_counts or {}).items() if n < MIN_CLASS_ROWS]
    if rare:
        reasons.append(f"the test split holds fewer than {MIN_CLASS_ROWS} rows of {', '.join(rare)}: their "
                       "calibrated probabilities are rough guesses")
    return tuple(reasons)
