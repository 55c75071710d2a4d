"""The monitor of each task kind in a check: how `check.conclude` and `stream` measure a model
(`monitor_of`): binary here (`BinaryMonitor`, over `core.monitoring.health`), multiclass and
regression in `core.monitoring.task_health`. Above both, so neither imports the other.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from core.config import Settings
from core.monitoring import health, statistics
from core.monitoring.health import ModelReference
from core.monitoring.task_health import MONITORS, Parts


class BinaryMonitor:
    """How a check measures a binary model (`check.conclude`; multiclass and regression:
    `task_health.TaskMonitor`): the reference above, the probability's drift, the positive rate's
    drift, the realised figures and the calibrated estimate."""

    task = "binary"
    needs_rows = False

    def reference(self, settings: Settings, model: Any, champ: Any) -> ModelReference:
        return health.load_model_reference(settings, model, champ.version, champ.decision_threshold)

    def rows(self, ref: ModelReference, frame: Any, out: np.ndarray) -> None:
        return None

    def measure(self, mref: ModelReference, proba: np.ndarray, labels: np.ndarray | None, rows: Any, champ: Any,
                settings: Settings, train_ref: Any) -> Any:
        t = settings.drift
        prediction = statistics.column_drift(settings.dataset.proba_label, mref.prediction, proba, t)
        label = realized_figures = rel_batch = None
        groups = health.score_groups(proba)  # the distinct scores' ranks, for both ROC-AUCs
        if labels is not None:
            labelled = np.isfinite(labels)
            every = bool(labelled.all())  # no copies then (80 MB at 5,000,000 rows)
            y = labels if every else labels[labelled]
            p_labelled = proba if every else proba[labelled]
            if train_ref.positive_rate is not None:
                label = statistics.label_drift(y, train_ref.positive_rate, train_ref.n_rows, t)
            realized_figures = health.realized(y, p_labelled, champ.decision_threshold, groups if every else None)
            rel_batch = health.reliability(y, p_labelled, t.calibration_bins)
            del y, p_labelled, labelled
        est = health.estimate(proba, mref, (), groups)  # whether to trust it waits for the domain classifier
        return Parts(prediction=prediction, label=label, realized=realized_figures, estimate=est,
                     test_metrics=mref.test_metrics, estimated_on_test=mref.estimated_on_test,
                     reliability_test=mref.reliability_raw, reliability_test_calibrated=mref.reliability_calibrated,
                     reliability_batch=rel_batch)

    def words(self, parts: Any, estimate: Any, settings: Settings) -> str:
        return ""


BINARY_MONITOR = BinaryMonitor()


def monitor_of(champ: Any) -> Any:
    """The monitor of a version's task kind (`BinaryMonitor`, or `task_health.MONITORS`)."""
    return MONITORS.get(champ.kind.name, BINARY_MONITOR)
