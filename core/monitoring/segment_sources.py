"""The rows `core.monitoring.segments` judges, scored by a version: the test split (the default)
or a labelled batch (`core.data.batches.Batch`, read and validated like `drift --batch` reads
one). The version is the caller's `ModelVersion` (read once at the edge); its fitted model comes
from the monitoring's local copy (`champion.champion_model`), its outputs from
`outputs.model_outputs` (one computation with serving, scoring and drift).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.data.batches import Batch
from core.errors import WorkbenchError
from core.modeling.model_version import ModelVersion
from core.monitoring import segments as seg
from core.progress import ProgressFn, report

TEST_SPLIT = "test split"


class SegmentsError(WorkbenchError):
    """The rows cannot be judged per segment (a batch without labels)."""


def unlabelled_message(name: str, target: str) -> str:
    return (f"The batch {name} has no labels (no {target} values): metrics per segment need the actual "
            f"outcomes. Add the {target} column with the outcomes, or check the batch for drift instead "
            f"(`python -m core drift --batch FILE`, or the Drift page).")


def judge(frame: pd.DataFrame, settings: Settings, model: ModelVersion, *, source: str,
          criterion: str | None = None, max_categories: int = seg.MAX_CATEGORIES, bins: int = seg.BINS,
          min_rows: int = seg.MIN_ROWS, on_progress: ProgressFn = None, fitted: Any = None) -> seg.SegmentReport:
    """Score `frame` (features and the model's labels in the target column) with version `model`
    and judge it per segment of each of the version's features. `fitted`: the version's model
    when the caller already holds it."""
    from core.monitoring.champion import champion_model
    from core.monitoring.outputs import model_outputs

    settings = model.scoped(settings)
    spec = settings.dataset
    if settings.target not in frame or not np.isfinite(frame[settings.target].to_numpy(dtype="float64")).any():
        raise SegmentsError(unlabelled_message(source, settings.target))
    if fitted is None:
        report(on_progress, 0.1, "Loading the model")
        _, fitted = champion_model(settings, model)
    report(on_progress, 0.3, f"Scoring the {source} with version {model.version}")
    out = model_outputs(fitted, frame, settings.features, spec.categorical_features, model)
    report(on_progress, 0.6, "Metrics per segment")
    threshold = model.decision_threshold if model.kind.default_threshold is not None else None
    result = seg.segments(frame, frame[settings.target].to_numpy(dtype="float64"), out, model.kind,
                          features=settings.features, spec=spec, threshold=threshold, criterion=criterion,
                          max_categories=max_categories, bins=bins, min_rows=min_rows, source=source,
                          model_version=model.version)
    report(on_progress, 1.0, "Done")
    return result


def for_test_split(settings: Settings, model: ModelVersion, **options: Any) -> seg.SegmentReport:
    """The test split (prepared, labelled) scored by `model`, per segment (`judge`'s options)."""
    from core.data import preparation

    test = preparation.load_split(model.scoped(settings), "test")
    return judge(test, settings, model, source=TEST_SPLIT, **options)


def for_batch(batch: Batch, settings: Settings, model: ModelVersion, **options: Any) -> seg.SegmentReport:
    """A validated batch scored by `model`, per segment of its labelled rows; SegmentsError when
    it has no labels."""
    if not batch.has_labels:
        raise SegmentsError(unlabelled_message(batch.name, settings.target))
    return judge(batch.frame, settings, model, source=batch.name, **options)


def for_scored(scored: pd.DataFrame, settings: Settings, model: ModelVersion, *, source: str,
               threshold: float | None = None, **options: Any) -> seg.SegmentReport:
    """Rows scored by `apply` (its output columns, `outputs.scored_outputs`; the target as the
    data holds it) per segment of their labelled rows, without scoring them again; `threshold`
    a binary model's (default the version's own). SegmentsError when no row is labelled."""
    from core.monitoring.outputs import scored_outputs

    settings = model.scoped(settings)
    spec = settings.dataset
    if settings.target not in scored:
        raise SegmentsError(unlabelled_message(source, settings.target))
    y = spec.target.encode(scored[settings.target])[0]  # the model's labels, NaN where unlabelled
    if not np.isfinite(np.asarray(y, dtype="float64")).any():
        raise SegmentsError(unlabelled_message(source, settings.target))
    if model.kind.default_threshold is not None:
        threshold = model.decision_threshold if threshold is None else threshold
    return seg.segments(scored, y, scored_outputs(scored, spec, model), model.kind, features=settings.features,
                        spec=spec, threshold=threshold, source=source, model_version=model.version, **options)
