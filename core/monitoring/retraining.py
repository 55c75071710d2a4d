"""Retraining ("Retreinamento"): reactive or scheduled, with a champion/challenger gate.

The challenger is the champion's own model (same estimator, same tuned hyper-parameters:
`sklearn.base.clone`) refit on the dev training split plus the labelled rows of the chosen
production batches, less a held-out slice of each batch. Champion and challenger are then
compared on the same held-out slices of old data (the dev test split) and new data (the
batches' slices); the gate is `Settings.retrain` (see `core.config.RetrainPolicy`).

Two retrainings never run at once (a lock file under the runtime folder). A retraining killed
half-way changes nothing in the registry (registration and promotion come last), and the next
retraining marks its orphaned runs KILLED before it starts.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from core import tracking
from core.config import RetrainPolicy, Settings
from core.data import preparation
from core.data.batches import Batch
from core.errors import WorkbenchError
from core.modeling import metrics, model_io, registry
from core.progress import ProgressFn, Stopwatch, report

RUN_NAME = "Retreinamento"
LOWER_IS_BETTER = {"log_loss", "brier"}


class RetrainBusyError(WorkbenchError):
    """Another retraining holds the lock."""


class RetrainInputError(WorkbenchError):
    """The batches cannot be used for retraining (e.g. no labelled rows)."""


# --------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class PolicyDecision:
    """Whether a retraining is needed now, and why."""

    needed: bool
    reason: str
    new_labelled_rows: int
    batch_digests: tuple[str, ...]
    days_since_last: float | None
    forecast_f1: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def used_digests(settings: Settings) -> set[str]:
    """Digests of the batches used by earlier finished retrainings (promoted or not)."""
    used: set[str] = set()
    for run in _runs(settings, status="FINISHED"):
        used.update(d for d in run.data.params.get("batch_digests", "").split(",") if d)
    return used


def _runs(settings: Settings, status: str | None = None, max_results: int = 1000) -> list[Any]:
    return tracking.runs(settings, RUN_NAME, status=status, max_results=max_results)


def forecast_f1(f1_series: Sequence[float], points: int) -> float | None:
    """The next value of a linear trend fitted to the last `points` values (None with fewer than 2)."""
    y = np.asarray([v for v in f1_series if v is not None and np.isfinite(v)], dtype=float)[-points:]
    if len(y) < 2:
        return None
    slope, intercept = np.polyfit(np.arange(len(y)), y, 1)
    return float(slope * len(y) + intercept)


def decide(
    settings: Settings,
    batches: Sequence[Batch],
    now_s: float | None = None,
    f1_history: Sequence[float] = (),
) -> PolicyDecision:
    """Apply the policy to the candidate batches (those not used by an earlier retraining count)."""
    policy: RetrainPolicy = settings.retrain
    used = used_digests(settings)
    fresh = [b for b in batches if b.has_labels and b.digest not in used]
    rows = sum(b.n_labelled for b in fresh)
    digests = tuple(b.digest for b in fresh)
    finished = _runs(settings, status="FINISHED", max_results=1)
    now_s = time.time() if now_s is None else now_s
    days = (now_s - finished[0].info.start_time / 1000) / 86400 if finished else None
    fc = forecast_f1(f1_history, policy.forecast_points)
    if rows == 0:
        reason = "no new labelled production rows since the last retraining"
        return PolicyDecision(False, reason, 0, (), days, fc)
    if rows >= policy.min_new_rows:
        reason = f"{rows:,} new labelled rows (policy: retrain from {policy.min_new_rows:,})"
    elif days is None or days >= policy.every_days:
        since = "no earlier retraining" if days is None else f"last retraining {days:.1f} days ago"
        reason = f"{since} (policy: every {policy.every_days:g} days) and {rows:,} new labelled rows"
    elif fc is not None and fc < policy.f1_floor:
        reason = f"estimated F1 forecast at {fc:.3f}, below the floor {policy.f1_floor:.3f}"
    else:
        reason = (f"only {rows:,} new labelled rows (policy: {policy.min_new_rows:,}), last retraining "
                  f"{days:.1f} days ago (policy: every {policy.every_days:g} days)"
                  + (f", F1 forecast {fc:.3f} above the floor" if fc is not None else ""))
        return PolicyDecision(False, reason, rows, digests, days, fc)
    return PolicyDecision(True, reason, rows, digests, days, fc)


# --------------------------------------------------------------------------- data and gate
@dataclass(frozen=True)
class RetrainData:
    """Training rows (dev train + batch rows) and the two held-out sets."""

    train: pd.DataFrame
    old_holdout: pd.DataFrame
    new_holdout: pd.DataFrame


def assemble(settings: Settings, batches: Sequence[Batch]) -> RetrainData:
    """Dev train plus each batch's labelled rows less a stratified held-out slice."""
    target = settings.target
    cols = [*settings.features, target]
    parts, holdouts = [], []
    for b in batches:
        if not b.has_labels:
            continue
        rows = b.frame.loc[np.isfinite(b.frame[target]), cols].astype({target: "int64"})
        strat = rows[target] if rows[target].nunique() == 2 and rows[target].value_counts().min() >= 2 else None
        fit, hold = train_test_split(rows, test_size=settings.retrain.holdout, random_state=settings.seed,
                                     stratify=strat)
        parts.append(fit)
        holdouts.append(hold)
    if not parts:
        raise RetrainInputError(f"None of the chosen batches has labelled rows ({target}): "
                                "retraining needs production labels. Upload a batch with labels.")
    train = pd.concat([preparation.load_split(settings, "train"), *parts], ignore_index=True)
    return RetrainData(train=train, old_holdout=preparation.load_split(settings, "test"),
                       new_holdout=pd.concat(holdouts, ignore_index=True))


def fit_challenger(champion_model: Any, train: pd.DataFrame, settings: Settings) -> Any:
    """The champion's estimator and hyper-parameters, refit on `train`."""
    model = clone(champion_model)
    return model.fit(model_io.feature_frame(train, settings.features), train[settings.target].to_numpy())


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


def evaluate(model: Any, rd: RetrainData, settings: Settings) -> dict[str, dict[str, float]]:
    """Metrics on the old (dev test) and new (batch) held-out slices."""
    out = {}
    for name, frame in (("old", rd.old_holdout), ("new", rd.new_holdout)):
        proba = model_io.predict_proba(model, frame, settings.features)
        out[name] = metrics.from_proba(frame[settings.target].to_numpy(), proba, settings.threshold)
    return out


def gate(champion: dict[str, dict[str, float]], challenger: dict[str, dict[str, float]],
         policy: RetrainPolicy) -> GateResult:
    """Promote only when the challenger is better on new data and not worse than the tolerance on old."""
    c = policy.criterion
    sign = 1.0 if c in LOWER_IS_BETTER else -1.0  # positive = challenger better
    gain_new = sign * (champion["new"][c] - challenger["new"][c])
    loss_old = -sign * (champion["old"][c] - challenger["old"][c])  # positive = challenger worse
    if gain_new <= 0:
        ok, reason = False, (f"rejected: on the new data's held-out slice the challenger's {c} is "
                             f"{challenger['new'][c]:.4f} vs the champion's {champion['new'][c]:.4f} (not better)")
    elif loss_old > policy.tolerance:
        ok, reason = False, (f"rejected: better on new data ({c} {challenger['new'][c]:.4f} vs "
                             f"{champion['new'][c]:.4f}) but worse on the old test data by {loss_old:.4f} "
                             f"(tolerance {policy.tolerance:g})")
    else:
        ok, reason = True, (f"promoted: {c} on new data {challenger['new'][c]:.4f} vs {champion['new'][c]:.4f}; "
                            f"on old data {challenger['old'][c]:.4f} vs {champion['old'][c]:.4f} "
                            f"(within the tolerance {policy.tolerance:g})")
    return GateResult(ok, reason, c, champion, challenger)


# --------------------------------------------------------------------------- the retraining
@dataclass(frozen=True)
class RetrainResult:
    """What a retraining (or a policy check) did; `to_dict` is the CLI's JSON."""

    needed: bool
    reason: str
    promoted: bool
    challenger: dict[str, Any] | None
    champion: dict[str, Any] | None
    mlflow_run_id: str | None
    batches: list[str] = field(default_factory=list)
    decision: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mark_orphans(settings: Settings) -> list[str]:
    """Mark runs left RUNNING by a killed retraining (and their children) as KILLED."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(settings.tracking_uri)
    killed = []
    for run in _runs(settings, status="RUNNING"):
        c.set_terminated(run.info.run_id, status="KILLED")
        killed.append(run.info.run_id)
    return killed


@contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Hold the retraining lock (non-blocking): `RetrainBusyError` when another retraining runs."""
    from filelock import FileLock, Timeout

    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.runtime_dir / "retrain.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout as err:
        raise RetrainBusyError("A retraining is already running; wait for it to finish, then try again.") from err
    try:
        yield
    finally:
        lock.release()


def retrain(settings: Settings, batches: Sequence[Batch], reason: str = "requested",
            on_progress: ProgressFn = None) -> RetrainResult:
    """Train a challenger with the batches' labels, gate it against the champion, log `Retreinamento`.

    Raises `RetrainBusyError` when another retraining runs, `RetrainInputError` without labels.
    """
    with exclusive(settings):
        return _retrain_locked(settings, batches, reason, on_progress)


def _retrain_locked(settings: Settings, batches: Sequence[Batch], reason: str,
                    on_progress: ProgressFn) -> RetrainResult:
    import mlflow

    clock = Stopwatch()
    report(on_progress, 0.02, "Checking earlier retrainings")
    mark_orphans(settings)
    report(on_progress, 0.05, "Loading the champion")
    champ_version, champ_model = registry.load_model(settings)
    report(on_progress, 0.1, "Assembling training data and held-out slices")
    rd = assemble(settings, batches)
    digests = [b.digest for b in batches if b.has_labels]
    exp = tracking.use(settings)
    with mlflow.start_run(run_name=RUN_NAME, experiment_id=exp) as run:
        mlflow.set_tags({"pid": str(os.getpid()), "reason": reason})
        mlflow.log_params({
            "champion_version": champ_version, "batch_digests": ",".join(digests),
            "batch_names": ",".join(b.name for b in batches if b.has_labels)[:500],
            "rows_train": len(rd.train), "rows_old_holdout": len(rd.old_holdout),
            "rows_new_holdout": len(rd.new_holdout), "criterion": settings.retrain.criterion,
            "tolerance": settings.retrain.tolerance, "holdout": settings.retrain.holdout,
        })
        report(on_progress, 0.2, "Training the challenger")
        challenger = fit_challenger(champ_model, rd.train, settings)
        report(on_progress, 0.5, "Evaluating champion and challenger on the held-out slices")
        result = gate(evaluate(champ_model, rd, settings), evaluate(challenger, rd, settings), settings.retrain)
        for who in ("champion", "challenger"):
            for split, figures in getattr(result, who).items():
                mlflow.log_metrics({f"{who}_{split}_{k}": v for k, v in figures.items() if np.isfinite(v)})
        mlflow.log_text(json.dumps(result.to_dict(), indent=2), "gate.json")
        report(on_progress, 0.65, "Logging the challenger model")
        info = model_io.log_model(challenger, settings.features, rd.train, rules=settings.dataset.rules)
        report(on_progress, 0.85, "Registering the challenger")
        version = registry.register(settings, info.model_uri)
        tracking.client(settings).set_registered_model_alias(settings.model_name, registry.CHALLENGER, version)
        if result.promote:
            report(on_progress, 0.95, "Promoting the challenger to champion")
            registry.promote(settings, version)
        mlflow.set_tags({"decision": "promoted" if result.promote else "rejected", "gate_reason": result.reason,
                         "challenger_version": version})
        run_id = run.info.run_id
    report(on_progress, 1.0, "Done")
    return RetrainResult(
        needed=True, reason=reason, promoted=result.promote,
        challenger={"version": version, "metrics": result.challenger},
        champion={"version": champ_version, "metrics": result.champion},
        mlflow_run_id=run_id, batches=[b.name for b in batches if b.has_labels],
        decision=result.reason, seconds=round(clock.seconds, 3),
    )


def retrain_if_needed(settings: Settings, batches: Sequence[Batch], f1_history: Sequence[float] = (),
                      on_progress: ProgressFn = None) -> RetrainResult:
    """Apply the policy; retrain (with the batches not used before) only when it says so.

    Idempotent: a second call right after finds no new labelled rows and does nothing.
    """
    with exclusive(settings):
        decision = decide(settings, batches, f1_history=f1_history)
        if not decision.needed:
            return RetrainResult(needed=False, reason=decision.reason, promoted=False, challenger=None,
                                 champion=None, mlflow_run_id=None, decision="no retraining")
        fresh = [b for b in batches if b.digest in set(decision.batch_digests)]
        return _retrain_locked(settings, fresh, decision.reason, on_progress)


def comparison_rows(result: RetrainResult) -> list[dict[str, Any]]:
    """One row per (held-out set, metric) with champion and challenger figures (for a table)."""
    if result.champion is None or result.challenger is None:
        return []
    rows = []
    for split, label in (("new", "new data (batch held-out)"), ("old", "old data (dev test)")):
        for name, value in result.champion["metrics"][split].items():
            rows.append({"held-out set": label, "metric": name, "champion": value,
                         "challenger": result.challenger["metrics"][split][name]})
    return rows
