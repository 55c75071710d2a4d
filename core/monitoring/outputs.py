"""A model's outputs as the monitor takes them, per task kind (the shapes of the served answers):

- binary: the positive class's probability, (n,);
- multiclass: the class probabilities in the model's label order, (n, k);
- regression: the prediction and its interval's bounds, (n, 3) as prediction, lower, upper.

`model_outputs` scores rows with the fitted scikit-learn model of a version (its interval's half
width from the version's `interval`, the conformal half width training stored); `scored_outputs`
reads them back from scored rows (the columns `apply` writes: `spec.proba_columns`,
`spec.prediction_columns`). A check, the Production page and retraining take the outputs as
arrays from here, whichever way the rows were scored.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.errors import WorkbenchError
from core.modeling.model_version import ModelVersion


class OutputsError(WorkbenchError):
    """A model's outputs cannot be read (a regression version without its interval, scored rows
    without the task's columns)."""


def halfwidth(version: ModelVersion) -> float:
    """The half width of a regression version's prediction interval (its `interval` tag)."""
    value = (version.interval or {}).get("halfwidth")
    if value is None or not np.isfinite(value) or value < 0:
        raise OutputsError(f"Version {version.version} of {version.name} is a regression model without its "
                           "prediction interval (the workbench.interval tag has no halfwidth): train it again.")
    return float(value)


def level(version: ModelVersion) -> float | None:
    """A regression version's interval level (e.g. 0.9), None when not known."""
    value = (version.interval or {}).get("level")
    return float(value) if value is not None else None


def model_outputs(model: Any, frame: pd.DataFrame, features: tuple[str, ...], categorical: tuple[str, ...],
                  version: ModelVersion) -> np.ndarray:
    """The outputs of `model` (the fitted scikit-learn model of `version`) on `frame`'s rows (see
    the module docstring): what the served model answers (`model_io.answers`, one computation for
    serving, scoring and monitoring), binary reduced to the positive class's probability exactly
    as `model_io.predict_proba`. OutputsError for a regression version without its interval."""
    from core.modeling import model_io

    kind = version.kind
    if kind.name == "binary":
        return model_io.predict_proba(model, frame, features, categorical)
    if not kind.classifier:
        halfwidth(version)  # refuses a version without its interval, naming it
    task = model_io.version_task(version.task, version.classes, version.interval)
    return np.asarray(model_io.answers(model, frame, features, categorical, task), dtype="float64")


def scored_outputs(scored: pd.DataFrame, spec: Any, version: ModelVersion) -> np.ndarray:
    """The outputs held by scored rows (`apply`'s columns: binary `spec.proba_column`, multiclass
    one `proba_<class>` per class in the model's order, regression `prediction`,
    `prediction_lower`, `prediction_upper`)."""
    kind = version.kind
    if kind.name == "binary":
        columns = [spec.proba_column]
    elif kind.classifier:
        columns = list(spec.proba_columns.values())  # the definition's classes: the model's label order
    else:
        columns = list(spec.prediction_columns)
    missing = [c for c in columns if c not in scored]
    if missing:
        raise OutputsError(f"The scored rows lack {', '.join(missing)}: score the batch again with this version.")
    out = scored[columns].to_numpy(dtype="float64")
    return out[:, 0] if kind.name == "binary" else out


def predicted_class(outputs: np.ndarray) -> np.ndarray:
    """A multiclass model's decisions: each row's most probable class (its label position)."""
    return np.asarray(outputs, dtype="float64").argmax(axis=1)
