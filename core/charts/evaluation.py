"""Evaluation figures of a binary classifier's probabilities as plotly figures: ROC,
precision-recall, calibration, confusion matrix, feature importance and learning curve (the last
two for every task kind; a multiclass model's figures are in `core.charts.multiclass`, a
regression's in `core.charts.regression`).
Axis titles name the dataset's classes and rows through `Words`.

ROC, PR and calibration take several named series, `{name: (y_true, proba)}`, so the Compare
page, production and drift can overlay models or batches on one chart. A training stores data,
not figures (`core.modeling.results.HeldOutPredictions` and `Diagnostics`): `candidate_figures`
and `diagnostic` draw them when they are shown.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from sklearn import metrics as skm

from core.charts.words import Words

if TYPE_CHECKING:
    from core.modeling.results import Diagnostics, HeldOutPredictions

# plotly's default colour sequence, indexed by series so a curve and its base rate share a colour
PALETTE: tuple[str, ...] = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692",
                            "#b6e880", "#ff97ff", "#fecb52")
Series = Mapping[str, tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]]


def _figure(title: str, x_title: str, y_title: str, height: int = 420, unit_axes: bool = False,
            **layout: object) -> go.Figure:
    """An empty figure with the common layout (template given at construction: much cheaper
    than `update_layout(template=...)`, which deep-copies it)."""
    # the title sits on the left, clear of the toolbar plotly draws at the top right
    return go.Figure(layout=dict(
        template="plotly_white", title=dict(text=title, x=0.01, xanchor="left"), height=height,
        margin=dict(l=60, r=20, t=60, b=50), legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        xaxis=dict(title=x_title, automargin=True, **({"range": [0, 1]} if unit_axes else {})),
        yaxis=dict(title=y_title, automargin=True, **({"range": [0, 1.02]} if unit_axes else {})), **layout))


def colour_map(names: Sequence[str]) -> dict[str, str]:
    """One colour per name, in order: pass the same map to every chart of a page so that a
    candidate keeps its colour from chart to chart."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def _colour(colours: Mapping[str, str] | None, name: str, i: int) -> str:
    return (colours or {}).get(name, PALETTE[i % len(PALETTE)])


def _arrays(y_true: Sequence[float] | np.ndarray, proba: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"y_true and proba differ in length ({y.shape[0]} vs {p.shape[0]}).")
    return y, p


def roc(series: Series, title: str = "ROC curve", words: Words = Words(),
        colours: Mapping[str, str] | None = None) -> go.Figure:
    """ROC curves of each series (AUC in the legend) with the chance diagonal."""
    fig = _figure(title, f"False positive rate ({words.negative} called {words.positive})",
                  f"True positive rate (recall of {words.positive} {words.rows})", unit_axes=True)
    for i, (name, (y_true, proba)) in enumerate(series.items()):
        y, p = _arrays(y_true, proba)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y, p)
        auc = skm.roc_auc_score(y, p)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc:.3f})",
                                 line=dict(color=_colour(colours, name, i))))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line=dict(dash="dash", color="grey")))
    return fig


def pr(series: Series, title: str = "Precision-recall curve", words: Words = Words(),
       colours: Mapping[str, str] | None = None) -> go.Figure:
    """Precision-recall curves (average precision in the legend) with each series' base rate."""
    fig = _figure(title, f"Recall (share of {words.positive} {words.rows} found)",
                  f"Precision (of the {words.positive} calls)", unit_axes=True)
    for i, (name, (y_true, proba)) in enumerate(series.items()):
        y, p = _arrays(y_true, proba)
        if y.sum() == 0:
            continue
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ap = skm.average_precision_score(y, p)
        colour = _colour(colours, name, i)
        fig.add_trace(go.Scatter(x=recall, y=precision, mode="lines", name=f"{name} (AP {ap:.3f})",
                                 line=dict(color=colour), legendgroup=name))
        # chance level is the series' own base rate (a pooled line makes a series with a lower
        # rate look worse than chance)
        rate = float(y.mean())
        fig.add_trace(go.Scatter(x=[0, 1], y=[rate, rate], mode="lines", name=f"{name}: base rate {rate:.3f}",
                                 line=dict(dash="dash", color=colour), legendgroup=name))
    return fig


def calibration(series: Series, n_bins: int = 10, title: str = "Calibration (reliability)",
                words: Words = Words(), colours: Mapping[str, str] | None = None) -> go.Figure:
    """Observed positive rate against the mean predicted probability per quantile bin (Brier in
    the legend)."""
    from sklearn.calibration import calibration_curve

    fig = _figure(title, f"Mean predicted {words.proba} in bin", f"Observed share of {words.positive} {words.rows} in bin",
                  unit_axes=True)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dash", color="grey")))
    for i, (name, (y_true, proba)) in enumerate(series.items()):
        y, p = _arrays(y_true, proba)
        if len(y) == 0:
            continue
        observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
        brier = skm.brier_score_loss(y, p)
        fig.add_trace(go.Scatter(x=predicted, y=observed, mode="lines+markers",
                                 name=f"{name} (Brier {brier:.4f})", line=dict(color=_colour(colours, name, i))))
    return fig


def confusion_counts(y_true: Sequence[float] | np.ndarray, proba: Sequence[float] | np.ndarray,
                     threshold: float = 0.5) -> np.ndarray:
    """2×2 counts [[TN, FP], [FN, TP]] for the class `proba >= threshold`."""
    y, p = _arrays(y_true, proba)
    return skm.confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])


def confusion(y_true: Sequence[float] | np.ndarray, proba: Sequence[float] | np.ndarray,
              threshold: float = 0.5, title: str | None = None, words: Words = Words()) -> go.Figure:
    """Confusion matrix at `threshold`: counts and share of all rows in each cell."""
    counts = confusion_counts(y_true, proba, threshold)
    total = max(int(counts.sum()), 1)
    labels = [f"{words.negative} (0)", f"{words.positive} (1)"]
    text = [[f"{counts[i, j]:,}<br>{counts[i, j] / total:.1%}" for j in range(2)] for i in range(2)]
    fig = _figure(title or f"Confusion matrix at threshold {threshold:.2f}", "Predicted", "Actual", height=360)
    fig.update_yaxes(autorange="reversed")
    fig.add_trace(go.Heatmap(z=counts, x=labels, y=labels, text=text, texttemplate="%{text}",
                               colorscale="Blues", showscale=False,
                               hovertemplate="actual %{y}<br>predicted %{x}<br>%{z} " + words.rows + "<extra></extra>"))
    return fig


# how a loss is named on an axis (a learning curve's, a permutation importance's)
LOSS_WORDS: dict[str, str] = {"log_loss": "log loss", "rmse": "RMSE"}


def importance(features: Sequence[str], values: Sequence[float], kind: str = "importance",
               title: str | None = None, loss: str = "log_loss") -> go.Figure:
    """Horizontal bars of feature importances or coefficients, largest magnitude on top (a
    permutation importance measures the rise of `loss` on the test split)."""
    order = np.argsort(np.abs(np.asarray(values, dtype=float)))
    names = [features[i] for i in order]
    vals = [float(values[i]) for i in order]
    label = {"coefficient": "Coefficient (per standard deviation of the feature)",
             "importance": "Importance (share of the model's total)",
             "permutation": f"Permutation importance (increase in test {LOSS_WORDS.get(loss, loss)})"}.get(kind, kind)
    fig = _figure(title or "Feature importance", label, "Feature", height=360, showlegend=False)
    fig.add_trace(go.Bar(x=vals, y=names, orientation="h", name=kind,
                           marker_color=["#d62728" if v < 0 else "#1f77b4" for v in vals]))
    return fig


def learning_curve(sizes: Sequence[int], train_loss: Sequence[float], test_loss: Sequence[float],
                   title: str = "Learning curve", words: Words = Words(), loss: str = "log_loss") -> go.Figure:
    """The loss (log loss; a regression's RMSE) on the training subset and on the held-out test set
    against the training size."""
    name = LOSS_WORDS.get(loss, loss)
    fig = _figure(title, f"Training {words.rows}", f"{name[0].upper()}{name[1:]} (lower is better)")
    x = [int(v) for v in sizes]
    fig.add_trace(go.Scatter(x=x, y=list(train_loss), mode="lines+markers", name="training subset"))
    fig.add_trace(go.Scatter(x=x, y=list(test_loss), mode="lines+markers", name="held-out test set"))
    return fig


# --------------------------------------------------------------------------- from stored results
DIAGNOSTIC_FIGURES: tuple[str, ...] = ("importance", "learning_curve")


def diagnostics_importance(diagnostics: "Diagnostics", label: str) -> go.Figure:
    """A candidate's feature importance bars, titled '<label>: feature <kind>'."""
    return importance(list(diagnostics.features), list(diagnostics.values), diagnostics.kind,
                      f"{label}: feature {diagnostics.kind}", loss=diagnostics.learning_curve.metric)


def diagnostics_learning_curve(diagnostics: "Diagnostics", title: str = "Learning curve",
                               words: Words = Words()) -> go.Figure:
    """A candidate's learning curve."""
    lc = diagnostics.learning_curve
    return learning_curve(lc.sizes, lc.train_loss, lc.test_loss, title=title, words=words, loss=lc.metric)


def candidate_figures(label: str, predictions: "HeldOutPredictions", diagnostics: "Diagnostics",
                      words: Words = Words()) -> dict[str, go.Figure]:
    """One candidate's six figures (ROC, PR, calibration, confusion at its threshold, feature
    importance, learning curve) drawn from its stored data."""
    series = {label: (predictions.y_true, predictions.proba)}
    return {
        "roc": roc(series, words=words), "pr": pr(series, words=words),
        "calibration": calibration(series, words=words),
        "confusion": confusion(predictions.y_true, predictions.proba, predictions.threshold, words=words),
        "importance": diagnostics_importance(diagnostics, label),
        "learning_curve": diagnostics_learning_curve(diagnostics, words=words),
    }


def diagnostic(candidate: Any, name: str, title: str | None = None, words: Words = Words()) -> go.Figure | None:
    """Figure `name` ('importance' or 'learning_curve') of a `core.modeling.comparison.CandidateEval`:
    drawn from its diagnostics; for a run logged before they were stored as data, its logged
    plotly figure (`title` replacing the logged one); None when the run holds neither.
    The importance chart keeps its own title ('<model>: feature <kind>') unless `title` is given."""
    if name not in DIAGNOSTIC_FIGURES:
        raise ValueError(f"Unknown diagnostic figure {name!r}; choose one of {', '.join(DIAGNOSTIC_FIGURES)}.")
    if candidate.diagnostics is not None:
        fig = (diagnostics_importance(candidate.diagnostics, candidate.label) if name == "importance"
               else diagnostics_learning_curve(candidate.diagnostics, words=words))
    elif name in candidate.figures:
        import plotly.io as pio

        fig = pio.from_json(candidate.figures[name])
    else:
        return None
    # the whole title replaced, as the Compare page always did with the logged figures (which
    # places it where the template puts titles): the charts look as they did
    return fig.update_layout(title=title) if title else fig
