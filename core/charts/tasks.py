"""A multiclass or regression candidate's chart by name, drawn from its stored test predictions
(`core.modeling.results.HeldOutPredictions`): what the Compare page asks for per task kind
(`CHARTS`). Per-candidate charts take one candidate; the overlays take several, one colour each.
"""
from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from core.charts import evaluation
from core.charts import multiclass as multiclass_charts
from core.charts import regression as regression_charts
from core.charts.words import Words

# chart name -> drawn for one candidate (False: the candidates overlaid)
CHARTS: dict[str, dict[str, bool]] = {
    "multiclass": {"roc_per_class": True, "confusion": True, "precision": False, "recall": False},
    "regression": {"predicted_vs_actual": True, "residuals": True, "errors": False, "coverage": False},
}


def figure(name: str, names: Sequence[str], held_out: Sequence[Any], spec: Any) -> go.Figure:
    """Chart `name` of the candidates `names` (their stored predictions `held_out`, in the same
    order; one of them for a per-candidate chart, titled with its name) for dataset `spec`.
    ValueError for a chart the task does not have."""
    task = spec.target.task
    if name not in CHARTS.get(task, {}):
        raise ValueError(f"A {task} model has no chart {name!r}; its charts: {', '.join(CHARTS.get(task, {}))}.")
    colours = evaluation.colour_map(names)
    words, target, unit = Words.of(spec), spec.target.column, spec.target.unit
    h, title = held_out[0], names[0]
    if name == "roc_per_class":
        return multiclass_charts.roc_per_class(h.y_true, h.proba, h.classes, title=title, words=words)
    if name == "confusion":
        return multiclass_charts.confusion(h.y_true, h.proba, h.classes, title=title, words=words)
    if name in ("precision", "recall"):
        series = {n: (x.y_true, x.proba) for n, x in zip(names, held_out)}
        return multiclass_charts.per_class(series, h.classes, name, colours=colours, words=words)
    if name == "predicted_vs_actual":
        return regression_charts.predicted_vs_actual(h.y_true, h.prediction, title=title, target=target, unit=unit,
                                                     colour=colours[title])
    if name == "residuals":
        half = float((h.upper[0] - h.lower[0]) / 2) if len(h.upper) else None
        return regression_charts.residuals(h.y_true, h.prediction, half, title=title, target=target, unit=unit,
                                           colour=colours[title])
    if name == "errors":
        return regression_charts.error_distribution({n: (x.y_true, x.prediction) for n, x in zip(names, held_out)},
                                                    unit=unit, colours=colours)
    return regression_charts.interval_coverage(regression_charts.interval_series(names, held_out), h.level,
                                               target=target, unit=unit, colours=colours)
