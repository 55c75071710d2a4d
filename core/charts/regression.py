"""Evaluation figures of a regression model's predictions and intervals: predicted vs actual,
residuals vs predicted, the distribution of the errors and the interval's coverage per range of
predicted values (several candidates overlaid, one colour each, where a chart allows it). Drawn
from the stored data (`core.modeling.results.HeldOutPredictions`: the targets, predictions and
interval bounds on the test split).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.charts.evaluation import _colour, _figure
from core.modeling.intervals import coverage_by_bin

MAX_POINTS = 3000  # a scatter shows at most this many test rows (a fixed random sample): readable, light
ROWS_PER_BIN = 30  # the coverage chart's bins hold at least about this many test rows (10 bins at most)
# an overlay's legend (long candidate names, often two lines) goes below the x axis's title
LEGEND_BELOW = dict(legend=dict(orientation="h", yanchor="top", y=-0.24, x=0), margin=dict(l=60, r=20, t=60, b=40))

# {candidate name: (targets, predictions, lower bounds, upper bounds)}
Series = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def _sample(n: int, seed: int = 0) -> np.ndarray:
    """Row positions to draw: all of them up to MAX_POINTS, else a fixed random sample, in order."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_POINTS, replace=False))


def _with_unit(text: str, unit: str) -> str:
    return f"{text} ({unit})" if unit else text


def predicted_vs_actual(y_true: np.ndarray, prediction: np.ndarray, title: str = "Predicted vs actual",
                        target: str = "target", unit: str = "", colour: str | None = None) -> go.Figure:
    """The prediction of each test row against its actual value, with the line where they are
    equal (points above it are over-predicted)."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float)
    keep = _sample(len(y))
    shown = "" if len(keep) == len(y) else f" ({len(keep):,} of {len(y):,} rows)"
    fig = _figure(title + shown, _with_unit(f"Actual {target}", unit), _with_unit(f"Predicted {target}", unit),
                  showlegend=False)
    lo = float(min(y.min(), p.min())) if len(y) else 0.0
    hi = float(max(y.max(), p.max())) if len(y) else 1.0
    fig.add_trace(go.Scattergl(x=y[keep], y=p[keep], mode="markers", name="test rows",
                               marker=dict(size=5, opacity=0.45, color=colour or "#636efa"),
                               hovertemplate="actual %{x:,.4g}<br>predicted %{y:,.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = actual",
                             line=dict(dash="dash", color="grey")))
    return fig


def residuals(y_true: np.ndarray, prediction: np.ndarray, halfwidth: float | None = None,
              title: str = "Residuals vs predicted", target: str = "target", unit: str = "",
              colour: str | None = None) -> go.Figure:
    """Each test row's error (actual - predicted) against its prediction, with zero and, when the
    interval's `halfwidth` is known, the band the interval allows (rows outside it are the ones
    the interval misses)."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float)
    r = y - p
    keep = _sample(len(y))
    shown = "" if len(keep) == len(y) else f" ({len(keep):,} of {len(y):,} rows)"
    fig = _figure(title + shown, _with_unit(f"Predicted {target}", unit),
                  _with_unit("Actual - predicted", unit), showlegend=True)
    fig.add_trace(go.Scattergl(x=p[keep], y=r[keep], mode="markers", name="test rows",
                               marker=dict(size=5, opacity=0.45, color=colour or "#636efa"),
                               hovertemplate="predicted %{x:,.4g}<br>error %{y:,.4g}<extra></extra>"))
    if len(p):
        lo, hi = float(p.min()), float(p.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[0, 0], mode="lines", name="no error", line=dict(color="grey")))
        if halfwidth is not None and np.isfinite(halfwidth):
            for sign in (1, -1):
                fig.add_trace(go.Scatter(x=[lo, hi], y=[sign * halfwidth] * 2, mode="lines",
                                         name=f"interval: ± {halfwidth:,.4g}", showlegend=sign == 1,
                                         legendgroup="band", line=dict(dash="dash", color="#ef553b")))
    return fig


def error_distribution(series: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "Distribution of the errors",
                       unit: str = "", colours: Mapping[str, str] | None = None, bins: int | None = None) -> go.Figure:
    """Overlaid histograms of each candidate's errors (actual - predicted) on the test split, on
    shared bins (the central 99 % of the errors: a few extreme ones do not squeeze the rest; by
    default about the square root of the rows, 10 to 40), as shares of the rows; RMSE and MAE in
    the legend."""
    errors = {name: np.asarray(y, dtype=float) - np.asarray(p, dtype=float) for name, (y, p) in series.items()}
    pooled = np.concatenate(list(errors.values())) if errors else np.zeros(0)
    fig = _figure(title, _with_unit("Actual - predicted", unit), "Share of the test rows", barmode="overlay",
                  height=460).update_layout(**LEGEND_BELOW)
    if not len(pooled):
        return fig
    n = len(pooled) // max(len(errors), 1)
    bins = bins or int(np.clip(round(np.sqrt(n)), 10, 40))
    lo, hi = np.quantile(pooled, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    for i, (name, r) in enumerate(errors.items()):
        counts, _ = np.histogram(np.clip(r, lo, hi), bins=edges)
        rmse, mae = float(np.sqrt(np.mean(r ** 2))), float(np.mean(np.abs(r)))
        fig.add_trace(go.Bar(x=mids, y=counts / max(len(r), 1), width=float(edges[1] - edges[0]), opacity=0.55,
                             name=f"{name} (RMSE {rmse:,.4g}, MAE {mae:,.4g})", marker_color=_colour(colours, name, i)))
    return fig


def interval_coverage(series: Series, level: float | None = None, title: str = "Interval coverage",
                      target: str = "target", unit: str = "", colours: Mapping[str, str] | None = None,
                      bins: int | None = None) -> go.Figure:
    """The share of test rows whose actual value lies inside its interval, per range of predicted
    values (equal shares of the rows: 10, or fewer so that each holds about ROWS_PER_BIN rows;
    each candidate a line, its overall coverage in the legend), against the nominal `level`
    (dashed): a line well below it is a range of predictions whose intervals are too narrow."""
    n = min((len(y) for y, *_ in series.values()), default=0)
    bins = bins or int(np.clip(n // ROWS_PER_BIN, 1, 10))
    fig = _figure(title, _with_unit(f"Predicted {target} (median of each of {bins} equal shares of the rows)", unit),
                  "Share inside the interval", height=460).update_layout(**LEGEND_BELOW)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    lows, highs = [], []
    for i, (name, (y, p, lower, upper)) in enumerate(series.items()):
        by_bin = coverage_by_bin(y, p, lower, upper, bins)
        inside = np.mean((np.asarray(y) >= np.asarray(lower)) & (np.asarray(y) <= np.asarray(upper))) if len(y) else np.nan
        fig.add_trace(go.Scatter(x=by_bin["mid"], y=by_bin["coverage"], mode="lines+markers",
                                 name=f"{name} ({inside:.1%} overall)", line=dict(color=_colour(colours, name, i)),
                                 customdata=by_bin["rows"],
                                 hovertemplate="predicted ~%{x:,.4g}<br>%{y:.1%} inside (%{customdata:,.0f} rows)"
                                               "<extra></extra>"))
        if by_bin["mid"]:
            lows.append(min(by_bin["mid"]))
            highs.append(max(by_bin["mid"]))
    if level is not None and lows:
        fig.add_trace(go.Scatter(x=[min(lows), max(highs)], y=[level, level], mode="lines",
                                 name=f"nominal {level:.0%}", line=dict(dash="dash", color="grey")))
    return fig


def interval_series(names: Sequence[str], held_out: Sequence[object]) -> Series:
    """{name: (targets, predictions, lower, upper)} of stored regression predictions
    (`HeldOutPredictions`), for `interval_coverage`."""
    return {name: (h.y_true, h.prediction, h.lower, h.upper) for name, h in zip(names, held_out)}
