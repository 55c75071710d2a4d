"""Evaluation figures of a multiclass classifier's probabilities: one-vs-rest ROC per class, the
k x k confusion matrix and per-class precision and recall (several candidates overlaid, one
colour each). Drawn from the stored data (`core.modeling.results.HeldOutPredictions`: the labels
and the class probabilities, rows x classes in the model's label order, and the class names).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from sklearn import metrics as skm

from core.charts.evaluation import PALETTE, _colour, _figure
from core.charts.words import Words

# {candidate name: (labels, class probabilities rows x classes)}
Series = Mapping[str, tuple[Sequence[int] | np.ndarray, np.ndarray]]


def _arrays(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true).astype(int), np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] != y.shape[0] or p.shape[1] != k:
        raise ValueError(f"Expected {len(y)} rows of {k} class probabilities, got an array of shape {p.shape}.")
    return y, p


def predicted_class(proba: np.ndarray) -> np.ndarray:
    """The most probable class of each row (what a multiclass model answers)."""
    return np.asarray(proba, dtype=float).argmax(axis=1)


def roc_per_class(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, classes: Sequence[str],
                  title: str = "ROC per class (one vs rest)", words: Words = Words()) -> go.Figure:
    """One ROC curve per class, that class against all the others (AUC in the legend), with the
    chance diagonal. A class absent from the labels (or the only one present) has no curve."""
    y, p = _arrays(y_true, proba, len(classes))
    fig = _figure(title, "False positive rate", "True positive rate (recall)", unit_axes=True, height=440)
    for i, name in enumerate(classes):
        hit = (y == i).astype(int)
        if hit.min() == hit.max():
            continue
        fpr, tpr, _ = skm.roc_curve(hit, p[:, i])
        auc = skm.roc_auc_score(hit, p[:, i])
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc:.3f})",
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dash", color="grey")))
    return fig


def confusion_counts(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows the actual class, columns the most probable one."""
    y, p = _arrays(y_true, proba, k)
    return skm.confusion_matrix(y, predicted_class(p), labels=list(range(k)))


def confusion(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, classes: Sequence[str],
              title: str = "Confusion matrix (most probable class)", words: Words = Words()) -> go.Figure:
    """The k x k confusion matrix: counts, and in each cell its share of the actual class's rows
    (the diagonal is each class's recall); shaded by that share, so that a rare class reads as
    clearly as a common one."""
    k = len(classes)
    counts = confusion_counts(y_true, proba, k)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [str(c) for c in classes]
    text = [[f"{counts[i, j]:,}<br>{share[i, j]:.0%}" for j in range(k)] for i in range(k)]
    fig = _figure(title, "Predicted class", "Actual class", height=max(360, 90 + 48 * k))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.add_trace(go.Heatmap(z=share, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues",
                             zmin=0, zmax=1, showscale=False, customdata=counts,
                             hovertemplate="actual %{y}<br>predicted %{x}<br>%{customdata:,} " + words.rows
                             + " (%{z:.1%} of the actual class)<extra></extra>"))
    return fig


def per_class_scores(y_true: Sequence[int] | np.ndarray, proba: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of each class (its most probable class), and its test rows."""
    y, p = _arrays(y_true, proba, k)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted_class(p), labels=list(range(k)), zero_division=0)
    return {"precision": precision, "recall": recall, "f1": f1, "rows": support}


def per_class(series: Series, classes: Sequence[str], metric: str = "recall", title: str | None = None,
              colours: Mapping[str, str] | None = None, words: Words = Words()) -> go.Figure:
    """Grouped bars of one per-class figure (`metric`: precision, recall or f1), a bar per
    candidate in each class, the class's test rows under its name."""
    if metric not in ("precision", "recall", "f1"):
        raise ValueError(f"Unknown per-class figure {metric!r}; choose precision, recall or f1.")
    k = len(classes)
    what = {"precision": "Precision (of the calls of the class)", "recall": "Recall (of the class's rows found)",
            "f1": "F1"}[metric]
    fig = _figure(title or f"{metric.capitalize() if metric != 'f1' else 'F1'} per class", "", what,
                  height=440, barmode="group")  # the classes name the ticks; the legend goes below them
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    fig.update_yaxes(range=[0, 1.05])
    rows = None
    for i, (name, (y_true, proba)) in enumerate(series.items()):
        scores = per_class_scores(y_true, proba, k)
        rows = scores["rows"] if rows is None else rows
        fig.add_trace(go.Bar(x=list(range(k)), y=scores[metric], name=name, marker_color=_colour(colours, name, i),
                             hovertemplate="%{y:.3f}<extra>" + name.replace("<", "&lt;") + "</extra>"))
    ticks = [f"{c}<br>({int(rows[j]):,} {words.rows})" if rows is not None else str(c) for j, c in enumerate(classes)]
    fig.update_xaxes(tickmode="array", tickvals=list(range(k)), ticktext=ticks)
    return fig
