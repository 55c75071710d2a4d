"""Plotly figures of one served answer: a multiclass model's probability per class."""
from __future__ import annotations

from typing import Mapping

import plotly.graph_objects as go

PREDICTED, OTHER = "#552583", "#B8B8C8"


def class_bars(probabilities: Mapping[str, float], title: str | None = None) -> go.Figure:
    """One horizontal bar per class (in the model's class order, top to bottom) with its
    probability in percent; the most probable class (the answer) stands out in colour."""
    names = [str(n) for n in probabilities]
    values = [100.0 * float(v) for v in probabilities.values()]
    best = max(range(len(values)), key=values.__getitem__) if values else -1
    fig = go.Figure(go.Bar(
        x=values, y=names, orientation="h", marker_color=[PREDICTED if i == best else OTHER for i in range(len(names))],
        text=[f"{v:.1f} %" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2f} %<extra></extra>"))
    fig.update_layout(template="plotly_white", title=title or "Probability per class", showlegend=False,
                      height=max(180, 60 + 36 * len(names)), margin=dict(l=10, r=50, t=50, b=40),
                      xaxis=dict(title="probability (%)", range=[0, 112], fixedrange=True),
                      yaxis=dict(autorange="reversed", fixedrange=True, type="category"))
    return fig
