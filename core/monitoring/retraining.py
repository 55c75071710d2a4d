"""Retraining ("Retreinamento"): reactive or scheduled, with a champion/challenger gate.

The challenger is the champion's own model (same estimator, same tuned hyper-parameters:
`sklearn.base.clone`) refit on the dev training split plus the labelled rows of the chosen
production batches, less a held-out slice of each batch. Champion and challenger are then
compared on the same held-out slices of old data (the dev test split) and new data (the
batches' slices); the gate is `Settings.retrain` (see `core.config.RetrainPolicy`).

Each batch is checked against what retraining needs before anything is written (`plan`): it
is used in full (its labelled rows less a stratified held-out slice), used for fitting only
(too few labelled rows, or of one class only, for a held-out slice: `HOLDOUT_MIN_ROWS`,
`HOLDOUT_MIN_PER_CLASS`), or skipped (no labelled rows, the same rows as another batch); the
reasons are the result's `batch_notes`. Without any held-out slice of new data the challenger is
trained and logged but never promoted, and the gate says why.

Two retrainings never run at once (a lock file under the runtime folder). Every check (the
champion, the prepared splits, the batches) comes before the first write to the tracking store,
so a retraining refused with a `WorkbenchError` leaves `mlruns/` as it was. A retraining killed
half-way changes nothing in the registry: registration and alias moves come last and are
journalled (`core.modeling.promotion`), and the next training, retraining or promotion undoes a
half-done change and marks the orphaned runs KILLED before it starts. Training, retraining and
promotion share one lock (`core.modeling.lock`).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from core import tracking
from core.config import Settings
from core.data.batches import Batch
from core.errors import TrackingError, TrainingBusyError
from core.modeling import model_io, promotion, registry
from core.modeling.model_version import (
    CLASSES_TAG,
    INTERVAL_TAG,
    MODEL_TAG,
    TASK_TAG,
    THRESHOLD_RULE_TAG,
    THRESHOLD_TAG,
    ModelVersion,
)
from core.monitoring.retrain_gate import (  # noqa: F401
    HOLDOUT_MIN_PER_CLASS,
    HOLDOUT_MIN_ROWS,
    LOWER_IS_BETTER,
    GateResult,
    RetrainData,
    RetrainInputError,
    _dev_split,
    _n_rows,
    assemble,
    evaluate,
    fit_challenger,
    gate,
    criterion,
    plan,
    retune_interval,
    retune_threshold,
)
from core.monitoring.retrain_policy import (  # noqa: F401
    RUN_NAME,
    PolicyDecision,
    _no_store,
    _runs,
    _store_errors,
    _unreadable,
    decide,
    forecast_f1,
    used_digests,
)
from core.progress import ProgressFn, Stopwatch, report


RUN_TAG = "workbench.retraining_run"  # a retraining's version: the run that trained it


class RetrainBusyError(TrainingBusyError):
    """A training, retraining or promotion holds the one lifecycle lock (`core.modeling.lock`)."""


# --------------------------------------------------------------------------- the retraining
@dataclass(frozen=True)
class RetrainResult:
    """What a retraining (or a policy check) did; `to_dict` is the CLI's JSON.

    `batch_notes`: one note per batch given (see `plan`), plus those put aside before
    (e.g. a stored file that no longer reads): name, digest, use, counts and reason.
    """

    needed: bool
    reason: str
    promoted: bool
    challenger: dict[str, Any] | None
    champion: dict[str, Any] | None
    mlflow_run_id: str | None
    batches: list[str] = field(default_factory=list)
    decision: str = ""
    seconds: float = 0.0
    batch_notes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mark_orphans(settings: Settings) -> list[str]:
    """Mark the training and retraining runs left RUNNING by a killed process as KILLED
    (`core.modeling.promotion.mark_orphans`; call it holding the lifecycle lock)."""
    return promotion.mark_orphans(settings)


@contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Hold the lifecycle lock (non-blocking) that training and promotion also take:
    `RetrainBusyError` when a training, retraining or promotion runs."""
    from core.modeling.lock import training_lock

    with training_lock(settings, "retraining", RetrainBusyError):
        yield


def retrain(settings: Settings, batches: Sequence[Batch], model: ModelVersion | None, reason: str = "requested",
            on_progress: ProgressFn = None, notes: Sequence[dict[str, Any]] = ()) -> RetrainResult:
    """Train a challenger with the batches' labels, gate it against `model` (the champion, read once
    by the caller: its feature set and threshold), log `Retreinamento`.

    `notes`: batches put aside before (e.g. by `batch_store.read_stored`), carried into the
    result's `batch_notes`. Raises `RetrainBusyError` when another retraining runs,
    `RetrainInputError` without labelled rows to use, `TrackingError` without a loadable champion,
    `NotPreparedError` without readable prepared splits; then nothing was written.
    """
    # read-only: a home without a champion is refused before the lock makes its file; the version
    # is read again under the lock, where an alias moved meanwhile is seen
    _champion_version(settings)
    with exclusive(settings):
        return _retrain_locked(settings, batches, model, reason, on_progress, notes)


def _champion_version(settings: Settings) -> str:
    """The champion's version now, read by the registry (`registry.champion`: without writing
    anything, a store that cannot be read a `TrackingError` naming it); `TrackingError` saying how
    to get one when there is none."""
    return registry.require_champion(settings).version


def _load_champion(settings: Settings, version: str) -> Any:
    """The champion's model. MLflow writes a small file beside a model it loads from a local
    store, so this is the last check before the run starts."""
    import mlflow

    try:
        return registry.load_model(settings, version)[1]
    except (mlflow.exceptions.MlflowException, OSError, ValueError) as err:
        raise TrackingError(f"The champion (version {version} of {settings.model_name}) cannot be loaded "
                            f"({type(err).__name__}: {err}); roll back or promote another version on the "
                            "Compare page, or train again.") from err


def _retrain_locked(settings: Settings, batches: Sequence[Batch], champ: ModelVersion | None, reason: str,
                    on_progress: ProgressFn, notes: Sequence[dict[str, Any]] = ()) -> RetrainResult:
    import mlflow

    clock = Stopwatch()
    # every check first: a refusal leaves the tracking store as it was
    report(on_progress, 0.02, "Assembling training data and held-out slices")
    champ_version = _champion_version(settings)
    if champ is None or champ_version != champ.version:  # an alias moved since the caller read it
        raise TrackingError(f"The champion moved from version {champ.version if champ else 'none'} to "
                            f"{champ_version} since this retraining was asked for; look at the new champion "
                            "and ask again.")
    settings = champ.scoped(settings)
    kind = champ.kind  # the task kind: its metrics, criterion and decision policy
    try:
        rd = assemble(settings, batches, kind)
    except RetrainInputError as err:
        if not notes:
            raise
        aside = "; ".join(f"{n.get('name')}: {n.get('reason')}" for n in notes)
        raise RetrainInputError(f"{err} Put aside before: {aside}.") from err
    report(on_progress, 0.05, "Loading the champion")
    champ_model = _load_champion(settings, champ_version)
    batch_notes = [*notes, *rd.notes]
    used = [(n["name"], n["digest"]) for n in rd.notes if n["use"] != "skipped"]
    report(on_progress, 0.1, "Checking earlier trainings and retrainings")
    promotion.repair(settings)
    exp = tracking.use(settings)
    binary = kind.default_threshold is not None  # a binary model decides at its threshold
    with mlflow.start_run(run_name=RUN_NAME, experiment_id=exp) as run:
        mlflow.set_tags({"pid": str(os.getpid()), "reason": reason})
        params = {
            "champion_version": champ_version, "batch_digests": ",".join(d for _, d in used),
            "batch_names": ",".join(name for name, _ in used)[:500],
            "rows_train": len(rd.train), "rows_old_holdout": len(rd.old_holdout),
            "rows_new_holdout": len(rd.new_holdout), "criterion": criterion(settings.retrain, kind),
            "tolerance": settings.retrain.tolerance, "holdout": settings.retrain.holdout,
            "decision_metric": settings.promotion.decision_metric,
        }
        if binary:
            params["champion_threshold"] = champ.decision_threshold
        else:
            params["task"] = kind.name
        mlflow.log_params(params)
        mlflow.log_text(json.dumps(batch_notes, indent=2, default=str), "batch_notes.json")
        report(on_progress, 0.2, "Training the challenger")
        challenger = fit_challenger(champ_model, rd.train, settings)
        report(on_progress, 0.4, "Choosing the challenger's threshold on cross-validated predictions" if binary
               else "The challenger decides by the most probable class" if kind.classifier
               else "Choosing the challenger's interval on cross-validated residuals")
        own = _decision_policy(champ, champ_model, rd.train, settings)
        if own.threshold is not None:
            mlflow.log_metrics({"challenger_threshold": own.threshold.value})
        if own.interval is not None:
            mlflow.log_metrics({"challenger_interval_halfwidth": own.interval["halfwidth"]})
        report(on_progress, 0.5, "Evaluating champion and challenger on the held-out slices")
        champ_threshold = champ.decision_threshold if binary else None
        result = gate(evaluate(champ_model, rd, settings, champ_threshold, champ),
                      evaluate(challenger, rd, settings, own.value, own.version),
                      settings.retrain, settings.promotion, kind)
        for who in ("champion", "challenger"):
            for split, figures in getattr(result, who).items():
                mlflow.log_metrics({f"{who}_{split}_{k}": v for k, v in figures.items() if np.isfinite(v)})
        mlflow.log_text(json.dumps(result.to_dict(), indent=2), "gate.json")
        report(on_progress, 0.65, "Logging the challenger model")
        task = {} if binary else {"task": own.task}  # contract 2 of issue 34 (binary: as always)
        info = model_io.log_model(challenger, settings.features, rd.train, rules=settings.dataset.rules,
                                  categorical=settings.dataset.categorical_features, **task)
        report(on_progress, 0.85, "Registering the challenger" + (" and promoting it" if result.promote else ""))
        version = register_challenger(settings, info.model_uri, {
            **own.tags, MODEL_TAG: champ.model or "", RUN_TAG: run.info.run_id}, result.promote)
        mlflow.set_tags({"decision": "promoted" if result.promote else "rejected", "gate_reason": result.reason,
                         "challenger_version": version})
        run_id = run.info.run_id
    report(on_progress, 1.0, "Done")
    challenger_facts: dict[str, Any] = {"version": version, "metrics": result.challenger, "threshold": own.value}
    champion_facts: dict[str, Any] = {"version": champ_version, "metrics": result.champion,
                                      "threshold": champ_threshold}
    if own.interval is not None:
        challenger_facts["interval"], champion_facts["interval"] = own.interval, champ.interval
    return RetrainResult(
        needed=True, reason=reason, promoted=result.promote,
        challenger=challenger_facts, champion=champion_facts,
        mlflow_run_id=run_id, batches=[name for name, _ in used],
        decision=result.reason, seconds=round(clock.seconds, 3), batch_notes=batch_notes,
    )


@dataclass(frozen=True)
class DecisionPolicy:
    """A challenger's own decision policy, by its task kind: a binary model's threshold
    (`retune_threshold`), a regression model's interval (`retune_interval`), nothing for a
    multiclass one (the most probable class). `version` stands for the challenger where its
    outputs are computed (`retrain_gate.evaluate`); `tags` go to its registered version and
    `task` to its logged model (`model_io.log_model`'s task dict)."""

    threshold: Any = None  # a `core.modeling.threshold.ThresholdChoice`
    interval: dict[str, float] | None = None
    version: ModelVersion | None = None
    tags: dict[str, str] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        """The threshold's value (None for a model without one)."""
        return None if self.threshold is None else self.threshold.value


def _decision_policy(champ: ModelVersion, champ_model: Any, train: Any, settings: Settings) -> DecisionPolicy:
    """The challenger's decision policy (`DecisionPolicy`), chosen on the new training rows."""
    import dataclasses

    kind = champ.kind
    if kind.default_threshold is not None:  # binary: its own threshold, as always
        choice = retune_threshold(champ_model, train, settings)
        return DecisionPolicy(threshold=choice, tags={THRESHOLD_TAG: f"{choice.value:.4f}",
                                                      THRESHOLD_RULE_TAG: choice.rule})
    if kind.classifier:  # multiclass: the most probable class
        classes = list(champ.classes or settings.dataset.target.names)
        return DecisionPolicy(version=champ, tags={TASK_TAG: kind.name, CLASSES_TAG: json.dumps(classes)},
                              task={"task": kind.name, "classes": classes})
    level = (champ.interval or {}).get("level") or 0.9
    interval = retune_interval(champ_model, train, settings, level)
    return DecisionPolicy(interval=interval, version=dataclasses.replace(champ, version="challenger", interval=interval),
                          tags={TASK_TAG: kind.name, INTERVAL_TAG: json.dumps(interval)},
                          task={"task": kind.name, "interval": interval})


def register_challenger(settings: Settings, model_uri: str, tags: dict[str, str], promote: bool) -> str:
    """Register a retraining's challenger (tagged with `tags`) and make it `champion` when it
    passed the gate (`promote`), else `challenger`, as one journalled registry change
    (`promotion.change`): what a retraining does last. Returns the new version."""
    with promotion.change(settings, "retraining") as journal:
        version = journal.register(model_uri, tags)
        if promote:
            journal.promote(version)
        else:
            journal.challenge(version)
    return version


def retrain_if_needed(settings: Settings, batches: Sequence[Batch], model: ModelVersion | None,
                      f1_history: Sequence[float] = (), on_progress: ProgressFn = None,
                      notes: Sequence[dict[str, Any]] = ()) -> RetrainResult:
    """Apply the policy; retrain (with the batches not used before) only when it says so.

    Idempotent: a second call right after finds no new labelled rows and does nothing. The
    policy check reads the tracking store only; `notes` as for `retrain`.
    """
    if not any(b.has_labels for b in batches):  # nothing to learn from: decided without any file
        return RetrainResult(needed=False, reason="no new labelled production rows since the last retraining",
                             promoted=False, challenger=None, champion=None, mlflow_run_id=None,
                             decision="no retraining", batch_notes=list(notes))
    with exclusive(settings):
        decision = decide(model.scoped(settings) if model else settings, batches, f1_history=f1_history)
        if not decision.needed:
            return RetrainResult(needed=False, reason=decision.reason, promoted=False, challenger=None,
                                 champion=None, mlflow_run_id=None, decision="no retraining",
                                 batch_notes=list(notes))
        fresh = [b for b in batches if b.digest in set(decision.batch_digests)]
        return _retrain_locked(settings, fresh, model, decision.reason, on_progress, notes)


def comparison_rows(result: RetrainResult) -> list[dict[str, Any]]:
    """One row per (held-out set, metric) with champion and challenger figures (for a table)."""
    if result.champion is None or result.challenger is None:
        return []
    rows = []
    for split, label in (("new", "new data (batch held-out)"), ("old", "old data (dev test)")):
        theirs = result.challenger["metrics"].get(split, {})
        for name, value in result.champion["metrics"].get(split, {}).items():
            rows.append({"held-out set": label, "metric": name, "champion": value, "challenger": theirs.get(name)})
    return rows
