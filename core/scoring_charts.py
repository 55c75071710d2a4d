"""Plotly figures of production scoring: P(made) distributions of several batches."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

COLORS = ("#552583", "#FDB927", "#2E7D32", "#C62828")


def proba_histogram(series: Mapping[str, Sequence[float] | np.ndarray], threshold: float,
                    title: str = "P(made) on test vs production", bins: int = 40) -> go.Figure:
    """Overlaid histograms (share of each batch's shots) of P(made), with the threshold marked."""
    fig = go.Figure()
    edges = dict(start=0.0, end=1.0, size=1.0 / bins)
    for i, (name, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=float)
        fig.add_trace(go.Histogram(x=v, xbins=edges, histnorm="percent", name=f"{name} ({len(v):,} shots)",
                                   opacity=0.6, marker_color=COLORS[i % len(COLORS)],
                                   hovertemplate="P(made) %{x}<br>%{y:.1f} % of shots<extra>%{fullData.name}</extra>"))
    fig.add_vline(x=threshold, line=dict(color="#333", dash="dash"),
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    fig.update_layout(template="plotly_white", barmode="overlay", title=title, height=380,
                      margin=dict(l=60, r=20, t=60, b=50),
                      xaxis=dict(title="P(made)", range=[0, 1]), yaxis=dict(title="share of shots (%)"),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig
