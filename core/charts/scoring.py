"""Plotly figures of production scoring: the predicted probability's distribution in several batches."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.charts.words import Words

COLORS = ("#552583", "#FDB927", "#2E7D32", "#C62828")


def proba_histogram(series: Mapping[str, Sequence[float] | np.ndarray], threshold: float,
                    title: str | None = None, bins: int = 40, words: Words = Words()) -> go.Figure:
    """Overlaid histograms (share of each batch's rows) of the predicted probability, with the
    threshold marked."""
    fig = go.Figure()
    edges = dict(start=0.0, end=1.0, size=1.0 / bins)
    for i, (name, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=float)
        fig.add_trace(go.Histogram(x=v, xbins=edges, histnorm="percent", name=f"{name} ({len(v):,} {words.rows})",
                                   opacity=0.6, marker_color=COLORS[i % len(COLORS)],
                                   hovertemplate=f"{words.proba} %{{x}}<br>%{{y:.1f}} % of {words.rows}"
                                                 "<extra>%{fullData.name}</extra>"))
    fig.add_vline(x=threshold, line=dict(color="#333", dash="dash"),
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    fig.update_layout(template="plotly_white", barmode="overlay", title=title or f"{words.proba} on test vs production",
                      height=380, margin=dict(l=60, r=20, t=60, b=50),
                      xaxis=dict(title=words.proba, range=[0, 1]), yaxis=dict(title=f"share of {words.rows} (%)"),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig
