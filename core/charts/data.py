"""Plotly figures of the data: per-feature distributions, class balance and rows per step.

A dataset's own view (e.g. Kobe's court chart in `datasets/kobe/view.py`) adds figures of its
own; these work on any dataset.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.words import Words

POSITIVE, NEGATIVE = "#2E7D32", "#C62828"  # the two classes, in every chart
COLORS = {"Dev": "#552583", "Prod": "#FDB927", "Correct": POSITIVE, "Incorrect": NEGATIVE}
LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40))


def distributions(frames: Mapping[str, pd.DataFrame], features: Sequence[str]) -> go.Figure:
    """Per-feature histograms (share of rows) of several frames overlaid, e.g. dev vs prod."""
    cols = 3
    rows = int(np.ceil(len(features) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(features),
                        horizontal_spacing=0.07, vertical_spacing=0.16)
    for i, feat in enumerate(features):
        r, c = i // cols + 1, i % cols + 1
        lo = min(float(f[feat].min()) for f in frames.values())
        hi = max(float(f[feat].max()) for f in frames.values())
        discrete = all(np.allclose(f[feat], np.round(f[feat])) for f in frames.values()) and hi - lo <= 60
        bins = dict(start=lo - 0.5, end=hi + 0.5, size=1) if discrete else dict(
            start=lo, end=hi, size=(hi - lo) / 40 or 1)
        for name, frame in frames.items():
            fig.add_trace(go.Histogram(
                x=frame[feat], name=name, legendgroup=name, showlegend=i == 0, xbins=bins,
                histnorm="percent", opacity=0.6, marker_color=COLORS.get(name),
                hovertemplate=f"{feat} %{{x}}<br>%{{y:.1f}} % of rows<extra>{name}</extra>",
            ), row=r, col=c)
        fig.update_yaxes(title_text="% of rows" if c == 1 else None, row=r, col=c)
    fig.update_layout(**LAYOUT, barmode="overlay", height=300 * rows,
                      title="Feature distributions (share of rows in each set)")
    return fig


def class_balance(positive_rate: Mapping[str, float], rows: Mapping[str, int], words: Words = Words()) -> go.Figure:
    """Share of positive rows per split, with row counts."""
    names = list(positive_rate)
    fig = go.Figure(go.Bar(
        x=names, y=[100 * positive_rate[n] for n in names],
        text=[f"{100 * positive_rate[n]:.1f} %<br>{rows.get(n, 0):,} rows" for n in names],
        textposition="outside", marker_color=["#552583" if n != "prod" else "#FDB927" for n in names],
        hovertemplate="%{x}: %{y:.1f} % " + words.positive + "<extra></extra>",
    ))
    top = min(100.0, max(10.0, 100 * max(positive_rate.values(), default=0.5) * 1.3))
    fig.update_layout(**LAYOUT, title=f"Class balance: share of {words.positive} {words.rows} per split", height=360,
                      yaxis=dict(title=f"{words.positive} {words.rows} (%)", range=[0, top]), xaxis=dict(title="split"))
    return fig


def row_funnel(steps: Mapping[str, int]) -> go.Figure:
    """Rows at each preparation step."""
    names = list(steps)
    fig = go.Figure(go.Bar(
        y=names[::-1], x=[steps[n] for n in names][::-1], orientation="h",
        text=[f"{steps[n]:,}" for n in names][::-1], textposition="auto", marker_color="#552583",
        hovertemplate="%{y}: %{x:,} rows<extra></extra>",
    ))
    fig.update_layout(**LAYOUT, title="Rows at each step", height=360, xaxis=dict(title="rows"))
    return fig
