"""Plotly figures of the data: the shot chart on a court drawn to scale, distributions, balance.

Court geometry (NBA, feet, hoop at the origin, y away from the baseline). The Kobe data's
lat/lon map linearly onto the court: x_ft = 100 * (lon + 118.2698), y_ft = 100 * (34.0443 - lat)
(fitted on the dev file: loc_x = 1000 * (lon + 118.2698), loc_y = -1000 * (lat - 34.0443),
loc_* in tenths of a foot).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HOOP_LON = -118.2698
HOOP_LAT = 34.0443
FT_PER_DEGREE = 100.0
COURT_LINE = "#7A6E5D"
COLORS = {"Made": "#2E7D32", "Missed": "#C62828", "Dev": "#552583", "Prod": "#FDB927",
          "Correct": "#2E7D32", "Incorrect": "#C62828"}
LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40))


def court_xy(lat: np.ndarray | pd.Series, lon: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Court coordinates in feet (hoop at 0, 0) from lat/lon."""
    x = (np.asarray(lon, dtype=float) - HOOP_LON) * FT_PER_DEGREE
    y = (HOOP_LAT - np.asarray(lat, dtype=float)) * FT_PER_DEGREE
    return x, y


def lat_lon(x_ft: float, y_ft: float) -> tuple[float, float]:
    """lat/lon of a court point in feet (inverse of `court_xy`)."""
    return HOOP_LAT - y_ft / FT_PER_DEGREE, HOOP_LON + x_ft / FT_PER_DEGREE


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 60) -> str:
    t = np.linspace(np.radians(a0), np.radians(a1), n)
    pts = [f"{cx + r * np.cos(a):.3f},{cy + r * np.sin(a):.3f}" for a in t]
    return "M " + " L ".join(pts)


def court_shapes() -> list[dict]:
    """Half-court lines as plotly shapes (feet)."""
    line = dict(color=COURT_LINE, width=1.5)
    corner_y = float(np.sqrt(23.75**2 - 22.0**2))
    three_angle = float(np.degrees(np.arctan2(corner_y, 22.0)))
    return [
        dict(type="rect", x0=-25, y0=-4.75, x1=25, y1=42.25, line=line),             # half court
        dict(type="rect", x0=-8, y0=-4.75, x1=8, y1=14.25, line=line),               # paint
        dict(type="circle", x0=-6, y0=8.25, x1=6, y1=20.25, line=line),              # free-throw circle
        dict(type="circle", x0=-0.75, y0=-0.75, x1=0.75, y1=0.75, line=line),        # hoop
        dict(type="line", x0=-3, y0=-1, x1=3, y1=-1, line=line),                     # backboard
        dict(type="path", path=_arc(0, 0, 4, 0, 180), line=line),                    # restricted area
        dict(type="line", x0=-22, y0=-4.75, x1=-22, y1=corner_y, line=line),         # corner threes
        dict(type="line", x0=22, y0=-4.75, x1=22, y1=corner_y, line=line),
        dict(type="path", path=_arc(0, 0, 23.75, three_angle, 180 - three_angle), line=line),  # arc
        dict(type="path", path=_arc(0, 42.25, 6, 180, 360), line=line),              # centre circle
    ]


def shot_chart(
    df: pd.DataFrame,
    color: str | None = "shot_made_flag",
    labels: Mapping[object, str] | None = None,
    title: str = "Shot chart",
    max_points: int = 25_000,
    seed: int = 0,
) -> go.Figure:
    """Shots on a court drawn to scale, coloured by `color` (values renamed through `labels`).

    Defaults colour by the target as Made/Missed. Large frames are sampled to `max_points`.
    """
    if len(df) > max_points:
        df = df.sample(max_points, random_state=seed)
    if labels is None and color == "shot_made_flag":
        labels = {1: "Made", 0: "Missed", 1.0: "Made", 0.0: "Missed"}
    x, y = court_xy(df["lat"], df["lon"])
    fig = go.Figure()
    groups = [("Shots", np.ones(len(df), dtype=bool))] if color is None else [
        ((labels or {}).get(v, str(v)), (df[color] == v).to_numpy()) for v in sorted(df[color].dropna().unique())
    ]
    for name, mask in groups:
        fig.add_trace(go.Scattergl(
            x=x[mask], y=y[mask], mode="markers", name=f"{name} ({int(mask.sum()):,})",
            marker=dict(size=4, opacity=0.45, color=COLORS.get(name)),
            customdata=np.column_stack([df["lat"].to_numpy()[mask], df["lon"].to_numpy()[mask],
                                        df["shot_distance"].to_numpy()[mask]]),
            hovertemplate="lat %{customdata[0]:.4f}, lon %{customdata[1]:.4f}<br>"
                          "distance %{customdata[2]:.0f} ft<extra>%{fullData.name}</extra>",
        ))
    y_top = max(47.0, float(np.nanmax(y)) + 2 if len(y) else 47.0)
    fig.update_layout(
        **LAYOUT, title=title, shapes=court_shapes(), height=520,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        xaxis=dict(title="court x (ft, hoop at 0)", range=[-26, 26], zeroline=False, showgrid=False),
        yaxis=dict(title="court y (ft from hoop)", range=[-6, y_top], scaleanchor="x", scaleratio=1,
                   zeroline=False, showgrid=False),
    )
    return fig


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


def class_balance(positive_rate: Mapping[str, float], rows: Mapping[str, int]) -> go.Figure:
    """Share of made shots per split, with row counts."""
    names = list(positive_rate)
    fig = go.Figure(go.Bar(
        x=names, y=[100 * positive_rate[n] for n in names],
        text=[f"{100 * positive_rate[n]:.1f} %<br>{rows.get(n, 0):,} rows" for n in names],
        textposition="outside", marker_color=["#552583" if n != "prod" else "#FDB927" for n in names],
        hovertemplate="%{x}: %{y:.1f} % made<extra></extra>",
    ))
    fig.update_layout(**LAYOUT, title="Class balance: share of made shots per split", height=360,
                      yaxis=dict(title="made shots (%)", range=[0, 70]), xaxis=dict(title="split"))
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
