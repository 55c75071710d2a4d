"""Kobe's own view: shots on a basketball court drawn to scale, and a court to pick a location.

Loaded by `core.catalog.load_view` because `dataset.toml` names it (`view = "view.py"`); the
pages use it only when the active dataset has a view. The interface every view offers:

- `CHART_TITLE`: the name of the Data page's tab showing `chart`;
- `chart(df, spec, color, labels, title)`: rows of a frame on the court, coloured by a column;
- `picker(values)` and `from_click(point)`: a figure to click on the Serve page, and the feature
  values (lat, lon, shot distance) a click stands for.

Court geometry (NBA, feet, hoop at the origin, y away from the baseline). The Kobe data's
lat/lon map linearly onto the court: x_ft = 100 * (lon + 118.2698), y_ft = 100 * (34.0443 - lat)
(fitted on the dev file: loc_x = 1000 * (lon + 118.2698), loc_y = -1000 * (lat - 34.0443),
loc_* in tenths of a foot).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.data import COLORS, LAYOUT, NEGATIVE, POSITIVE

CHART_TITLE = "Shot chart"
HOOP_LON = -118.2698
HOOP_LAT = 34.0443
FT_PER_DEGREE = 100.0
COURT_LINE = "#7A6E5D"


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


def chart(
    df: pd.DataFrame,
    spec: Any,
    color: str | None = None,
    labels: Mapping[object, str] | None = None,
    title: str = "Shot chart",
    max_points: int = 25_000,
    seed: int = 0,
) -> go.Figure:
    """Shots on a court drawn to scale, coloured by `color` (values renamed through `labels`).

    Without `color`, shots are coloured by the target with the definition's class names.
    Large frames are sampled to `max_points`.
    """
    target = spec.target.column
    if color is None and target in df:
        color = target
    if len(df) > max_points:
        df = df.sample(max_points, random_state=seed)
    colors = dict(COLORS)
    if color == target and labels is None:
        names = spec.class_names
        labels = {1: names[1].capitalize(), 0: names[0].capitalize(), 1.0: names[1].capitalize(),
                  0.0: names[0].capitalize()}
        colors.update({names[1].capitalize(): POSITIVE, names[0].capitalize(): NEGATIVE})
    x, y = court_xy(df["lat"], df["lon"])
    fig = go.Figure()
    groups = [("Shots", np.ones(len(df), dtype=bool))] if color is None else [
        ((labels or {}).get(v, str(v)), (df[color] == v).to_numpy()) for v in sorted(df[color].dropna().unique())
    ]
    # the largest group first, so that a smaller one (e.g. the correct predictions among many
    # misses) is drawn over it rather than hidden under it; the legend keeps the values' order
    order = sorted(range(len(groups)), key=lambda i: -int(groups[i][1].sum()))
    for i in order:
        name, mask = groups[i]
        fig.add_trace(go.Scattergl(
            x=x[mask], y=y[mask], mode="markers", name=f"{name} ({int(mask.sum()):,})", legendrank=1000 + i,
            marker=dict(size=4, opacity=0.45, color=colors.get(name)),
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


def picker(values: Mapping[str, float], step_ft: float = 1.0) -> go.Figure:
    """A half court covered by a grid of nearly invisible points (one per `step_ft`), each
    carrying its lat/lon, with the current location (`values["lat"]`, `values["lon"]`) marked;
    clicking a point selects it."""
    xs = np.arange(-25.0, 25.0 + 1e-9, step_ft)
    ys = np.arange(-4.0, 42.0 + 1e-9, step_ft)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    glat, glon = lat_lon(gx, gy)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=gx, y=gy, mode="markers", name="pick", showlegend=False,
        marker=dict(size=9, color="rgba(85, 37, 131, 0.02)"),
        customdata=np.column_stack([glat, glon, np.hypot(gx, gy)]),
        hovertemplate="lat %{customdata[0]:.4f}, lon %{customdata[1]:.4f}<br>"
                      "%{customdata[2]:.0f} ft from the hoop<extra>click to pick</extra>",
    ))
    x, y = court_xy(np.array([values["lat"]]), np.array([values["lon"]]))
    fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="the shot", hoverinfo="skip",
                             marker=dict(size=16, color="#552583", line=dict(width=2, color="white"))))
    fig.update_layout(
        **LAYOUT, shapes=court_shapes(), height=380, showlegend=False,
        title="Click the court to pick the location",
        xaxis=dict(title="court x (ft, hoop at 0)", range=[-26, 26], zeroline=False, showgrid=False),
        yaxis=dict(title="court y (ft from hoop)", range=[-6, 43], scaleanchor="x", scaleratio=1,
                   zeroline=False, showgrid=False),
        clickmode="event+select", dragmode=False,
    )
    return fig


def from_click(point: Mapping[str, Any]) -> dict[str, float]:
    """The feature values a click on `picker` stands for: lat, lon and the shot distance."""
    x, y = float(point["x"]), float(point["y"])
    lat, lon = lat_lon(x, y)
    return {"lat": round(float(lat), 4), "lon": round(float(lon), 4),
            "shot_distance": float(int(round(float(np.hypot(x, y)))))}
