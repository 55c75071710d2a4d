"""Task kinds: what differs between a binary, a multiclass and a regression model, decided in one place.

A `TaskKind` holds, for one kind of supervised target, the facts every stage asks about: the
metrics it reports, the criterion that selects candidates and gates a promotion (and whether
lower is better), its decision policy (a binary model decides at a threshold) and the names of
its classes. A model version names its kind (`core.modeling.model_version.ModelVersion.task`);
code asks the kind instead of testing `if task == ...`. Binary is the kind the workbench has
today; multiclass and regression join here (issue 34).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from core.modeling.candidates import CRITERIA


def _binary_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    from core.modeling import metrics  # scikit-learn: imported when metrics are computed

    return metrics.from_proba(y, proba, threshold)


def _binary_classes(dataset: Any) -> tuple[str, ...]:
    return (str(dataset.target.negative_name), str(dataset.target.positive_name))


@dataclass(frozen=True)
class TaskKind:
    """One task kind (see the module docstring)."""

    name: str
    criterion: str                       # the default selection and gate criterion
    lower_is_better: frozenset[str]      # criteria where lower is better
    default_threshold: float | None      # the decision threshold of a version without its own (binary)
    metrics: Callable[[np.ndarray, np.ndarray, float], dict[str, float]]
    class_names: Callable[[Any], tuple[str, ...]]

    def decision_threshold(self, own: float | None) -> float:
        """The threshold a version decides at: its own, else this kind's default."""
        if self.default_threshold is None:
            raise ValueError(f"A {self.name} model does not decide at a threshold.")
        return float(own) if own is not None else self.default_threshold

    def better(self, criterion: str, a: float, b: float) -> bool:
        """Whether `a` is better than `b` on `criterion`."""
        return a < b if criterion in self.lower_is_better else a > b


BINARY = TaskKind(name="binary", criterion="log_loss",
                  lower_is_better=frozenset(name for name, higher in CRITERIA.items() if not higher),
                  default_threshold=0.5, metrics=_binary_metrics, class_names=_binary_classes)

TASKS: dict[str, TaskKind] = {BINARY.name: BINARY}


def task_kind(name: str | None) -> TaskKind:
    """The task kind named `name` (binary when None); ValueError naming the known ones otherwise."""
    try:
        return TASKS[name or BINARY.name]
    except KeyError:
        raise ValueError(f"Unknown task kind {name!r}; the workbench knows {', '.join(TASKS)}.") from None
