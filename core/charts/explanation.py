"""Plotly figures of explanations (issue 31): one answer's waterfall, and a model's global view
(mean absolute contribution and a beeswarm-like strip per feature).

They draw the JSON objects the explanations are (`core/modeling/explanations.py`: a served row's
`{"base_value", "contributions", "scale", "output"}`, a version's `global_importance`), in the
feature's own words and units from the dataset definition.
"""
from __future__ import annotations

from typing import Any, Mapping

import plotly.graph_objects as go

UP, DOWN, TOTAL = "#C0392B", "#2471A3", "#552583"
TOP = 10  # features drawn one by one; the others are pooled in one step


def scale_words(scale: str, spec: Any = None, class_name: str | None = None) -> str:
    """The scale of an explanation in words, e.g. "log-odds of P(made)", "Price (USD)"."""
    before = scale.endswith("_before_calibration")
    base = scale.removesuffix("_before_calibration")
    if base == "value":
        target = getattr(spec, "target", None)
        name = getattr(target, "column", "") or "value"
        unit = getattr(target, "unit", "") if target is not None else ""
        return f"{name} ({unit})" if unit else name
    multiclass = base == "logit" or getattr(getattr(spec, "target", None), "task", "") == "multiclass"
    of = f"P({class_name})" if class_name else ("P(class)" if multiclass else
                                                (getattr(spec, "proba_label", "") or "P(positive)"))
    words = {"log_odds": f"log-odds of {of}", "probability": of,
             "logit": f"score of {class_name or 'the class'}"}[base]
    return words + (", before calibration" if before else "")


def feature_text(spec: Any, name: str, value: Any = None) -> str:
    """'Shot distance (ft) = 12' in the definition's words (its title and value labels)."""
    feature = None
    try:
        feature = spec.feature(name) if spec is not None else None
    except (KeyError, ValueError):
        feature = None
    title = feature.title if feature is not None else name
    if value is None:
        return title
    shown = feature.value_label(value) if feature is not None and feature.discrete else value
    if isinstance(shown, float):
        shown = f"{shown:.4g}"
    return f"{title} = {shown}"


def one_class(explanation: Mapping[str, Any], class_name: str | None) -> tuple[float, dict[str, float], float]:
    """(base value, contributions, output) of a row's explanation; a multiclass one's for `class_name`."""
    base, contributions, output = explanation["base_value"], explanation["contributions"], explanation.get("output")
    if isinstance(base, Mapping):
        key = class_name if class_name in base else next(iter(base))
        base, contributions = base[key], contributions[key]
        output = output[key] if isinstance(output, Mapping) else None
    if output is None:
        output = float(base) + sum(contributions.values())
    return float(base), {k: float(v) for k, v in contributions.items()}, float(output)


def waterfall(explanation: Mapping[str, Any], spec: Any = None, inputs: Mapping[str, Any] | None = None,
              class_name: str | None = None, top: int = TOP) -> go.Figure:
    """One answer's explanation as a waterfall: from the base value (the model's average answer on
    training rows), each feature's contribution, largest first (the `top` largest, the others as
    one step), to the model's output for this row, on the explanation's scale."""
    base, contributions, output = one_class(explanation, class_name)
    ranked = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))
    shown, rest = ranked[:top], ranked[top:]
    labels = [feature_text(spec, f, (inputs or {}).get(f)) for f, _ in shown]
    values = [v for _, v in shown]
    if rest:
        labels.append(f"{len(rest)} other features")
        values.append(sum(v for _, v in rest))
    words = scale_words(str(explanation.get("scale", "")), spec, class_name)
    # each step's value in its label (text beside a bar runs into the labels of the long negative ones)
    y = [f"Average answer (base): {base:.3g}", *[f"{t}: {v:+.3g}" for t, v in zip(labels, values)],
         f"This answer: {output:.3g}"]
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute", *["relative"] * len(values), "total"],
        y=y, x=[base, *values, output], base=None, textposition="none",
        increasing=dict(marker=dict(color=UP)), decreasing=dict(marker=dict(color=DOWN)),
        totals=dict(marker=dict(color=TOTAL)), connector=dict(line=dict(color="#999", width=1)),
        hovertemplate="%{y}<extra></extra>"))
    fig.update_layout(template="plotly_white", showlegend=False,
                      title=f"Why {class_name}: each feature's contribution" if class_name else "Why: each feature's contribution",
                      height=max(240, 90 + 30 * (len(values) + 2)), margin=dict(l=10, r=60, t=50, b=50),
                      xaxis=dict(title=words, fixedrange=True), yaxis=dict(autorange="reversed", fixedrange=True,
                                                                          type="category"))
    return fig


def short_scale(scale: str) -> str:
    """An axis title that fits a third of the page: 'log-odds', 'probability', 'value', 'score'."""
    base = scale.removesuffix("_before_calibration")
    words = {"log_odds": "log-odds", "probability": "probability", "logit": "score", "value": "value"}.get(base, base)
    return words + (" (uncalibrated)" if scale.endswith("_before_calibration") else "")


def importance_bars(view: Mapping[str, Any], spec: Any = None, top: int = 15, title: str | None = None) -> go.Figure:
    """A version's global importance: the mean absolute contribution per feature, largest on top."""
    names = list(view["features"])[:top]
    values = list(view["mean_abs"])[:top]
    fig = go.Figure(go.Bar(x=values, y=[feature_text(spec, n) for n in names], orientation="h",
                           marker_color=TOTAL, hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    fig.update_layout(template="plotly_white", title=title or "Mean |contribution|", showlegend=False,
                      height=max(220, 70 + 26 * len(names)), margin=dict(l=10, r=20, t=50, b=50),
                      xaxis=dict(title=short_scale(str(view.get('scale', ''))),
                                 fixedrange=True, nticks=4),
                      yaxis=dict(autorange="reversed", fixedrange=True, type="category", automargin=True))
    return fig


def strip(view: Mapping[str, Any], spec: Any = None, top: int = 10, title: str | None = None) -> go.Figure:
    """A beeswarm-like strip per feature (largest first): each sampled row's contribution, coloured
    by where its value falls among the sample (blue low .. red high; a category: how common)."""
    import numpy as np

    fig = go.Figure()
    rows = list(view["strip"])[:top]
    for i, s in enumerate(rows):
        c = np.asarray(s["contributions"], dtype=float)
        jitter = (np.random.default_rng(i).random(c.size) - 0.5) * 0.5
        fig.add_trace(go.Scattergl(
            x=c, y=i + jitter, mode="markers", name=s["feature"], showlegend=False,
            marker=dict(size=5, color=s["value_rank"], colorscale="RdBu_r", cmin=0, cmax=1, opacity=0.7,
                        showscale=False),
            hovertemplate=f"{feature_text(spec, s['feature'])}: %{{x:.3g}}<extra></extra>"))
    fig.update_layout(template="plotly_white", title=title or f"Contributions of {view.get('rows', '?')} test rows",
                      height=max(240, 70 + 34 * len(rows)), margin=dict(l=10, r=20, t=50, b=50),
                      xaxis=dict(title=short_scale(str(view.get('scale', ''))), zeroline=True,
                                 nticks=5),
                      yaxis=dict(tickvals=list(range(len(rows))), ticktext=[feature_text(spec, s["feature"]) for s in rows],
                                 autorange="reversed", fixedrange=True, automargin=True))
    return fig


def caption(explanation: Mapping[str, Any], spec: Any = None, class_name: str | None = None) -> str:
    """What the waterfall shows, in one sentence (plain text: shown with st.caption)."""
    scale = str(explanation.get("scale", ""))
    words = scale_words(scale, spec, class_name)
    note = (" The calibrated probability is a monotone map of this score: the model was explained before its "
            "calibration.") if scale.endswith("_before_calibration") else ""
    if scale.startswith("logit"):
        note += " The softmax of the classes' scores gives their probabilities."
    whose = f" for the class {class_name}" if isinstance(explanation.get("base_value"), Mapping) and class_name else ""
    return (f"Contributions on the scale of the {words}{whose}: the average answer on training rows plus each "
            f"feature's contribution gives this answer (red raises it, blue lowers it).{note} "
            "predict --explain --json prints them as \"explanation\".")
