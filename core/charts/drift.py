"""Plotly figures of a drift check (from its `DriftReport`) and of the monitoring history."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.words import Words
from core.monitoring.drift_report import DriftReport, FeatureDrift, Reliability, effect_ratio, top_categories

TRAIN, BATCH, TEST = "#552583", "#FDB927", "#7A6E5D"
DRIFT, STABLE = "#C62828", "#2E7D32"
LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=50))
BELOW = dict(orientation="h", yanchor="top", y=-0.38, x=0)  # a legend under the plot: charts stacked align


def effect_bars(r: DriftReport) -> go.Figure:
    """Each feature's effect size as a multiple of its threshold (1 = the drift line)."""
    names, ratios, labels, colors = [], [], [], []
    for name, f in r.stats.features.items():
        ratio, label = effect_ratio(f, r.thresholds)
        names.append(name)
        ratios.append(ratio)
        labels.append(label)
        colors.append(DRIFT if f.drift else STABLE)
    fig = go.Figure(go.Bar(x=ratios, y=names, orientation="h", marker_color=colors, text=labels,
                           textposition="auto", name="effect / threshold",
                           hovertemplate="%{y}: %{text}<extra></extra>"))
    # the line's label above the plot area, where no bar reaches
    fig.add_vline(x=1.0, line_dash="dash", line_color="#444", annotation_text="drift threshold (1)",
                  annotation_position="top", annotation_yshift=4)
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=80, b=50)},
                      title="Drift per feature (effect size ÷ its threshold)",
                      xaxis_title="effect size ÷ threshold (log scale; ≥ 1 = drift)", yaxis_title="feature",
                      xaxis_type="log", height=320, showlegend=False, yaxis_autorange="reversed")
    return fig


def distribution(f: FeatureDrift, ref_label: str = "training", top: int = 12) -> go.Figure:
    """Reference vs batch shares of one column: a coarse histogram (continuous), the values
    (discrete), or the `top` categories as bars (categorical, `top_categories`)."""
    fig = go.Figure()
    if f.kind == "continuous":
        edges = np.asarray(f.bins)
        mids = (edges[:-1] + edges[1:]) / 2
        fig.add_bar(x=mids, y=f.ref_share, name=ref_label, marker_color=TRAIN, opacity=0.6)
        fig.add_bar(x=mids, y=f.batch_share, name="batch", marker_color=BATCH, opacity=0.7)
        below, above = f.batch_outside
        note = f"; batch outside the {ref_label} range: {below:.1%} below, {above:.1%} above" if below or above else ""
    elif f.kind == "categorical":
        labels, ref, batch = top_categories(f, top)
        fig.add_bar(x=labels, y=ref, name=ref_label, marker_color=TRAIN)
        fig.add_bar(x=labels, y=batch, name="batch", marker_color=BATCH)
        note = (f"; categories never seen in {ref_label}: {f.out_of_range:.1%} of the batch"
                if f.n_new_categories else "")
    else:
        categories = [f"{c:g}" for c in f.bins]
        fig.add_bar(x=categories, y=f.ref_share, name=ref_label, marker_color=TRAIN)
        fig.add_bar(x=categories, y=f.batch_share, name="batch", marker_color=BATCH)
        note = f"; other values: {f.batch_outside[0]:.1%}" if f.batch_outside[0] else ""
    if f.kind != "categorical" and f.reports_missing:
        note += f"; missing {f.missing_ref:.1%} ({ref_label}) → {f.missing_batch:.1%} (batch)"
    fig.update_layout(**LAYOUT, barmode="overlay" if f.kind == "continuous" else "group",
                      title=f"{f.name}: {'drift' if f.drift else 'stable'}{note}",
                      xaxis_title=f.name, yaxis_title="share of rows", yaxis_tickformat=".0%",
                      height=300, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def performance(r: DriftReport) -> go.Figure:
    """Test figures, the label-free estimate and (with labels) the realised figures."""
    keys = ["accuracy", "f1", "roc_auc"]
    fig = go.Figure()
    fig.add_bar(x=keys, y=[r.test_metrics[k] for k in keys], name="test split", marker_color=TEST)
    est_name = "estimated (no labels)" + ("" if r.estimate.trustworthy else " – NOT trustworthy")
    fig.add_bar(x=keys, y=[getattr(r.estimate, k) for k in keys], name=est_name, marker_color=BATCH,
                marker_pattern_shape=None if r.estimate.trustworthy else "/")
    if r.realized is not None:
        fig.add_bar(x=keys, y=[r.realized[k] for k in keys], name="realised (labels)", marker_color=TRAIN)
    fig.update_layout(**LAYOUT, barmode="group", title="Model health on the batch", xaxis_title="metric",
                      yaxis_title="value", yaxis_range=[0, 1], height=340,
                      legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def reliability(curves: dict[str, Reliability], min_rows: int = 20, words: Words = Words()) -> go.Figure:
    """Reliability curves (mean predicted vs observed rate per bin, bins of at least `min_rows`
    rows drawn) with their ECE (over all bins)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#999"),
                    name="perfectly calibrated")
    for (name, c), color in zip(curves.items(), [TEST, TRAIN, BATCH]):
        keep = [i for i, k in enumerate(c.count) if k >= min_rows]
        fig.add_scatter(x=[c.predicted[i] for i in keep], y=[c.observed[i] for i in keep], mode="lines+markers", name=f"{name} (ECE {c.ece:.3f})",
                        line=dict(color=color), customdata=[c.count[i] for i in keep],
                        hovertemplate="predicted %{x:.2f}, observed %{y:.2f}, %{customdata} rows<extra></extra>")
    fig.update_layout(**LAYOUT, title=f"Reliability of {words.proba} (bins with ≥ {min_rows} rows)", xaxis_title=f"mean predicted {words.proba}",
                      yaxis_title=f"observed share {words.positive}", xaxis_range=[0, 1], yaxis_range=[0, 1], height=360)
    return fig


def time_axis(fig: go.Figure, times: pd.Series) -> go.Figure:
    """Readable check times: at least an hour shown around the points (one check alone made
    plotly zoom into sub-millisecond ticks), labels to the minute."""
    t = pd.to_datetime(times)
    if t.empty:
        return fig
    if t.dt.tz is not None:  # plotly draws times as they read, without a zone: UTC, as the data
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    low, high = t.min(), t.max()
    pad = max((high - low) * 0.05, pd.Timedelta(minutes=30))
    return fig.update_xaxes(range=[(low - pad).isoformat(), (high + pad).isoformat()], tickformat="%H:%M\n%b %d, %Y",
                            hoverformat="%Y-%m-%d %H:%M:%S", nticks=8)


def history_effects(h: pd.DataFrame) -> go.Figure:
    """Per-feature effect size (W/σ or JS) of every check over time."""
    fig = go.Figure()
    for col in [c for c in h.columns if c.startswith("effect_")]:
        fig.add_scatter(x=h["time"], y=h[col], mode="lines+markers", name=col[len("effect_"):],
                        customdata=h["batch"], hovertemplate="%{customdata}: %{y:.3f}<extra>%{fullData.name}</extra>")
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=50, b=40)}, title="Drift per feature over time (Wasserstein/σ, or JS for discrete and categorical features)",
                      xaxis_title="check time (UTC)", yaxis_title="effect size", height=360, legend=BELOW, xaxis_title_standoff=8)
    return time_axis(fig, h["time"])


def history_f1(h: pd.DataFrame) -> go.Figure:
    """Estimated and realised F1 of every check over time (hollow markers: untrustworthy estimate)."""
    fig = go.Figure()
    trusted = h["trustworthy"].fillna(False).astype(bool)
    fig.add_scatter(x=h["time"], y=h["est_f1"], mode="lines+markers", name="estimated F1",
                    line=dict(color=BATCH),
                    marker=dict(size=10, symbol=["circle" if t else "circle-open" for t in trusted]),
                    customdata=h["batch"], hovertemplate="%{customdata}: %{y:.3f}<extra>estimated</extra>")
    if h["real_f1"].notna().any():
        fig.add_scatter(x=h["time"], y=h["real_f1"], mode="lines+markers", name="realised F1",
                        line=dict(color=TRAIN), customdata=h["batch"],
                        hovertemplate="%{customdata}: %{y:.3f}<extra>realised</extra>")
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=50, b=40)}, title="F1 per batch (hollow = estimate not trustworthy)",
                      xaxis_title="check time (UTC)", yaxis_title="F1", yaxis_range=[0, 1], height=340, legend=BELOW, xaxis_title_standoff=8)
    return time_axis(fig, h["time"])
