"""Plotly figures of a drift check (from its `DriftReport`) and of the monitoring history."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.words import Words
from core.modeling import metrics
from core.monitoring.drift_report import DriftReport, FeatureDrift, Reliability, by_severity, top_categories

TRAIN, BATCH, TEST = "#552583", "#FDB927", "#7A6E5D"
DRIFT, STABLE = "#C62828", "#2E7D32"
LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=50))
BELOW = dict(orientation="h", yanchor="top", y=-0.38, x=0)  # a legend under the plot: charts stacked align


FLOOR = 0.01  # effect ratios below this (a zero among them) are drawn at it: a log axis has no 0
FONT = dict(size=14)  # readable at 1280 px
ROW_PX = 30  # height of one feature's bar


def effect_bars(r: DriftReport) -> go.Figure:
    """Each feature's effect size as a multiple of its threshold (1 = the drift line), every
    feature named, worst at the top (`drift_report.by_severity`). A ratio below `FLOOR` (no
    measurable drift) is drawn as a short bar to `FLOOR` with a marker, so every feature shows;
    its hover and label give the real figure. The height grows with the number of features."""
    rows = by_severity(r)
    names = [name for name, _, _ in rows]
    ratios = [ratio for _, ratio, _ in rows]
    labels = [label for _, _, label in rows]
    colors = [DRIFT if r.stats.features[name].drift else STABLE for name in names]
    drawn = [max(ratio, FLOOR) for ratio in ratios]
    fig = go.Figure(go.Bar(x=drawn, y=names, orientation="h", marker_color=colors, text=labels,
                           textposition="auto", textfont=dict(size=12), name="effect / threshold",
                           customdata=ratios, cliponaxis=False,
                           hovertemplate="%{y}: %{customdata:.3g} × threshold (%{text})<extra></extra>"))
    low = [(name, ratio) for name, ratio in zip(names, ratios) if ratio < FLOOR]
    if low:
        fig.add_scatter(x=[FLOOR] * len(low), y=[name for name, _ in low], mode="markers",
                        marker=dict(symbol="line-ns-open", size=16, line_width=3, color=STABLE),
                        name=f"below {FLOOR:g} × threshold", customdata=[ratio for _, ratio in low],
                        hovertemplate="%{y}: %{customdata:.3g} × threshold (no measurable drift)<extra></extra>")
    # the line's label above the plot area, where no bar reaches
    # drawn below the bars: a bar's label crossing it stays readable (the bar hides the line)
    fig.add_vline(x=1.0, line_dash="dash", line_color="#444", annotation_text="drift threshold (1)",
                  annotation_position="top", annotation_yshift=4, annotation_font_size=13, layer="below")
    top = max([1.0, *drawn])
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=80, b=60)}, font=FONT,
                      title=dict(text="Drift per feature (effect size ÷ its threshold), worst first", font_size=17),
                      xaxis_title="effect size ÷ threshold (log scale; ≥ 1 = drift)", yaxis_title="feature",
                      xaxis_type="log", xaxis_range=[np.log10(FLOOR) - 0.3, np.log10(top) + 0.5],
                      height=max(320, 150 + ROW_PX * len(names)), showlegend=False, bargap=0.25)
    fig.update_yaxes(categoryorder="array", categoryarray=names, autorange="reversed", automargin=True,
                     tickmode="array", tickvals=names, ticktext=names, tickfont_size=13)
    fig.update_xaxes(automargin=True, tickfont_size=13)
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


def performance(r: DriftReport, unit: str = "") -> go.Figure:
    """Test figures, the label-free estimate and (with labels) the realised figures of the
    report's task (binary: accuracy, F1, ROC-AUC; multiclass: accuracy, macro F1; regression:
    RMSE and MAE in the target's `unit`, the interval coverage in `coverage`)."""
    keys = [k for k in r.keys if k != "interval_coverage"]
    labels = [metrics.label(k) for k in keys] if r.task != "binary" else keys
    fig = go.Figure()
    fig.add_bar(x=labels, y=[r.test_metrics.get(k) for k in keys], name="test split", marker_color=TEST)
    est_name = "estimated (no labels)" + ("" if r.estimate.trustworthy else " – NOT trustworthy")
    fig.add_bar(x=labels, y=[r.estimate.value(k) for k in keys], name=est_name, marker_color=BATCH,
                marker_pattern_shape=None if r.estimate.trustworthy else "/")
    if r.realized is not None:
        fig.add_bar(x=labels, y=[r.realized.get(k) for k in keys], name="realised (labels)", marker_color=TRAIN)
    errors = r.task == "regression"
    fig.update_layout(**LAYOUT, barmode="group", title="Model health on the batch", xaxis_title="metric",
                      yaxis_title=f"error{f' ({unit})' if unit else ''}" if errors else "value",
                      yaxis_range=None if errors else [0, 1], height=340,
                      legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def coverage(r: DriftReport, target: str = "target") -> go.Figure:
    """A regression check's interval coverage: the share of targets inside their prediction
    interval on the test split, estimated without labels and realised on the labelled rows,
    against the interval's nominal level."""
    level = r.outputs.get("level")
    bars = [("test split", r.test_metrics.get("interval_coverage"), TEST),
            ("estimated (no labels)" + ("" if r.estimate.trustworthy else " – NOT trustworthy"),
             r.estimate.value("interval_coverage"), BATCH)]
    if r.realized is not None:
        bars.append(("realised (labels)", r.realized.get("interval_coverage"), TRAIN))
    hatched = ["" if i != 1 or r.estimate.trustworthy else "/" for i in range(len(bars))]  # an untrusted estimate
    fig = go.Figure(go.Bar(x=[b[0] for b in bars], y=[b[1] for b in bars], marker_color=[b[2] for b in bars],
                           marker_pattern_shape=hatched,
                           text=[f"{b[1]:.1%}" if b[1] is not None else "n/a" for b in bars],
                           textposition="inside", insidetextanchor="middle"))
    if level is not None and np.isfinite(level):
        fig.add_hline(y=level, line_dash="dash", line_color="#444", annotation_text=f"nominal {level:.0%}",
                      annotation_position="top left")
    fig.update_layout(**LAYOUT, title=f"Interval coverage: share of {target} values inside their interval",
                      yaxis_title="share of rows", yaxis_tickformat=".0%", yaxis_range=[0, 1.05], height=340,
                      showlegend=False)
    return fig


def class_shares(r: DriftReport) -> go.Figure:
    """A multiclass check's class shares: predicted on the test split and on the batch, and
    (with labels) the batch's actual classes."""
    o = r.outputs
    names = list(o.get("classes", ()))
    fig = go.Figure()
    for key, label, colour in (("predicted_test", "predicted, test split", TEST),
                               ("predicted_batch", "predicted, batch", BATCH),
                               ("actual_batch", "actual, batch (labels)", TRAIN)):
        if o.get(key) is not None:
            fig.add_bar(x=names, y=o[key], name=label, marker_color=colour)
    p = r.prediction
    verdict = f"prediction {'drift' if p.drift else 'stable'}" + (
        f" (JS distance {p.js:.3f}, {p.js_excess:.3f} beyond chance)" if p.js is not None and p.js_excess is not None
        else "")
    fig.update_layout(**LAYOUT, barmode="group", title=f"Class shares, test split vs batch: {verdict}", xaxis_title="class",
                      yaxis_title="share of rows", yaxis_tickformat=".0%", height=340,
                      legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def reliability(curves: dict[str, Reliability], min_rows: int = 20, words: Words = Words(),
                top_label: bool = False) -> go.Figure:
    """Reliability curves (mean predicted vs observed rate per bin, bins of at least `min_rows`
    rows drawn) with their ECE (over all bins); `top_label`: a multiclass model's, the predicted
    class's probability against the share of rows whose class it is."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#999"),
                    name="perfectly calibrated")
    for (name, c), color in zip(curves.items(), [TEST, TRAIN, BATCH]):
        keep = [i for i, k in enumerate(c.count) if k >= min_rows]
        fig.add_scatter(x=[c.predicted[i] for i in keep], y=[c.observed[i] for i in keep], mode="lines+markers", name=f"{name} (ECE {c.ece:.3f})",
                        line=dict(color=color), customdata=[c.count[i] for i in keep],
                        hovertemplate="predicted %{x:.2f}, observed %{y:.2f}, %{customdata} rows<extra></extra>")
    proba = "the predicted class's probability" if top_label else words.proba
    fig.update_layout(**LAYOUT, title=f"Reliability of {proba} (bins with ≥ {min_rows} rows)",
                      xaxis_title=f"mean predicted {'probability of the predicted class' if top_label else words.proba}",
                      yaxis_title="observed share of rows of that class" if top_label else f"observed share {words.positive}",
                      xaxis_range=[0, 1], yaxis_range=[0, 1], height=360)
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


def history_performance(h: pd.DataFrame, key: str, unit: str = "") -> go.Figure:
    """The estimated and realised `key` (a task's headline figure, e.g. accuracy or RMSE) of every
    check over time (hollow markers: untrustworthy estimate); `history_f1` for binary."""
    fig = go.Figure()
    label = metrics.label(key)
    trusted = h["trustworthy"].fillna(False).astype(bool) if "trustworthy" in h else pd.Series(False, index=h.index)
    if f"est_{key}" in h:
        fig.add_scatter(x=h["time"], y=h[f"est_{key}"], mode="lines+markers", name=f"estimated {label}",
                        line=dict(color=BATCH),
                        marker=dict(size=10, symbol=["circle" if t else "circle-open" for t in trusted]),
                        customdata=h["batch"], hovertemplate="%{customdata}: %{y:.4g}<extra>estimated</extra>")
    if f"real_{key}" in h and h[f"real_{key}"].notna().any():
        fig.add_scatter(x=h["time"], y=h[f"real_{key}"], mode="lines+markers", name=f"realised {label}",
                        line=dict(color=TRAIN), customdata=h["batch"],
                        hovertemplate="%{customdata}: %{y:.4g}<extra>realised</extra>")
    share = key not in ("rmse", "mae")
    fig.update_layout(**{**LAYOUT, "margin": dict(l=50, r=20, t=50, b=40)},
                      title=f"{label[0].upper() + label[1:]} per batch (hollow = estimate not trustworthy)",
                      xaxis_title="check time (UTC)",
                      yaxis_title=f"{label}{f' ({unit})' if unit and not share else ''}",
                      yaxis_range=[0, 1] if share else None, height=340, legend=BELOW, xaxis_title_standoff=8)
    return time_axis(fig, h["time"])


def prediction_charts(r: DriftReport) -> list[go.Figure]:
    """The prediction's drift, per task: binary the probability's distribution; multiclass the
    class shares, the predicted class's shares and each class's probability; regression the
    prediction's distribution (test split vs batch)."""
    if r.task == "multiclass":  # the predicted class's shares with the actual ones, then each probability
        figures = [class_shares(r)]
    else:
        figures = [distribution(r.prediction, ref_label="test split")]
    figures += [distribution(f, ref_label="test split") for f in r.prediction_detail.values()]
    return figures


def health_charts(r: DriftReport, words: Words = Words(), unit: str = "", target: str = "target") -> list[go.Figure]:
    """The model's health, per task: the figures (`performance`); binary and multiclass the
    reliability curves (the probability's, or the predicted class's), regression the interval
    coverage (`coverage`)."""
    figures = [performance(r, unit)]
    if r.task == "regression":
        figures.append(coverage(r, target))
    elif r.reliability_test is not None and r.reliability_test_calibrated is not None:
        curves = {"test, raw": r.reliability_test, "test, calibrated (out of fold)": r.reliability_test_calibrated}
        if r.reliability_batch is not None:
            curves["batch, raw (labelled rows)"] = r.reliability_batch
        figures.append(reliability(curves, words=words, top_label=r.task == "multiclass"))
    return figures
