"""What a served model's answer means, per task kind: one object per kind, chosen once from the
model's task (`for_task`), read by everything that turns the served rows into something else.

The served answer (MLflow's scoring protocol, `core/modeling/pyfunc_model.py`) is a matrix, one
row per scored row: binary both classes' probabilities; multiclass the k class probabilities in
the model's label order; regression (prediction, lower, upper). From it each kind gives:

- `scored`: the scored columns `apply` (in-process, over HTTP) and the exports write:
  binary the positive class's probability, the class at the threshold as 1 / 0 and as the data
  holds it, and its name (as always); multiclass `pred_class` (the class's name), the class as
  the data holds it and `proba_<class>` per class (`spec.proba_columns`); regression
  `prediction`, `prediction_lower`, `prediction_upper` (`spec.prediction_columns`);
- `log_columns` / `log_rows`: the inference log's answer columns and each row's values (binary:
  the probability, the class, the threshold, as always; multiclass: the k probabilities and the
  class; regression: the prediction and its bounds);
- `summary`: a scored batch's figures for `apply --json` and the run (class shares, mean prediction);
- `metrics`: the task's metrics against the labels (`core.modeling.tasks`).

Numpy only: the model server's capture (`core/serving/recorder.py`) uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

PRED_CLASS = "pred_class"  # a multiclass model's predicted class (its name) in scored outputs
CLASS_NAME = "class_name"  # a binary model's predicted class's name in scored outputs


@dataclass(frozen=True)
class BinaryAnswers:
    """A binary model's answer: both classes' probabilities; the class at a threshold."""

    name: str = "binary"
    thresholded: bool = True  # decides at a threshold

    def log_columns(self, spec: Any) -> list[str]:
        return [spec.proba_column, "label", "threshold"]

    def log_types(self, spec: Any) -> list[str]:
        return ["REAL NOT NULL", "INTEGER NOT NULL", "REAL NOT NULL"]

    def log_rows(self, answer: np.ndarray, threshold: float | None) -> list[tuple[Any, ...]]:
        t = 0.5 if threshold is None else float(threshold)
        p = positive(answer).tolist()
        return [(x, int(x >= t), t) for x in p]

    def scored(self, spec: Any, answer: np.ndarray, threshold: float | None) -> dict[str, Any]:
        proba = positive(answer)
        t = 0.5 if threshold is None else float(threshold)
        pred = (proba >= t).astype("int64")
        return {spec.proba_column: proba, spec.pred_column: pred,
                spec.predicted_class_column: spec.target.decode(pred).to_numpy(),
                CLASS_NAME: np.where(pred == 1, spec.target.positive_name, spec.target.negative_name).astype(object)}

    def summary(self, spec: Any, answer: np.ndarray, threshold: float | None) -> dict[str, Any]:
        t = 0.5 if threshold is None else float(threshold)
        p = positive(answer)
        return {"predicted_positive_share": float((p >= t).mean()) if len(p) else 0.0}

    def metrics(self, y: np.ndarray, answer: np.ndarray, threshold: float | None) -> dict[str, float]:
        from core.modeling import metrics

        return metrics.from_proba(y, positive(answer), 0.5 if threshold is None else threshold)


@dataclass(frozen=True)
class MulticlassAnswers:
    """A multiclass model's answer: the k class probabilities; the class is the most probable."""

    name: str = "multiclass"
    thresholded: bool = False

    def log_columns(self, spec: Any) -> list[str]:
        return [*spec.proba_columns.values(), "label"]

    def log_types(self, spec: Any) -> list[str]:
        return [*("REAL NOT NULL" for _ in spec.proba_columns), "INTEGER NOT NULL"]

    def log_rows(self, answer: np.ndarray, threshold: float | None = None) -> list[tuple[Any, ...]]:
        p = np.atleast_2d(np.asarray(answer, dtype="float64"))
        best = p.argmax(axis=1).tolist()
        return [(*row, c) for row, c in zip(p.tolist(), best)]

    def scored(self, spec: Any, answer: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
        p = np.atleast_2d(np.asarray(answer, dtype="float64"))
        best = p.argmax(axis=1)
        names = np.asarray(spec.target.names, dtype=object)
        out: dict[str, Any] = {PRED_CLASS: names[best], spec.predicted_class_column: spec.target.decode(best).to_numpy()}
        for i, column in enumerate(spec.proba_columns.values()):
            out[column] = p[:, i]
        return out

    def summary(self, spec: Any, answer: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
        p = np.atleast_2d(np.asarray(answer, dtype="float64"))
        counts = np.bincount(p.argmax(axis=1), minlength=len(spec.target.names)) if len(p) else \
            np.zeros(len(spec.target.names))
        n = max(len(p), 1)
        return {"class_shares": {name: float(c) / n for name, c in zip(spec.target.names, counts)}}

    def metrics(self, y: np.ndarray, answer: np.ndarray, threshold: float | None = None) -> dict[str, float]:
        from core.modeling import metrics

        return metrics.multiclass(y, np.atleast_2d(answer))


@dataclass(frozen=True)
class RegressionAnswers:
    """A regression model's answer: the prediction and its interval's bounds."""

    name: str = "regression"
    thresholded: bool = False

    def log_columns(self, spec: Any) -> list[str]:
        return list(spec.prediction_columns)

    def log_types(self, spec: Any) -> list[str]:
        return ["REAL NOT NULL", "REAL", "REAL"]  # bounds: NULL when the interval is unknown

    def log_rows(self, answer: np.ndarray, threshold: float | None = None) -> list[tuple[Any, ...]]:
        a = np.atleast_2d(np.asarray(answer, dtype="float64"))
        return [tuple(None if v != v else v for v in row) for row in a[:, :3].tolist()]

    def scored(self, spec: Any, answer: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
        a = np.atleast_2d(np.asarray(answer, dtype="float64"))
        return {column: a[:, i] for i, column in enumerate(spec.prediction_columns)}

    def summary(self, spec: Any, answer: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
        a = np.atleast_2d(np.asarray(answer, dtype="float64"))
        if not len(a):
            return {"mean_prediction": None, "mean_interval_width": None}
        width = a[:, 2] - a[:, 1]
        return {"mean_prediction": float(a[:, 0].mean()),
                "mean_interval_width": float(width.mean()) if np.isfinite(width).all() else None}

    def metrics(self, y: np.ndarray, answer: np.ndarray, threshold: float | None = None) -> dict[str, float]:
        from core.modeling import metrics

        a = np.atleast_2d(np.asarray(answer, dtype="float64"))
        if not np.isfinite(a[:, 1:3]).all():
            return metrics.regression(y, a[:, 0])
        return metrics.regression(y, a[:, 0], a[:, 1], a[:, 2])


ANSWERS = {kind.name: kind for kind in (BinaryAnswers(), MulticlassAnswers(), RegressionAnswers())}
Answers = BinaryAnswers | MulticlassAnswers | RegressionAnswers


def for_task(task: str | None) -> Answers:
    """The answer reader of a task kind (binary when None); ValueError naming the kinds otherwise."""
    try:
        return ANSWERS[task or "binary"]
    except KeyError:
        raise ValueError(f"Unknown task kind {task!r}; the workbench knows {', '.join(ANSWERS)}.") from None


def positive(answer: np.ndarray) -> np.ndarray:
    """The positive class's probability of binary answers (their last column; a flat list as it is)."""
    a = np.asarray(answer, dtype="float64")
    return a[:, -1] if a.ndim == 2 else a.reshape(-1)


def matrix(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Served answers as a float matrix, one row per scored row (a flat list: one column)."""
    a = np.asarray(values, dtype="float64")
    return a.reshape(-1, 1) if a.ndim == 1 else a
