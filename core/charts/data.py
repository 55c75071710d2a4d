"""Plotly figures of the data: per-feature distributions, the label per split (class balance, or a
number's spread) and rows per step.

A dataset's own view (e.g. Kobe's court chart in `datasets/kobe/view.py`) adds figures of its
own; these work on any dataset.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.words import Words
from core.dataset import Feature

POSITIVE, NEGATIVE = "#2E7D32", "#C62828"  # the two classes, in every chart
COLORS = {"Dev": "#552583", "Prod": "#FDB927", "Correct": POSITIVE, "Incorrect": NEGATIVE}
LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=50, b=40))
TOP_CATEGORIES = 12  # a categorical feature shows its most frequent values, the rest as "other"
OTHER = "(other)"
MISSING = "(missing)"


def distributions(frames: Mapping[str, pd.DataFrame], features: Sequence[Union[str, Feature]],
                  top: int = TOP_CATEGORIES) -> go.Figure:
    """Per-feature distributions (share of rows) of several frames overlaid, e.g. dev vs prod.

    `features` are names or `Feature`s. A categorical feature (a `Feature` of kind "categorical",
    or a name whose column holds text) is drawn as side-by-side bars of its `top` most frequent
    values, the rest summed as "(other)" and gaps as "(missing)"; a `Feature` with listed values
    (binary, or numbers such as a period) as bars of those values in their order, shown by their
    labels; any other feature as a histogram (one bin per whole number when it holds few whole
    numbers). Frames without a feature's column are skipped."""
    cols = 3
    rows = max(1, int(np.ceil(len(features) / cols)))
    names = [f.name if isinstance(f, Feature) else str(f) for f in features]
    shown: set[str] = set()  # one legend entry per set
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names,
                        horizontal_spacing=0.07, vertical_spacing=min(0.16, 0.6 / rows))
    for i, (feat, name) in enumerate(zip(features, names)):
        r, c = i // cols + 1, i % cols + 1
        present = {k: f[name] for k, f in frames.items() if name in f.columns}
        if isinstance(feat, Feature) and feat.kind != "categorical" and feat.values:
            order = [feat.value_label(v) for v in feat.values]
            traces = _category_bars(_labelled(present, feat), name, top, order=order)
        elif (feat.kind == "categorical") if isinstance(feat, Feature) else _holds_text(present):
            traces = _category_bars(present, name, top)
        else:
            traces = _histograms(present, name)
        for trace in traces:
            trace.update(showlegend=trace.name not in shown)
            shown.add(trace.name)
            fig.add_trace(trace, row=r, col=c)
        fig.update_yaxes(title_text="% of rows" if c == 1 else None, row=r, col=c)
    fig.update_layout(**LAYOUT, barmode="overlay", height=300 * rows,
                      title="Feature distributions (share of rows in each set)")
    return fig


def _holds_text(columns: Mapping[str, pd.Series]) -> bool:
    return any(not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)
               for s in columns.values())


def _labelled(columns: Mapping[str, pd.Series], feature: Feature) -> dict[str, pd.Series]:
    """Each set's column of listed values as their labels (missing values stay missing)."""
    out = {}
    for set_name, s in columns.items():
        labels = {v: feature.value_label(v) for v in pd.unique(s.dropna())}
        out[set_name] = s.map(labels)
    return out


def category_shares(columns: Mapping[str, pd.Series], top: int = TOP_CATEGORIES,
                    order: Sequence[str] | None = None) -> pd.DataFrame:
    """Share of rows (%) of each category per set: the `top` most frequent over all sets (by mean
    share), or the categories of `order` in that order (those present, and any others after
    them), then "(other)" and "(missing)" when present. Index: category; columns: the sets."""
    shares = {}
    for set_name, s in columns.items():
        values = s.astype("string").fillna(MISSING)
        shares[set_name] = values.value_counts(normalize=True) * 100 if len(values) else pd.Series(dtype="float64")
    table = pd.DataFrame(shares).fillna(0.0)
    if table.empty:
        return table
    ranked = table.drop(index=[MISSING], errors="ignore").mean(axis=1).sort_values(ascending=False)
    if order is not None:
        listed = [c for c in dict.fromkeys(order) if c in ranked.index]
        keep = listed + [c for c in ranked.index if c not in listed]
    else:
        keep = list(ranked.index[:top])
    out = table.loc[keep]
    rest = table.drop(index=[*keep, MISSING], errors="ignore")
    if len(rest):
        out.loc[OTHER] = rest.sum()
    if MISSING in table.index:
        out.loc[MISSING] = table.loc[MISSING]
    return out


def _category_bars(columns: Mapping[str, pd.Series], name: str, top: int,
                   order: Sequence[str] | None = None) -> list[go.Bar]:
    """One bar trace per set, side by side (the figure overlays traces: each set gets its own slot)."""
    table = category_shares(columns, top, order)
    width = 0.8 / max(1, len(table.columns))
    return [go.Bar(x=[str(v) for v in table.index], y=table[set_name], name=set_name, legendgroup=set_name,
                   width=width, offset=-0.4 + i * width, opacity=0.85, marker_color=COLORS.get(set_name),
                   hovertemplate=f"{name} = %{{x}}<br>%{{y:.1f}} % of rows<extra>{set_name}</extra>")
            for i, set_name in enumerate(table.columns)]


def _histograms(columns: Mapping[str, pd.Series], name: str) -> list[go.Histogram]:
    values = {k: pd.to_numeric(s, errors="coerce").dropna() for k, s in columns.items()}
    filled = [v for v in values.values() if len(v)]
    if not filled:
        return []
    lo = min(float(v.min()) for v in filled)
    hi = max(float(v.max()) for v in filled)
    discrete = all(np.allclose(v, np.round(v)) for v in filled) and hi - lo <= 60
    bins = dict(start=lo - 0.5, end=hi + 0.5, size=1) if discrete else dict(start=lo, end=hi, size=(hi - lo) / 40 or 1)
    return [go.Histogram(x=v, name=set_name, legendgroup=set_name, xbins=bins, histnorm="percent", opacity=0.6,
                         marker_color=COLORS.get(set_name),
                         hovertemplate=f"{name} %{{x}}<br>%{{y:.1f}} % of rows<extra>{set_name}</extra>")
            for set_name, v in values.items()]


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


SPLIT_COLORS = {"train": "#552583", "test": "#7E57C2", "prod": "#FDB927", "all": "#9E9E9E"}


def label_balance(summary: Any, words: Words = Words()) -> go.Figure:
    """The target per split, per its task kind (`core.data.profile.LabelSummary`): binary the
    share of positive rows (`class_balance`), multiclass the share of each class side by side per
    split, regression the number's quartiles, mean and standard deviation per split."""
    if summary.task == "binary":
        positive = words.positive
        rate = {split: shares.get(positive, list(shares.values())[-1] if shares else 0.0)
                for split, shares in summary.shares.items()}
        return class_balance(rate, summary.rows, words)
    if summary.task == "multiclass":
        return _class_shares(summary, words)
    return _number_spread(summary, words)


def _class_shares(summary: Any, words: Words) -> go.Figure:
    splits = list(summary.shares)
    width = 0.8 / max(1, len(splits))
    fig = go.Figure([go.Bar(
        x=list(summary.shares[split]), y=[100 * v for v in summary.shares[split].values()], name=split,
        width=width, offset=-0.4 + i * width, marker_color=SPLIT_COLORS.get(split),
        customdata=[summary.rows.get(split, 0)] * len(summary.shares[split]),
        hovertemplate="%{x}: %{y:.1f} % of %{customdata:,} " + words.rows + f"<extra>{split}</extra>")
        for i, split in enumerate(splits)])
    top = max((100 * v for shares in summary.shares.values() for v in shares.values()), default=50.0)
    fig.update_layout(**LAYOUT, title=f"Class balance: share of each {summary.column} per split", height=360,
                      yaxis=dict(title=f"{words.rows} (%)", range=[0, min(100.0, top * 1.15 + 1)]),
                      xaxis=dict(title=summary.column, type="category"), barmode="overlay",
                      legend=dict(title="split"))
    return fig


def _number_spread(summary: Any, words: Words) -> go.Figure:
    splits = [s for s in summary.stats]
    st = summary.stats
    unit = f" ({summary.unit})" if summary.unit else ""
    fig = go.Figure(go.Box(
        x=splits, q1=[st[s]["q1"] for s in splits], median=[st[s]["median"] for s in splits],
        q3=[st[s]["q3"] for s in splits], lowerfence=[st[s]["min"] for s in splits],
        upperfence=[st[s]["max"] for s in splits], mean=[st[s]["mean"] for s in splits],
        sd=[st[s]["std"] for s in splits], boxmean="sd", marker_color="#552583", name=summary.column,
        showlegend=False))
    for s in splits:  # above the plot, over each box: its mean, spread and rows
        fig.add_annotation(x=s, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           font=dict(size=11),  # two short lines: three splits side by side do not overlap
                           text=f"mean {st[s]['mean']:.4g} ± {st[s]['std']:.3g}<br>{summary.rows.get(s, 0):,} "
                                f"{words.rows}")
    fig.update_layout(**{**LAYOUT, "margin": dict(l=40, r=20, t=110, b=40)},
                      title=f"Target {summary.column}{unit} per split<br><sup>box: quartiles, whiskers: range, "
                            "dashed: mean ± standard deviation</sup>", height=360, xaxis=dict(title="split"),
                      yaxis=dict(title=f"{summary.column}{unit}"))
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


def same_axes(*figures: go.Figure) -> tuple[go.Figure, ...]:
    """The figures with one x range and one y range, the union of theirs, so that charts shown
    side by side (dev vs prod) compare at the same scale. An axis left to autorange on any of
    them is left alone on all."""
    for axis in ("xaxis", "yaxis"):
        ranges = [fig.layout[axis].range for fig in figures]
        if figures and all(r is not None and len(r) == 2 for r in ranges):
            lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            for fig in figures:
                fig.layout[axis].range = [lo, hi]
    return figures
