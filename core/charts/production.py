"""Plotly figures of a multiclass or regression model on a production batch against the test
split (the Production page; binary: `scoring` and `evaluation`), from the model's outputs
(`core.monitoring.outputs`) and an `Adherence` (`core.monitoring.adherence.task_adherence`).

- multiclass: the class shares (predicted and actual, test vs production), the k x k confusion
  matrix of the labelled production rows, F1 per class;
- regression: predicted vs actual with the interval band, the error distribution, the interval
  coverage against its nominal level, the prediction's distribution.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

TEST, PROD, ACTUAL, BAND = "#7A6E5D", "#FDB927", "#552583", "rgba(85, 37, 131, 0.12)"
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50))
LEGEND = dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom")
BELOW = dict(orientation="h", yanchor="top", y=-0.25, x=0)


def class_shares(outputs: Mapping[str, Any], title: str = "Class shares: test vs production") -> go.Figure:
    """Predicted and actual class shares on the test split and in production (`Adherence.outputs`)."""
    names = list(outputs.get("classes", ()))
    fig = go.Figure()
    for key, label, colour, pattern in (("predicted_test", "predicted, test", TEST, None),
                                        ("actual_test", "actual, test", TEST, "/"),
                                        ("predicted_batch", "predicted, production", PROD, None),
                                        ("actual_batch", "actual, production", ACTUAL, None)):
        if outputs.get(key) is not None:
            fig.add_bar(x=names, y=outputs[key], name=label, marker_color=colour, marker_pattern_shape=pattern)
    fig.update_layout(**{**LAYOUT, "margin": dict(l=60, r=20, t=60, b=110)}, barmode="group", title=title,
                      xaxis_title="class", yaxis_title="share of rows", yaxis_tickformat=".0%", height=420,
                      legend=BELOW)  # four series: beside the title they would cover it in a half-width column
    return fig


def confusion(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str],
              title: str = "Production confusion matrix") -> go.Figure:
    """The k x k confusion matrix of labelled rows (rows: actual class, columns: predicted, the
    most probable class), each cell's count and its share of the actual class."""
    y = np.asarray(y_true).astype(int)
    pred = np.asarray(proba, dtype="float64").argmax(axis=1)
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y, pred), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    text = [[f"{counts[i, j]:,}<br>{share[i, j]:.0%}" for j in range(k)] for i in range(k)]
    fig = go.Figure(go.Heatmap(z=share, x=list(classes), y=list(classes), text=text, texttemplate="%{text}",
                               colorscale="Purples", zmin=0, zmax=1, showscale=False,
                               hovertemplate="actual %{y}, predicted %{x}: %{text}<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="predicted class", yaxis_title="actual class",
                      yaxis_autorange="reversed", height=max(320, 120 + 60 * k))
    return fig


def f1_per_class(test: Mapping[str, float], prod: Mapping[str, float] | None, classes: Sequence[str]) -> go.Figure:
    """F1 of each class (one-vs-rest) on the test split and in production."""
    fig = go.Figure()
    fig.add_bar(x=list(classes), y=[test.get(f"f1_{i}") for i in range(len(classes))], name="test",
                marker_color=TEST)
    if prod is not None:
        fig.add_bar(x=list(classes), y=[prod.get(f"f1_{i}") for i in range(len(classes))], name="production",
                    marker_color=PROD)
    fig.update_layout(**LAYOUT, barmode="group", title="F1 per class: test vs production", xaxis_title="class",
                      yaxis_title="F1", yaxis_range=[0, 1], height=340, legend=LEGEND)
    return fig


def _sample(n: int, k: int = 5000, seed: int = 0) -> np.ndarray:
    """At most `k` row positions (a scatter of every row of a large batch is unreadable)."""
    return np.arange(n) if n <= k else np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def predicted_vs_actual(series: Mapping[str, tuple[np.ndarray, np.ndarray]], halfwidth: float | None = None,
                        level: float | None = None, target: str = "target", unit: str = "") -> go.Figure:
    """Predicted vs actual values ({name: (actual, outputs (n, 3))}), the diagonal and the
    interval band around it (a point outside the band fell outside its interval)."""
    fig = go.Figure()
    lows, highs = [], []
    for (name, (y, out)), colour in zip(series.items(), (TEST, PROD, ACTUAL)):
        y, pred = np.asarray(y, dtype="float64"), np.asarray(out, dtype="float64")[:, 0]
        keep = _sample(len(y))
        fig.add_scatter(x=pred[keep], y=y[keep], mode="markers", name=f"{name} ({len(y):,} rows)",
                        marker=dict(color=colour, size=5, opacity=0.5),
                        hovertemplate="predicted %{x:,.4g}, actual %{y:,.4g}<extra>%{fullData.name}</extra>")
        if len(y):
            lows.append(min(y.min(), pred.min()))
            highs.append(max(y.max(), pred.max()))
    if lows:
        lo, hi = min(lows), max(highs)
        line = np.array([lo, hi])
        if halfwidth is not None:
            fig.add_scatter(x=[lo, hi, hi, lo], y=[lo - halfwidth, hi - halfwidth, hi + halfwidth, lo + halfwidth],
                            mode="lines", fill="toself", fillcolor=BAND, line=dict(width=0), hoverinfo="skip",
                            name=f"{level:.0%} interval" if level else "interval")
        fig.add_scatter(x=line, y=line, mode="lines", line=dict(color="#444", dash="dash"), name="actual = predicted")
    u = f" ({unit})" if unit else ""
    # four series: beside the title, in a half-width column, their legend would cover it
    fig.update_layout(**LAYOUT, title=f"Predicted vs actual {target}", xaxis_title=f"predicted {target}{u}",
                      yaxis_title=f"actual {target}{u}", height=440, legend=BELOW)
    return fig


def errors(series: Mapping[str, tuple[np.ndarray, np.ndarray]], halfwidth: float | None = None,
           target: str = "target", unit: str = "") -> go.Figure:
    """The distribution of the errors (actual - predicted) per batch, the interval's half width
    marked on both sides."""
    fig = go.Figure()
    for (name, (y, out)), colour in zip(series.items(), (TEST, PROD, ACTUAL)):
        e = np.asarray(y, dtype="float64") - np.asarray(out, dtype="float64")[:, 0]
        fig.add_histogram(x=e, histnorm="percent", name=f"{name} ({len(e):,} rows)", marker_color=colour,
                          opacity=0.6, nbinsx=50)
    if halfwidth is not None:
        for x in (-halfwidth, halfwidth):
            fig.add_vline(x=x, line_dash="dash", line_color="#444")
    u = f" ({unit})" if unit else ""
    fig.update_layout(**LAYOUT, barmode="overlay", title=f"Errors (actual − predicted {target}); dashed: the interval",
                      xaxis_title=f"error{u}", yaxis_title="share of rows (%)", height=360, legend=LEGEND)
    return fig


def coverage(test: float | None, prod: float | None, level: float | None, target: str = "target") -> go.Figure:
    """The share of actual values inside their interval on the test split and in production,
    against the nominal level."""
    bars = [("test", test, TEST), ("production", prod, PROD)]
    bars = [b for b in bars if b[1] is not None and np.isfinite(b[1])]
    fig = go.Figure(go.Bar(x=[b[0] for b in bars], y=[b[1] for b in bars], marker_color=[b[2] for b in bars],
                           text=[f"{b[1]:.1%}" for b in bars], textposition="inside", insidetextanchor="middle"))
    if level is not None and np.isfinite(level):
        fig.add_hline(y=level, line_dash="dash", line_color="#444", annotation_text=f"nominal {level:.0%}",
                      annotation_position="top left")
    fig.update_layout(**LAYOUT, title="Interval coverage: test vs production",
                      yaxis_title="share inside the interval", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1.05], height=340,
                      showlegend=False)
    return fig


def predictions(series: Mapping[str, np.ndarray], target: str = "target", unit: str = "") -> go.Figure:
    """Overlaid histograms of the predictions (outputs (n, 3)) per batch."""
    fig = go.Figure()
    for (name, out), colour in zip(series.items(), (TEST, PROD, ACTUAL)):
        pred = np.asarray(out, dtype="float64")[:, 0]
        fig.add_histogram(x=pred, histnorm="percent", name=f"{name} ({len(pred):,} rows)", marker_color=colour,
                          opacity=0.6, nbinsx=50)
    u = f" ({unit})" if unit else ""
    fig.update_layout(**LAYOUT, barmode="overlay", title=f"Predicted {target}: test vs production",
                      xaxis_title=f"predicted {target}{u}", yaxis_title="share of rows (%)", height=360, legend=LEGEND)
    return fig
