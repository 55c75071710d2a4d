"""Plotly figures of a `core.monitoring.trends.Trend`: the statistic of each feature per chunk (or
per check) against its threshold, worst feature first, and the estimate against the policy's
line; the points with dataset drift shaded. Every marker carries its point's position
(`customdata`), so a page can open the chunk a user clicked (`selected_point`)."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.drift import BATCH, DRIFT, STABLE, TRAIN
from core.monitoring.trends import Series, Trend

PANEL_PX = 150  # height of one panel
SHADE = "rgba(198, 40, 40, 0.09)"  # the points with dataset drift


def _panel(fig: go.Figure, row: int, s: Series, trend: Trend, colour: str) -> None:
    x = list(trend.labels)
    kinds = s.kinds or ("",) * len(x)
    trusted = s.trusted or (True,) * len(x)
    hover = [f"{b}<br>{s.statistic}: {'n/a' if v is None else f'{v:.4g}'}"
             + (f" ({k}{'' if ok else ', NOT trustworthy'})" if k else "") + (" · FIRED" if f else "")
             for b, v, k, f, ok in zip(trend.bounds, s.values, kinds, s.flagged, trusted)]
    fig.add_scatter(x=x, y=list(s.values), mode="lines+markers", name=s.name, row=row, col=1, showlegend=False,
                    line=dict(color=colour, width=2),
                    marker=dict(size=[11 if f else 7 for f in s.flagged],
                                color=[DRIFT if f else STABLE for f in s.flagged],
                                symbol=[("circle" if k != "estimated" else "diamond") + ("" if ok else "-open")
                                        for k, ok in zip(kinds, trusted)],
                                line=dict(width=2, color=[DRIFT if f else STABLE for f in s.flagged])),
                    customdata=list(range(len(x))), hovertext=hover, hoverinfo="text")
    if s.threshold is not None:
        fig.add_scatter(x=x, y=[s.threshold] * len(x), mode="lines", row=row, col=1, showlegend=False,
                        line=dict(color=DRIFT, dash="dash", width=1), hoverinfo="skip")
    fig.update_yaxes(title_text=s.statistic if len(s.statistic) < 18 else s.statistic.replace(" ", "<br>", 1),
                     row=row, col=1, rangemode="tozero" if s.above else "normal", title_font=dict(size=11))


def trend_chart(trend: Trend, max_features: int = 8) -> go.Figure:
    """One panel per feature (the `max_features` worst, worst first) and one for the estimate:
    the statistic per point (red markers where it fired), its threshold dashed, the points with
    dataset drift shaded."""
    shown = list(trend.features[:max_features])
    panels = ([trend.estimate] if trend.estimate is not None else []) + shown
    titles = []
    for i, s in enumerate(panels):
        if i == 0 and trend.estimate is not None:
            limit = "" if s.threshold is None else f" · dashed: {'above' if s.above else 'below'} {s.threshold:.4g} is degraded"
            titles.append(f"Model: {s.name} (● realised where labelled, ◆ estimated, hollow: not trustworthy){limit}")
        else:
            fired = sum(s.flagged)
            titles.append(f"{s.name}: {s.statistic} · dashed: threshold {s.threshold:.3g}"
                          + (f" · drifted in {fired} of {trend.n_points}" if fired else " · stable"))
    rows = max(len(panels), 1)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=min(0.3 / rows, 0.08),
                        subplot_titles=titles or ["no points"])
    for i, s in enumerate(panels):
        _panel(fig, i + 1, s, trend, BATCH if i == 0 and trend.estimate is not None else TRAIN)
    for i, drifted in enumerate(trend.dataset_drift):  # the points with dataset drift, across every panel
        if drifted:
            fig.add_vrect(x0=i - 0.5, x1=i + 0.5, fillcolor=SHADE, line_width=0, layer="below", row="all", col=1)
    over = "chunk" if trend.source == "chunks" else "check"
    drifted = sum(trend.dataset_drift)
    more = len(trend.features) - len(shown)
    fig.update_layout(template="plotly_white", height=90 + PANEL_PX * rows, margin=dict(l=70, r=20, t=80, b=60),
                      title=dict(text=f"Drift per {over}, worst feature first · {drifted} of {trend.n_points} "
                                      f"{over}s with dataset drift (shaded)"
                                      + (f" · {more} more feature(s) not shown" if more > 0 else ""),
                                 font=dict(size=15)),
                      hovermode="closest", clickmode="event+select")
    fig.update_annotations(font_size=12, xanchor="left", x=0)
    fig.update_xaxes(type="category", tickangle=-30 if trend.n_points > 6 else 0)
    fig.update_xaxes(title_text=f"{over} ({'start' if trend.source == 'chunks' else 'time, UTC'})", row=rows, col=1)
    return fig


def selected_point(event: Any) -> int | None:
    """The point a user clicked in a `trend_chart` (a Streamlit selection event), or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points or ():
        data = p.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            return int(data)
        if p.get("point_index") is not None:
            return int(p["point_index"])
    return None

