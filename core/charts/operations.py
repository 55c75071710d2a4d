"""Plotly figures of the model server's traffic over a window, drawn from an `OpsStats`
(`core.monitoring.ops.stats`) alone: requests per time bucket (answered and refused) and the
server's latency over time. Both put time on a date axis spanning the whole window (in UTC, as
the inference log holds it), so a single bucket sits where it happened instead of stretching
over an axis of its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    from core.monitoring.ops import OpsStats

ANSWERED, REFUSED = "#552583", "#C62828"
SINGLE_P50, SINGLE_P99, ALL_P99 = "#552583", "#FDB927", "#7A6E5D"
# the title at the top left, the legend at the top right in the traces' order: neither covers the other
LAYOUT = dict(template="plotly_white", height=280, margin=dict(l=50, r=10, t=56, b=40),
              legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1, font_size=12,
                          traceorder="normal"),
              font=dict(size=13), hovermode="x unified")
# the latency axis's labels: 1-2-5 steps (plotly's own log labels repeat "2" and "5" in every decade)
LOG_TICKS = tuple(m * 10 ** e for e in range(-1, 6) for m in (1, 2, 5))
MIN_LATENCY_POINTS = 2  # a latency line needs two buckets; fewer are said in words (`latency_points`)


def _when(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC").tz_localize(None)  # plotly draws naive times as given


def _time_axis(report: "OpsStats") -> dict[str, Any]:
    """A date x-axis over the window: `since` (or the first bucket) to `until`."""
    starts = [_when(b["start"]) for b in report.per_bucket]
    low = _when(report.since) if report.since else (min(starts) if starts else _when(report.until))
    high = _when(report.until)
    if high <= low:
        high = low + pd.Timedelta(minutes=report.bucket_minutes)
    return dict(type="date", range=[low, high], title=dict(text="time (UTC)", font_size=12),
                tickformat="%H:%M\n%b %d", showgrid=True)


def _centres(report: "OpsStats") -> list[pd.Timestamp]:
    half = pd.Timedelta(minutes=report.bucket_minutes / 2)
    return [_when(b["start"]) + half for b in report.per_bucket]


def traffic(report: "OpsStats") -> go.Figure:
    """Requests per bucket of `bucket_minutes`, answered and refused stacked, on the window's time axis."""
    x = _centres(report)
    refused = [b["refused"] for b in report.per_bucket]
    answered = [b["requests"] - b["refused"] for b in report.per_bucket]
    width = report.bucket_minutes * 60_000 * 0.85  # milliseconds on a date axis
    fig = go.Figure([
        go.Bar(x=x, y=answered, name="answered", marker_color=ANSWERED, width=width,
               hovertemplate="%{y:,} answered<extra></extra>"),
        go.Bar(x=x, y=refused, name="refused", marker_color=REFUSED, width=width,
               hovertemplate="%{y:,} refused<extra></extra>")])
    fig.update_layout(**LAYOUT, barmode="stack",
                      title=dict(text=f"Requests per {report.bucket_minutes:g} min", font_size=15, x=0.01, y=0.97),
                      xaxis=_time_axis(report),
                      # whole requests: no 0.5 ticks while the counts are small
                      yaxis=dict(title="requests", rangemode="tozero", tickformat=",d",
                                 dtick=1 if max((b["requests"] for b in report.per_bucket), default=0) <= 5 else None))
    return fig


def _with_gaps(report: "OpsStats") -> tuple[list[pd.Timestamp], list[dict[str, Any]]]:
    """The buckets' centres and the buckets, with an empty point between two buckets that are not
    next to each other: a line breaks where no request came, instead of joining across the gap."""
    step = pd.Timedelta(minutes=report.bucket_minutes)
    x: list[pd.Timestamp] = []
    buckets: list[dict[str, Any]] = []
    for centre, b in zip(_centres(report), report.per_bucket):
        if x and centre - x[-1] > step * 1.5:
            x.append(x[-1] + step)
            buckets.append({})
        x.append(centre)
        buckets.append(b)
    return x, buckets


def latency_points(report: "OpsStats") -> int:
    """How many buckets hold a latency (each bucket with a request does)."""
    return sum(b["p50_ms"] is not None for b in report.per_bucket)


def latency(report: "OpsStats") -> go.Figure | None:
    """The server's p50/p99 latency per bucket for single-row requests, and the p99 of every
    request (batches included) dotted, on the window's time axis and a log scale; None with fewer than
    MIN_LATENCY_POINTS buckets (a line of one point says nothing: the page says it in words)."""
    if latency_points(report) < MIN_LATENCY_POINTS:
        return None
    x, buckets = _with_gaps(report)
    lines = [("1-row p50", "single_row_p50_ms", SINGLE_P50, "solid"),
             ("1-row p99", "single_row_p99_ms", SINGLE_P99, "solid"),
             ("all-sizes p99", "p99_ms", ALL_P99, "dot")]
    fig = go.Figure()
    for name, key, colour, dash in lines:
        y = [b.get(key) for b in buckets]
        if any(v is not None for v in y):
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers", connectgaps=False,
                                     line=dict(color=colour, dash=dash), marker=dict(size=6),
                                     hovertemplate=f"{name} %{{y:.2f}} ms<extra></extra>"))
    # a log scale: a batch's hundreds of milliseconds would flatten the single rows' few otherwise
    fig.update_layout(**LAYOUT, title=dict(text="Server latency (ms)", font_size=15, x=0.01, y=0.97),
                      xaxis=_time_axis(report), yaxis=dict(title="ms (log scale)", type="log", tickmode="array",
                                                           tickvals=LOG_TICKS, ticktext=[f"{v:g}" for v in LOG_TICKS]))
    return fig
