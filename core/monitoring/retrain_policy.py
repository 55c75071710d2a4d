"""When a retraining is needed (`decide`, the policy of `core.config.RetrainPolicy`): new labelled
production rows not used before, and enough of them, or a drift check of one of those batches
that rang the retraining alarm (`core.monitoring.policy`: the Drift page's alarm), or time, or a
falling F1 forecast; and the reading of earlier `Retreinamento` and `Monitoramento` runs it rests
on, without ever creating the tracking store.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from core import tracking
from core.config import RetrainPolicy, Settings
from core.data.batches import Batch
from core.modeling.registry import unreadable_store as _unreadable

RUN_NAME = "Retreinamento"


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


def _no_store(settings: Settings) -> bool:
    """True when the embedded tracking store does not exist yet (opening it would create it)."""
    return not tracking.store_exists(settings)


def _runs(settings: Settings, status: str | None = None, max_results: int = 1000) -> list[Any]:
    """The retraining runs, newest first, read without creating the store or the experiment
    (`tracking.runs` creates them): a policy check or a refused retraining writes nothing."""
    from mlflow.tracking import MlflowClient

    if _no_store(settings):
        return []
    try:
        c = MlflowClient(settings.tracking_uri, settings.tracking_uri)
        exp = c.get_experiment_by_name(settings.experiment_name)
        if exp is None:
            return []
        flt = f"attributes.run_name = '{RUN_NAME}'" + (f" and attributes.status = '{status}'" if status else "")
        return c.search_runs([exp.experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                             max_results=max_results)
    except _store_errors() as err:
        raise _unreadable(settings, err) from err


def _store_errors() -> tuple[type[Exception], ...]:
    """What reading a tracking store raises when it is unreachable or damaged."""
    import mlflow
    import sqlalchemy

    return mlflow.exceptions.MlflowException, sqlalchemy.exc.SQLAlchemyError


def check_alarms(settings: Settings, digests: Sequence[str]) -> dict[str, str]:
    """The retraining alarm of the latest drift check (`Monitoramento` run) of each batch digest
    whose check rang it (`policy.alarm`, stored as the run's `alarm` tag); read-only."""
    from mlflow.tracking import MlflowClient

    from core.monitoring.drift_report import RUN_NAME as CHECK_RUN

    wanted = set(digests)
    if not wanted or _no_store(settings):
        return {}
    try:
        c = MlflowClient(settings.tracking_uri, settings.tracking_uri)
        exp = c.get_experiment_by_name(settings.experiment_name)
        if exp is None:
            return {}
        runs = c.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{CHECK_RUN}' and "
                             "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                             max_results=1000)
    except _store_errors() as err:
        raise _unreadable(settings, err) from err
    from core.monitoring import run_log

    # the checks still queued for their run (`run_log`) count too, newest first with the runs
    queued = [(rec["start_ms"], rec["params"], rec["tags"]) for rec in run_log.queued(settings)]
    every = sorted([*((r.info.start_time or 0, r.data.params, r.data.tags) for r in runs), *queued],
                   key=lambda x: x[0], reverse=True)
    found: dict[str, str] = {}
    for _, params, tags in every:  # newest first: the latest check of a batch decides
        digest = params.get("batch_digest", "")
        if digest in wanted and digest not in found:
            found[digest] = tags.get("alarm", "")
    return {d: text for d, text in found.items() if text}


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
    fresh = list({b.digest: b for b in batches if b.has_labels and b.digest not in used}.values())
    rows = sum(b.n_labelled for b in fresh)
    digests = tuple(b.digest for b in fresh)
    finished = _runs(settings, status="FINISHED", max_results=1)
    now_s = time.time() if now_s is None else now_s
    days = (now_s - finished[0].info.start_time / 1000) / 86400 if finished else None
    fc = forecast_f1(f1_history, policy.forecast_points)
    if rows == 0:
        reason = "no new labelled production rows since the last retraining"
        return PolicyDecision(False, reason, 0, (), days, fc)
    rang = check_alarms(settings, digests)
    if rows >= policy.min_new_rows:
        reason = f"{rows:,} new labelled rows (policy: retrain from {policy.min_new_rows:,})"
    elif rang:
        name = next(b.name for b in fresh if b.digest in rang)
        reason = (f"the drift check of {name} rang the retraining alarm ({next(iter(rang.values()))}); "
                  f"{rows:,} new labelled rows")
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
