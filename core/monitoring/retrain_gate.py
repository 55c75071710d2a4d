"""The data and the gate of a retraining: how each batch is used (`plan`: in full with a held-out
slice, stratified for a classifier, for fitting only, or skipped, with the reason), the training
rows and held-out sets (`assemble`), the challenger's fit and its decision policy (binary: its
threshold, `retune_threshold`; regression: its interval, `retune_interval`; multiclass: the most
probable class, nothing to tune), both models' figures (`evaluate`: the task's metrics) and the
decision (`gate`: better on the new held-out data by the task's criterion, not worse than the
tolerance on the old).

The task kind is the dataset's (`spec.target.task`, the champion's: `core.modeling.tasks`); a
binary retraining is what it always was.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from core.config import PromotionPolicy, RetrainPolicy, Settings
from core.data import preparation
from core.data.batches import Batch
from core.errors import NotPreparedError, WorkbenchError
from core.modeling import metrics, model_io
from core.modeling.model_version import ModelVersion
from core.modeling.tasks import BINARY, TaskKind, task_kind

LOWER_IS_BETTER = {"log_loss", "brier"}
ERRORS = frozenset({"rmse", "mae"})  # criteria in the target's unit


#: the smallest held-out slice of a batch worth comparing on; a smaller batch is used for fitting only
HOLDOUT_MIN_ROWS = 10


#: labelled rows of each class a batch needs for a stratified held-out slice (one in each part)
HOLDOUT_MIN_PER_CLASS = 2


class RetrainInputError(WorkbenchError):
    """The batches cannot be used for retraining (e.g. no labelled rows)."""


# --------------------------------------------------------------------------- data and gate
@dataclass(frozen=True)
class RetrainData:
    """Training rows (dev train + batch rows), the two held-out sets, and a note per batch."""

    train: pd.DataFrame
    old_holdout: pd.DataFrame
    new_holdout: pd.DataFrame
    notes: list[dict[str, Any]] = field(default_factory=list)


def _kind(settings: Settings, kind: TaskKind | None) -> TaskKind:
    """The task kind of a retraining: the one given, else the dataset's."""
    return kind if kind is not None else task_kind(settings.dataset.task)


def plan(batch: Batch, settings: Settings, kind: TaskKind | None = None) -> dict[str, Any]:
    """How retraining can use one batch: `use` is "full" (labelled rows less a held-out slice,
    stratified for a classifier), "fit_only" (all its labelled rows for fitting, no held-out
    slice) or "skipped"; with the counts and the `reason` in words."""
    t = settings.dataset.target
    kind = _kind(settings, kind)
    note: dict[str, Any] = {"name": batch.name, "digest": batch.digest, "labelled_rows": batch.n_labelled,
                            "rows_fit": 0, "rows_holdout": 0}
    if not batch.has_labels or t.column not in batch.frame:
        return {**note, "use": "skipped", "reason": f"skipped: no labelled rows ({t.column} is empty or absent)"}
    y = batch.frame[t.column].to_numpy(dtype="float64")
    n = int(np.isfinite(y).sum())
    h = settings.retrain.holdout
    k = math.ceil(h * n) if 0 < h < 1 else 0  # what train_test_split would hold out
    why = None
    if kind.classifier:
        per_class = [(name, int((y == float(i)).sum())) for i, name in enumerate(kind.class_names(settings.dataset))]
        if kind is BINARY:
            n_neg, n_pos = (c for _, c in per_class)
            counts, least = f"{n_neg:,} {t.negative_name} and {n_pos:,} {t.positive_name}", min(n_neg, n_pos)
            short = (f"its labelled rows are {counts}; a stratified held-out slice needs at least "
                     f"{HOLDOUT_MIN_PER_CLASS} of each class")
        else:  # the classes it holds, each at least twice; two of them at least
            present = [(name, c) for name, c in per_class if c]
            counts = ", ".join(f"{c:,} {name}" for name, c in present)
            least = min(c for _, c in present) if len(present) >= 2 else 0
            short = (f"its labelled rows are {counts}; a stratified held-out slice needs two classes at least and "
                     f"{HOLDOUT_MIN_PER_CLASS} rows of each class it holds")
        stratified = f"stratified; {counts}"
    else:
        least, short, stratified = HOLDOUT_MIN_PER_CLASS, "", f"{_n_rows(n)}"
    if k == 0:
        why = f"the policy holds out no slice (holdout = {h:g})"
    elif least < HOLDOUT_MIN_PER_CLASS:
        why = short
    elif k < HOLDOUT_MIN_ROWS:
        why = (f"its {_n_rows(n)} give a held-out slice of {k} (holdout {h:g}); one needs at least "
               f"{HOLDOUT_MIN_ROWS} rows")
    elif n - k < HOLDOUT_MIN_PER_CLASS:
        why = f"a held-out slice of {k} (holdout {h:g}) would leave {n - k} of its {_n_rows(n)} to fit"
    if why:
        return {**note, "use": "fit_only", "rows_fit": n,
                "reason": f"used for fitting only, no held-out slice: {why}"}
    return {**note, "use": "full", "rows_fit": n - k, "rows_holdout": k,
            "reason": f"used in full: {n - k:,} rows to fit, {k:,} held out ({stratified})"}


def _n_rows(n: int) -> str:
    return f"{n:,} labelled row{'s' if n != 1 else ''}"


def _dev_split(settings: Settings, name: str, kind: TaskKind | None = None) -> pd.DataFrame:
    """A prepared split with the features and the target, checked (a refusal names what to redo):
    the label one of the task's (binary 0 / 1, multiclass a class position, regression a finite
    number)."""
    import pyarrow as pa

    try:
        frame = preparation.load_split(settings, name)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise NotPreparedError(f"The prepared {name} split cannot be read ({type(err).__name__}: {err}): "
                               "prepare the data again (Data page, or `python -m core prepare`).") from err
    cols = [*settings.features, settings.target]
    missing = [c for c in cols if c not in frame.columns]
    problem = (f"lacks the columns {', '.join(missing)}" if missing else "has no rows" if frame.empty else None)
    if problem is None:
        # the numbers that may not be missing, and the label: finite (categories are text)
        numbers = [f.name for f in settings.dataset.features_spec if f.kind != "categorical" and not f.nullable]
        values = frame[[*numbers, settings.target]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        kind = _kind(settings, kind)
        labels = (None if not kind.classifier else
                  [float(i) for i in range(len(kind.class_names(settings.dataset)))])
        if not (np.isfinite(values).all() and (labels is None or np.isin(values[:, -1], labels).all())):
            problem = "holds missing or invalid values"
    if problem:
        raise NotPreparedError(f"The prepared {name} split {problem}: prepare the data again (Data page, or "
                               "`python -m core prepare`).")
    return frame


def assemble(settings: Settings, batches: Sequence[Batch], kind: TaskKind | None = None) -> RetrainData:
    """Dev train plus each batch's labelled rows less a held-out slice (see `plan`; stratified for
    a classifier).

    Raises `RetrainInputError` when no batch has a labelled row to use; reads only.
    """
    kind = _kind(settings, kind)
    target = settings.target
    label_type = "int64" if kind.classifier else "float64"
    cols = [*settings.features, target]
    parts, holdouts, notes, seen = [], [], [], {}
    for b in batches:
        note = plan(b, settings, kind)
        if note["use"] != "skipped" and b.digest in seen:
            note = {**note, "use": "skipped", "rows_fit": 0, "rows_holdout": 0,
                    "reason": f"skipped: the same rows as the batch {seen[b.digest]!r}"}
        notes.append(note)
        if note["use"] == "skipped":
            continue
        seen[b.digest] = b.name
        rows = b.frame.loc[np.isfinite(b.frame[target]), cols].astype({target: label_type})
        if note["use"] == "full":
            fit, hold = train_test_split(rows, test_size=note["rows_holdout"], random_state=settings.seed,
                                         stratify=rows[target] if kind.classifier else None)
            holdouts.append(hold)
        else:
            fit = rows
        parts.append(fit)
    if not parts:
        why = "; ".join(f"{n['name']}: {n['reason']}" for n in notes) or "no batch was given"
        raise RetrainInputError(f"None of the chosen batches has labelled rows ({target}) to use ({why}): "
                                "retraining needs production labels. Upload a batch with labels.")
    train = pd.concat([_dev_split(settings, "train", kind), *parts], ignore_index=True)
    new = pd.concat(holdouts, ignore_index=True) if holdouts else pd.DataFrame(
        {c: pd.Series(dtype=label_type if c == target else object if c in settings.dataset.categorical_features
                      else "float64") for c in cols})
    return RetrainData(train=train, old_holdout=_dev_split(settings, "test", kind), new_holdout=new, notes=notes)


def fit_challenger(champion_model: Any, train: pd.DataFrame, settings: Settings) -> Any:
    """The champion's estimator and hyper-parameters, refit on `train`."""
    model = clone(champion_model)
    return model.fit(model_io.feature_frame(train, settings.features, settings.dataset.categorical_features),
                     train[settings.target].to_numpy())


def retune_threshold(champion_model: Any, train: pd.DataFrame, settings: Settings, folds: int = 3) -> Any:
    """The challenger's own decision threshold (`core.modeling.threshold.ThresholdChoice`), chosen
    on out-of-fold predictions of the champion's estimator over the new training rows (at most
    `TUNE_MAX_ROWS` of them, stratified), by the rule in `Settings.promotion`."""
    from core.modeling import threshold
    from core.modeling.candidates import TUNE_MAX_ROWS

    rows = train
    if len(rows) > TUNE_MAX_ROWS:
        rows, _ = train_test_split(train, train_size=TUNE_MAX_ROWS, random_state=settings.seed,
                                   stratify=train[settings.target])
    x = model_io.feature_frame(rows, settings.features, settings.dataset.categorical_features)
    y = rows[settings.target].to_numpy()
    oof = threshold.out_of_fold(clone(champion_model), x, y, folds, settings.seed)
    policy = settings.promotion
    return threshold.choose(y, oof, policy.threshold_rule, policy.cost_ratio)


def retune_interval(champion_model: Any, train: pd.DataFrame, settings: Settings, level: float,
                    folds: int = 5) -> dict[str, float]:
    """A regression challenger's prediction interval at `level` (the champion's): split-conformal
    on cross-validated residuals, as training makes it (contract 3 of issue 34): the half width is
    the ceil((n + 1) x level) / n quantile of the absolute out-of-fold residuals of the champion's
    estimator over the new training rows."""
    from sklearn.model_selection import KFold, cross_val_predict

    x = model_io.feature_frame(train, settings.features, settings.dataset.categorical_features)
    y = train[settings.target].to_numpy(dtype="float64")
    oof = cross_val_predict(clone(champion_model), x, y, cv=KFold(folds, shuffle=True, random_state=settings.seed))
    residuals = np.abs(y - oof)
    q = min(1.0, math.ceil((len(y) + 1) * level) / len(y))
    return {"level": float(level), "halfwidth": float(np.quantile(residuals, q, method="higher"))}


@dataclass(frozen=True)
class GateResult:
    """Both models' figures on the old and new held-out data, and the decision."""

    promote: bool
    reason: str
    criterion: str
    champion: dict[str, dict[str, float]]
    challenger: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(model: Any, rd: RetrainData, settings: Settings, threshold: float | None,
             version: ModelVersion | None = None) -> dict[str, dict[str, float]]:
    """Metrics on the old (dev test) and new (batch) held-out slices; {} for an empty slice.
    Binary: the class at `threshold` (the version's own); a multiclass or regression `version`
    (its task kind, its interval): the task's metrics of its outputs (`core.monitoring.outputs`)."""
    from core.monitoring import outputs

    out = {}
    for name, frame in (("old", rd.old_holdout), ("new", rd.new_holdout)):
        if frame.empty:
            out[name] = {}
            continue
        if version is None or version.kind is BINARY:
            proba = model_io.predict_proba(model, frame, settings.features, settings.dataset.categorical_features)
            out[name] = metrics.from_proba(frame[settings.target].to_numpy(), proba, threshold)
        else:
            given = outputs.model_outputs(model, frame, settings.features, settings.dataset.categorical_features,
                                          version)
            out[name] = version.kind.metrics(frame[settings.target].to_numpy(), given, None)
    return out


def criterion(policy: RetrainPolicy, kind: TaskKind | None = None) -> str:
    """The gate's criterion: the policy's when the task kind offers it, else the kind's own
    (regression: RMSE where the policy says log loss)."""
    if kind is None or kind is BINARY or policy.criterion in kind.criteria:
        return policy.criterion
    return kind.criterion


def gate(champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]],
         policy: RetrainPolicy, promotion: PromotionPolicy | None = None, kind: TaskKind | None = None) -> GateResult:
    """Promote only when the challenger is better on new data, not worse than the tolerance on
    old, and (with `promotion`) its decision metric on new data at its own threshold is not below
    the champion's at the champion's by more than `promotion.metric_tolerance`. A promoted
    challenger whose F1 on new data stays below `policy.f1_floor` is promoted with that said.

    Never promotes when a figure is missing: no held-out slice of new data, or the criterion
    undefined on a slice (e.g. ROC-AUC on one class). `kind`: the task kind, whose criterion
    (`criterion`) and direction apply (binary when None).
    """
    c = criterion(policy, kind)
    figures = [d.get(split, {}).get(c) for d in (champion, challenger) for split in ("new", "old")]
    if any(f is None or not np.isfinite(f) for f in figures):
        where = ("there is no held-out slice of new data (every batch was too small for one, or of one class: "
                 "see the batch notes)" if not champion.get("new") or not challenger.get("new")
                 else f"the {c} is undefined on a held-out slice")
        return GateResult(False, f"rejected: the challenger cannot be compared with the champion, {where}; "
                                 f"the champion stays. Retrain again when more labelled rows are in.",
                          c, champion, challenger)
    lower = LOWER_IS_BETTER | (kind.lower_is_better if kind is not None else frozenset())
    sign = 1.0 if c in lower else -1.0  # positive = challenger better
    gain_new = sign * (champion["new"][c] - challenger["new"][c])
    loss_old = -sign * (champion["old"][c] - challenger["old"][c])  # positive = challenger worse
    # the tolerance is in the criterion's unit; an error in the target's unit (RMSE, MAE) has
    # none to speak of, so for it the tolerance is a share of the champion's figure (0.01 = 1 %)
    relative = c in ERRORS
    allowed = policy.tolerance * abs(champion["old"][c]) if relative else policy.tolerance
    tolerance = (f"{policy.tolerance:g} of the champion's {c}, {allowed:.4f}" if relative
                 else f"{policy.tolerance:g}")
    at = " at its threshold" if kind is None or kind is BINARY else ""  # only a binary model has one
    if gain_new <= 0:
        ok, reason = False, (f"rejected: on the new data's held-out slice the challenger's {c} is "
                             f"{challenger['new'][c]:.4f} vs the champion's {champion['new'][c]:.4f} (not better)")
    elif loss_old > allowed:
        ok, reason = False, (f"rejected: better on new data ({c} {challenger['new'][c]:.4f} vs "
                             f"{champion['new'][c]:.4f}) but worse on the old test data by {loss_old:.4f} "
                             f"(tolerance {tolerance})")
    elif promotion is not None and _metric_drop(champion, challenger, promotion) > promotion.metric_tolerance:
        m = promotion.decision_metric
        ok, reason = False, (f"rejected: better on new data ({c} {challenger['new'][c]:.4f} vs "
                             f"{champion['new'][c]:.4f}) but its {m} there{at} is "
                             f"{challenger['new'][m]:.4f} vs the champion's {champion['new'][m]:.4f}, worse by more "
                             f"than the tolerance {promotion.metric_tolerance:g}")
    else:
        ok, reason = True, (f"promoted: {c} on new data {challenger['new'][c]:.4f} vs {champion['new'][c]:.4f}; "
                            f"on old data {challenger['old'][c]:.4f} vs {champion['old'][c]:.4f} "
                            f"(within the tolerance {tolerance})")
        if promotion is not None and promotion.decision_metric in challenger["new"]:
            m = promotion.decision_metric
            reason += f"; {m} on new data {challenger['new'][m]:.4f} vs {champion['new'].get(m, float('nan')):.4f}"
        f1 = challenger["new"].get("f1")
        if f1 is not None and f1 < policy.f1_floor:
            reason += (f". Still not adherent: its F1 on the new data is {f1:.3f}, below the floor "
                       f"{policy.f1_floor:g}; more labelled production rows, other features or another model "
                       "are needed")
    return GateResult(ok, reason, c, champion, challenger)


def _metric_drop(champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]],
                 promotion: PromotionPolicy) -> float:
    """How far the challenger's decision metric on new data falls below the champion's (0 when
    either is missing or not finite)."""
    m = promotion.decision_metric
    a, b = champion.get("new", {}).get(m), challenger.get("new", {}).get(m)
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return 0.0
    return float(a - b)
