"""Task kinds: what differs between a binary, a multiclass and a regression model, decided in one place.

A `TaskKind` holds, for one kind of supervised target, the facts every stage asks about: the
metrics it reports, the criterion that selects candidates and gates a promotion (and whether
lower is better), its decision policy (a binary model decides at a threshold) and the names of
its classes. A model version names its kind (`core.modeling.model_version.ModelVersion.task`);
code asks the kind instead of testing `if task == ...`. Binary is the kind the workbench has
binary, multiclass and regression.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from core.modeling.candidates import CRITERIA


def _binary_metrics(y: np.ndarray, output: np.ndarray, threshold: float | None) -> dict[str, float]:
    from core.modeling import metrics  # scikit-learn: imported when metrics are computed

    return metrics.from_proba(y, output, 0.5 if threshold is None else threshold)


def _multiclass_metrics(y: np.ndarray, output: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    from core.modeling import metrics

    return metrics.multiclass(y, output)


def _regression_metrics(y: np.ndarray, output: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """`output` is the predictions (n,) or the predictions and their interval's bounds (n, 3)."""
    from core.modeling import metrics

    out = np.asarray(output, dtype=float)
    if out.ndim == 2:
        return metrics.regression(y, out[:, 0], out[:, 1], out[:, 2])
    return metrics.regression(y, out)


def _binary_groups(y: np.ndarray, output: np.ndarray, threshold: float | None, codes: np.ndarray,
                   k: int) -> list[dict[str, float]]:
    from core.modeling import group_metrics

    return group_metrics.binary(y, output, threshold, codes, k)


def _multiclass_groups(y: np.ndarray, output: np.ndarray, threshold: float | None, codes: np.ndarray,
                       k: int) -> list[dict[str, float]]:
    from core.modeling import group_metrics

    return group_metrics.multiclass(y, output, codes, k)


def _regression_groups(y: np.ndarray, output: np.ndarray, threshold: float | None, codes: np.ndarray,
                       k: int) -> list[dict[str, float]]:
    from core.modeling import group_metrics

    return group_metrics.regression(y, output, codes, k)


def _target_classes(dataset: Any) -> tuple[str, ...]:
    return tuple(dataset.target.names)


@dataclass(frozen=True)
class TaskKind:
    """One task kind (see the module docstring)."""

    name: str
    criterion: str                       # the default selection and gate criterion
    criteria: tuple[str, ...]            # the criteria a user may pick (`train --criterion`)
    lower_is_better: frozenset[str]      # criteria where lower is better
    default_threshold: float | None      # the decision threshold of a version without its own (binary)
    # the task's metrics from the labels and the model's output: binary the positive class's
    # probability, multiclass the class probabilities (n, k), regression the predictions (n,) or
    # the predictions with their interval (n, 3); the threshold matters to binary only
    metrics: Callable[[np.ndarray, np.ndarray, float | None], dict[str, float]]
    class_names: Callable[[Any], tuple[str, ...]]
    classifier: bool = True              # PyCaret's classification module (else regression)
    # the same metrics for every group of rows at once (`codes`: each row's group, 0..k-1), one
    # dict per group (`core.modeling.group_metrics`: metrics per segment)
    metrics_by_group: Callable[[np.ndarray, np.ndarray, float | None, np.ndarray, int],
                               list[dict[str, float]]] | None = None

    def decision_threshold(self, own: float | None) -> float:
        """The threshold a version decides at: its own, else this kind's default."""
        if self.default_threshold is None:
            raise ValueError(f"A {self.name} model does not decide at a threshold.")
        return float(own) if own is not None else self.default_threshold

    def better(self, criterion: str, a: float, b: float) -> bool:
        """Whether `a` is better than `b` on `criterion`."""
        return a < b if criterion in self.lower_is_better else a > b

    def check_criterion(self, criterion: str) -> None:
        """ValueError unless `criterion` is one this kind offers (naming them)."""
        if criterion not in self.criteria:
            raise ValueError(f"A {self.name} model is chosen by one of {', '.join(self.criteria)}, "
                             f"not {criterion!r}.")


_LOWER = frozenset(name for name, higher in CRITERIA.items() if not higher)

BINARY = TaskKind(name="binary", criterion="log_loss", criteria=("log_loss", "brier", "roc_auc", "f1", "accuracy"),
                  lower_is_better=_LOWER, default_threshold=0.5, metrics=_binary_metrics,
                  class_names=_target_classes, metrics_by_group=_binary_groups)
MULTICLASS = TaskKind(name="multiclass", criterion="log_loss", criteria=("log_loss", "accuracy", "f1_macro"),
                      lower_is_better=_LOWER, default_threshold=None, metrics=_multiclass_metrics,
                      class_names=_target_classes, metrics_by_group=_multiclass_groups)
REGRESSION = TaskKind(name="regression", criterion="rmse", criteria=("rmse", "mae", "r2"),
                      lower_is_better=_LOWER, default_threshold=None, metrics=_regression_metrics,
                      class_names=_target_classes, classifier=False,
                      metrics_by_group=_regression_groups)

TASKS: dict[str, TaskKind] = {kind.name: kind for kind in (BINARY, MULTICLASS, REGRESSION)}


def task_kind(name: str | None) -> TaskKind:
    """The task kind named `name` (binary when None); ValueError naming the known ones otherwise."""
    try:
        return TASKS[name or BINARY.name]
    except KeyError:
        raise ValueError(f"Unknown task kind {name!r}; the workbench knows {', '.join(TASKS)}.") from None
