"""Adherence: does the champion hold up on a scored production batch? Test vs production
figures and a plain-language answer, in the dataset's own words (its row noun and class names).

The verdict is the monitor's (`core.monitoring.policy.judge`, thresholds `Settings.drift`), so
the Production page, `apply`, the Drift page, `drift` and `retrain --if-needed` agree.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.config import DriftThresholds
from core.data import profile
from core.modeling import metrics
from core.monitoring import policy
from core.scoring.local import with_outcome

# a feature's median "moved" when it shifts by this many training standard deviations: words
# for the explanation only, never part of the verdict
TYPICAL_SHIFT = 0.5


HEADLINES = {
    "adherent": "Yes, the champion holds up on this batch: its production figures stay close to the test set's.",
    "not adherent": "No, the champion is not adherent to the production data.",
    "unknown (no labels)": "Unknown: without labels the model's accuracy on this batch cannot be measured.",
}


# --------------------------------------------------------------------------- adherence
@dataclass(frozen=True)
class NextStep:
    """One thing to do after the verdict: where in the app (`stage`, the lifecycle stage whose page
    the app links, e.g. "drift") with the link's `label`, and the same in words for the command
    line (`text`, naming the command where there is one)."""

    label: str
    stage: str
    text: str


@dataclass(frozen=True)
class Adherence:
    """Test vs production figures and the plain-language answer to "does the model hold up?".

    `text` is the answer (headline and reasons); `steps` the next steps, which a page renders as
    links and the command line as `next_steps` (their `text`)."""

    verdict: str  # "adherent", "not adherent" or "unknown (no labels)"
    text: str
    next_steps: tuple[str, ...]
    steps: tuple[NextStep, ...]
    threshold: float
    test_metrics: dict[str, float]
    prod_metrics: dict[str, float] | None
    test_predicted_positive: float
    prod_predicted_positive: float
    prod_actual_positive: float | None
    prod_mean_proba: float
    prod_max_proba: float
    out_of_range: dict[str, float] = field(default_factory=dict)
    shifted: dict[str, tuple[float, float]] = field(default_factory=dict)
    task: str = "binary"  # the model's task kind; a multiclass or regression model's binary fields are NaN
    # multiclass: the class names and shares (predicted and actual, test and production);
    # regression: the interval's level and the mean prediction (`task_adherence`)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _join(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def metrics_table(a: Adherence) -> pd.DataFrame:
    """Test and production metrics side by side, with the change (the task's metrics; multiclass
    also F1 per class, named by the class)."""
    rows = []
    names = list(metrics.TASK_METRICS[a.task])
    if a.task == "multiclass":
        names += [f"f1_{i}" for i in range(len(a.outputs.get("classes", ())))]
    for name in names:
        test = a.test_metrics.get(name, float("nan"))
        prod = (a.prod_metrics or {}).get(name, float("nan"))
        label = metrics.label(name)
        if name.startswith("f1_") and name != "f1_macro":  # multiclass: F1 of one class
            label = f"F1 of {a.outputs['classes'][int(name[3:])]}"
        rows.append({"metric": label, "test": test, "production": prod, "change": prod - test})
    return pd.DataFrame(rows)


def adherence(
    scored: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame,
    spec: Any,
    threshold: float,
    thresholds: DriftThresholds | None = None,
) -> Adherence:
    """Compare production with the test set at `threshold` and explain the result in words.

    The verdict is `policy.judge`'s with `thresholds` (`Settings.drift`; default the settings'
    defaults): not adherent when F1 or ROC-AUC falls by `performance_drop` (0.05) or more, log
    loss rises by `log_loss_rise` (10 %) or more, or a feature lies outside the training range
    (categorical: in unseen categories) for more than `trust_out_of_range` (5 %) of the rows.
    `spec` is the dataset definition (features, target, the probability column and the words for
    its rows).
    """
    t = thresholds or DriftThresholds()
    features, target, col = spec.features, spec.target.column, spec.proba_column
    one, many, pos, label = spec.row_noun, spec.rows_noun, spec.positive_name, spec.proba_label
    neg = spec.target.negative_name
    test_m = metrics.from_proba(test[target].to_numpy(), test[col].to_numpy(), threshold)
    labelled = with_outcome(scored, spec, threshold)
    prod_m = (metrics.from_proba(labelled[spec.actual_column].to_numpy(), labelled[col].to_numpy(), threshold)
              if len(labelled) else None)
    proba = scored[col].to_numpy()
    test_pred = float((test[col] >= threshold).mean())
    prod_pred = float((proba >= threshold).mean()) if len(proba) else 0.0
    actual = float(labelled[spec.actual_column].mean()) if len(labelled) else None
    categorical = spec.categorical_features
    ranges, oor, shifted = _coverage(scored, train, features, categorical)

    reasons: list[str] = []
    if prod_m is not None:
        f1_drop = test_m["f1"] - prod_m["f1"]
        direction = "falls" if f1_drop > 0.005 else ("rises" if f1_drop < -0.005 else "stays")
        sentence = (f"F1 {direction} from {test_m['f1']:.2f} on the test set to {prod_m['f1']:.2f} in production "
                    f"(ROC-AUC {test_m['roc_auc']:.2f} → {prod_m['roc_auc']:.2f}, log loss "
                    f"{test_m['log_loss']:.3f} → {prod_m['log_loss']:.3f})")
        if prod_pred < 0.05 and actual is not None and actual > 0.05:
            n_pos = int((proba >= threshold).sum())
            sentence += (f" because almost every production {one} gets {label} below the threshold "
                         f"{threshold:.2f}: only {n_pos:,} of {len(proba):,} are predicted {pos} (highest {label} "
                         f"{proba.max():.2f}), while {actual:.1%} were actually {pos}")
            if prod_m["accuracy"] > test_m["accuracy"]:
                sentence += (f". Accuracy rises to {prod_m['accuracy']:.2f} only because {1 - actual:.0%} of "
                             f"these {many} are {neg} and the model calls nearly every {one} {neg}")
        elif actual is not None:
            sentence += (f"; {prod_pred:.1%} of production {many} are predicted {pos} at threshold {threshold:.2f} "
                         f"against {actual:.1%} actually {pos} (test: {test_pred:.1%} predicted {pos})")
        reasons.append(sentence + ".")
    else:
        reasons.append(f"The batch has no labels, so its accuracy cannot be measured: {prod_pred:.1%} of its "
                       f"{many} are predicted {pos} at threshold {threshold:.2f} (test: {test_pred:.1%}); mean "
                       f"{label} is {proba.mean():.2f}.")
    reasons += _where(oor, ranges, shifted, one, many, len(scored))
    verdict = policy.judge(test=test_m, realized=prod_m, out_of_range=oor, categorical=categorical, t=t,
                           rows_noun=many).adherence
    steps = _steps(verdict, many)
    text = "\n\n".join([HEADLINES[verdict], *reasons])  # plain text: the page escapes it (feature names are data)
    return Adherence(
        verdict=verdict, text=text, next_steps=tuple(s.text for s in steps), steps=tuple(steps),
        threshold=threshold, test_metrics=test_m,
        prod_metrics=prod_m, test_predicted_positive=test_pred, prod_predicted_positive=prod_pred,
        prod_actual_positive=actual, prod_mean_proba=float(proba.mean()) if len(proba) else float("nan"),
        prod_max_proba=float(proba.max()) if len(proba) else float("nan"), out_of_range=oor, shifted=shifted,
    )


def _coverage(scored: pd.DataFrame, train: pd.DataFrame, features: tuple[str, ...],
              categorical: tuple[str, ...]) -> tuple[dict[str, tuple[float, float]], dict[str, float],
                                                     dict[str, tuple[float, float]]]:
    """The training ranges of the numeric features, each feature's share of production rows
    outside the training data (categorical: in unseen categories) and the numbers whose median
    moved by more than `TYPICAL_SHIFT` training standard deviations (training, production)."""
    ranges = profile.training_ranges(train, features, categorical)
    oor = profile.share_out_of_range(scored, ranges, profile.training_categories(train, categorical))
    shifted = {}
    for f in ranges:  # the typical value of a number; categories are judged by their unseen share
        std = float(train[f].std()) or 1.0
        t_med, p_med = float(train[f].median()), float(scored[f].median())
        if abs(p_med - t_med) / std > TYPICAL_SHIFT:
            shifted[f] = (t_med, p_med)
    return ranges, oor, shifted


def _where(oor: dict[str, float], ranges: dict[str, tuple[float, float]], shifted: dict[str, tuple[float, float]],
           one: str, many: str, rows: int) -> list[str]:
    """The sentences on where production lies: outside the training data, or moved. The shares
    name the rows they count (the scored production rows, which a drift check of the whole
    batch file, unlabelled rows included, may outnumber: its share can differ)."""
    reasons = []
    outside = sorted(((f, sh) for f, sh in oor.items() if sh > 0.0), key=lambda kv: -kv[1])
    if outside:
        parts = [f"{f} lies outside the training range [{ranges[f][0]:g}, {ranges[f][1]:g}] for {sh:.1%} of them"
                 if f in ranges else f"{f} takes categories never seen in training in {sh:.1%} of them"
                 for f, sh in outside]
        reasons.append(f"In production (the {rows:,} scored {many}), " + _join(parts) + ".")
    if shifted:
        parts = [f"{f} from {t:g} to {p:g}" for f, (t, p) in shifted.items()]
        reasons.append(f"The typical {one} moved (median in training → production): " + _join(parts)
                       + f"; the model is extrapolating to {many} it rarely saw.")
    return reasons


def _steps(verdict: str, many: str) -> list[NextStep]:
    """The next steps after a verdict: the Drift page, and retraining when not adherent."""
    # the page links the step's stage; retraining with production labels is the Drift page's (its
    # retraining alarm, once the batch is uploaded with its labels), not the Train page's (dev data only)
    steps = [NextStep("Drift: which features drifted, and the model's health without labels", "drift",
                      "See the Drift page for the per-feature drift and the label-free health estimate.")]
    if verdict != "adherent":
        steps.append(NextStep(
            f"Retrain with production labels: upload the labelled {many} on the Drift page", "drift",
            "Retrain with production labels (`python -m core retrain`), then compare the challenger with the "
            "champion before promoting it."))
    return steps


def task_adherence(
    prod: np.ndarray,
    y_prod: np.ndarray | None,
    test: np.ndarray,
    y_test: np.ndarray,
    scored: pd.DataFrame,
    train: pd.DataFrame,
    spec: Any,
    version: Any,
    thresholds: DriftThresholds | None = None,
) -> Adherence:
    """`adherence` for a multiclass or regression model: compare production with the test split
    and explain the result in words, by the task's rules (`policy.TaskPolicy`).

    `prod` and `test` are the model's outputs (`core.monitoring.outputs`: class probabilities
    (n, k), or prediction / lower / upper (n, 3)) on the production rows and the test split,
    `y_prod` and `y_test` their labels as the model's (class positions or numbers; NaN where
    missing; `y_prod` None without labels); `scored` holds the production rows' features, `train`
    the training split; `version` the model's `ModelVersion` (its task kind, classes, interval).
    """
    from core.monitoring import outputs as task_outputs
    from core.monitoring.drift_report import Estimate
    from core.monitoring.task_health import words

    t = thresholds or DriftThresholds()
    kind = version.kind
    one, many = spec.row_noun, spec.rows_noun
    prod, test = np.asarray(prod, dtype="float64"), np.asarray(test, dtype="float64")
    test_m = kind.metrics(np.asarray(y_test, dtype="float64"), test, None)
    prod_m = None
    if y_prod is not None:
        y = np.asarray(y_prod, dtype="float64")
        labelled = np.isfinite(y)
        if labelled.any():
            prod_m = kind.metrics(y[labelled], prod[labelled], None)
            y_prod = y[labelled]
        else:
            y_prod = None
    ranges, oor, shifted = _coverage(scored, train, spec.features, spec.categorical_features)
    if kind.classifier:
        names = list(version.classes or spec.target.names)
        k = len(names)

        def shares(labels: np.ndarray) -> list[float]:
            return (np.bincount(np.asarray(labels).astype(int), minlength=k)[:k] / max(len(labels), 1)).tolist()

        out = {"classes": names, "predicted_test": shares(task_outputs.predicted_class(test)),
               "actual_test": shares(y_test), "predicted_batch": shares(task_outputs.predicted_class(prod)),
               "actual_batch": None if y_prod is None else shares(y_prod)}
        moved = ", ".join(f"{n} {a:.1%} → {b:.1%}" for n, a, b in zip(names, out["predicted_test"],
                                                                       out["predicted_batch"]))
        described = f"predicted class shares, test → production: {moved}"
    else:
        level = task_outputs.level(version)
        out = {"level": level, "halfwidth": task_outputs.halfwidth(version),
               "mean_prediction_test": float(test[:, 0].mean()) if len(test) else None,
               "mean_prediction_batch": float(prod[:, 0].mean()) if len(prod) else None}
        described = (f"mean prediction {out['mean_prediction_test']:,.4g} on the test split → "
                     f"{out['mean_prediction_batch']:,.4g} in production") if len(prod) and len(test) else ""
    reasons: list[str] = []
    if prod_m is not None:
        none = Estimate(accuracy=float("nan"), f1=float("nan"), roc_auc=float("nan"), trustworthy=False, reasons=())
        reasons.append(words(kind.name, test_m, prod_m, none, out, spec.target.column).rstrip(".")
                       + (f"; {described}." if described else "."))
    else:
        reasons.append(f"The batch has no labels, so its performance cannot be measured"
                       + (f": {described}." if described else "."))
    reasons += _where(oor, ranges, shifted, one, many, len(scored))
    verdict = policy.judge(test=test_m, realized=prod_m, out_of_range=oor, categorical=spec.categorical_features,
                           t=t, rows_noun=many, task=kind.name).adherence
    steps = _steps(verdict, many)
    nan = float("nan")
    return Adherence(
        verdict=verdict, text="\n\n".join([HEADLINES[verdict], *reasons]), next_steps=tuple(s.text for s in steps),
        steps=tuple(steps), threshold=nan, test_metrics=test_m, prod_metrics=prod_m, test_predicted_positive=nan,
        prod_predicted_positive=nan, prod_actual_positive=None, prod_mean_proba=nan, prod_max_proba=nan,
        out_of_range=oor, shifted=shifted, task=kind.name, outputs=out,
    )


def test_outputs(settings: Any, champ: Any) -> tuple[np.ndarray, np.ndarray]:
    """The outputs of version `champ` on the test split (`core.monitoring.outputs`) and the test
    labels as the model's (class positions or numbers): `task_adherence`'s reference, in-process."""
    from core.data import preparation
    from core.monitoring import outputs
    from core.monitoring.champion import champion_model

    settings = champ.scoped(settings)
    _, model = champion_model(settings, champ)
    test = preparation.load_split(settings, "test")
    out = outputs.model_outputs(model, test, settings.features, settings.dataset.categorical_features, champ)
    return out, test[settings.target].to_numpy(dtype="float64")
