"""Plotly figure of the Serve page: a clickable court for picking a shot's location."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core import charts


def court_picker(lat: float, lon: float, step_ft: float = 1.0) -> go.Figure:
    """A half court covered by a grid of nearly invisible points (one per `step_ft`), each
    carrying its lat/lon, with the current location marked; clicking a point selects it."""
    xs = np.arange(-25.0, 25.0 + 1e-9, step_ft)
    ys = np.arange(-4.0, 42.0 + 1e-9, step_ft)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    glat, glon = charts.lat_lon(gx, gy)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=gx, y=gy, mode="markers", name="pick", showlegend=False,
        marker=dict(size=9, color="rgba(85, 37, 131, 0.02)"),
        customdata=np.column_stack([glat, glon, np.hypot(gx, gy)]),
        hovertemplate="lat %{customdata[0]:.4f}, lon %{customdata[1]:.4f}<br>"
                      "%{customdata[2]:.0f} ft from the hoop<extra>click to pick</extra>",
    ))
    x, y = charts.court_xy(np.array([lat]), np.array([lon]))
    fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="the shot", hoverinfo="skip",
                             marker=dict(size=16, color="#552583", line=dict(width=2, color="white"))))
    fig.update_layout(
        **charts.LAYOUT, shapes=charts.court_shapes(), height=380, showlegend=False,
        title="Click the court to pick the location",
        xaxis=dict(title="court x (ft, hoop at 0)", range=[-26, 26], zeroline=False, showgrid=False),
        yaxis=dict(title="court y (ft from hoop)", range=[-6, 43], scaleanchor="x", scaleratio=1,
                   zeroline=False, showgrid=False),
        clickmode="event+select", dragmode=False,
    )
    return fig
