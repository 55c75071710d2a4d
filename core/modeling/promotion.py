"""Promotion: the gate a new version passes to become champion, and registry changes that a
process killed at any moment cannot leave half-done.

The gate (`judge`): on the same test split, the challenger must beat the champion on the
criterion (log loss by default) and must not fall below the champion on the decision metric
(F1 by default, each at its own decision threshold) by more than the tolerance
(`Settings.promotion`, `core.config.PromotionPolicy`).

Registry changes (`change`): before a training or retraining registers a version or moves an
alias, it writes a journal (`run/registry.journal.json`) holding the aliases as they were; the
journal is removed once every alias is in place. A journal left behind means its process died
half-way: `repair`, run by the next training, retraining or promotion under the lifecycle lock,
puts the aliases back as they were, deletes the version that half-done change registered, and
marks the runs the dead process left RUNNING as KILLED.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

from core.config import PromotionPolicy, Settings
from core.errors import TrackingError
from core.modeling import registry
from core.modeling.candidates import CRITERIA, ROLE_TAG
from core.modeling.lock import training_lock
from core.modeling.model_version import ALIASES, PREVIOUS, ModelVersion
JOURNAL = "registry.journal.json"
# runs of the lifecycle (training parent and candidates, retraining): under the lifecycle lock,
# one still RUNNING was left by a killed process
LIFECYCLE_RUNS = ("Treinamento", "Retreinamento")


# --------------------------------------------------------------------------- the gate
@dataclass(frozen=True)
class Verdict:
    """Whether the challenger replaces the champion, and why (the CLI's `train --json` fields)."""

    promoted: bool
    reason: str
    criterion: str
    decision_metric: str
    champion_before: dict[str, Any] | None = None
    challenger: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def judge(champion: Mapping[str, float] | None, challenger: Mapping[str, float], criterion: str,
          policy: PromotionPolicy) -> tuple[bool, str]:
    """(promote?, reason) from both versions' test figures (the decision metric at each one's
    own threshold). No champion, or one whose figures are missing: promote."""
    if not champion:
        return True, "promoted: there was no champion to compare with"
    metric, tol = policy.decision_metric, policy.metric_tolerance
    theirs, ours = champion.get(criterion), challenger.get(criterion)
    if theirs is None or ours is None or theirs != theirs or ours != ours:  # NaN: not comparable
        return False, (f"kept the champion: the {criterion} cannot be computed for both on the test split")
    higher = CRITERIA.get(criterion, False)
    better = ours > theirs if higher else ours < theirs
    if not better:
        return False, (f"kept the champion: the challenger's test {criterion} {_fmt(ours)} is not better than "
                       f"the champion's {_fmt(theirs)}")
    m_theirs, m_ours = champion.get(metric), challenger.get(metric)
    if m_theirs is not None and m_ours is not None and m_ours < m_theirs - tol:
        return False, (f"kept the champion: the challenger's test {criterion} is better ({_fmt(ours)} vs "
                       f"{_fmt(theirs)}) but its {metric} at its threshold is {_fmt(m_ours)} vs the champion's "
                       f"{_fmt(m_theirs)}, worse by more than the tolerance {tol:g}")
    tail = "" if m_theirs is None or m_ours is None else f"; {metric} {_fmt(m_ours)} vs {_fmt(m_theirs)}"
    return True, f"promoted: test {criterion} {_fmt(ours)} vs the champion's {_fmt(theirs)}{tail}"


def on_test(settings: Settings, info: ModelVersion | None) -> tuple[dict[str, float] | None, str]:
    """A registered version's figures on this test split at its own threshold, through its own
    feature set; (None, why) when it cannot be scored (then the gate has nothing to compare)."""
    from mlflow.exceptions import MlflowException

    from core.data import preparation
    from core.modeling import model_io

    if info is None:
        return None, ""
    inputs = info.inputs(settings.dataset)
    try:
        _, model = registry.load_model(settings, info)
        test = preparation.load_split(settings, "test")
        proba = model_io.predict_proba(model, test, inputs.features, inputs.categorical_features)
    except (MlflowException, OSError, ValueError, KeyError) as err:
        return None, f"the champion, version {info.version}, could not be scored on the test split: " \
                     f"{type(err).__name__}: {str(err)[:200]}"
    y = test[inputs.target.column].astype("int64").to_numpy()
    return info.kind.metrics(y, proba, info.decision_threshold), ""


# --------------------------------------------------------------------------- promotion and rollback
def promote(settings: Settings, version: str) -> ModelVersion:
    """Give `version` the `champion` alias (the former champion keeps alias `previous`), holding
    the lifecycle lock (`TrainingBusyError` while a training or retraining runs) and journalling
    the move, as training does: the Compare page's button and `python -m core promote`."""
    with training_lock(settings, "promotion"):
        repair(settings)
        with change(settings, "promotion"):
            return registry.promote_held(settings, version)


def rollback(settings: Settings) -> ModelVersion:
    """Make the `previous` version champion again (the current champion becomes `previous`)."""
    with training_lock(settings, "promotion"):
        repair(settings)
        prev = registry.alias_version(settings, PREVIOUS)
        if prev is None:
            raise TrackingError("There is no previous champion to roll back to.")
        with change(settings, "rollback"):
            return registry.promote_held(settings, prev.version)


# --------------------------------------------------------------------------- journal
def _journal_path(settings: Settings):
    return settings.runtime_dir / JOURNAL


def _aliases(settings: Settings) -> dict[str, str | None]:
    return {a: (info.version if (info := registry.alias_version(settings, a)) else None) for a in ALIASES}


def _write_journal(settings: Settings, entry: Mapping[str, Any]) -> None:
    from core.files import atomic_write_text

    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(_journal_path(settings), json.dumps(dict(entry)))


def _close_journal(settings: Settings) -> None:
    """The change is complete (or undone): its journal goes."""
    _journal_path(settings).unlink(missing_ok=True)


class Change:
    """An open registry change: call `registered(version)` right after registering a version."""

    def __init__(self, settings: Settings, entry: dict[str, Any]) -> None:
        self.settings, self.entry = settings, entry

    def registered(self, version: str) -> None:
        self.entry["version"] = str(version)
        _write_journal(self.settings, self.entry)


@contextmanager
def change(settings: Settings, what: str) -> Iterator[Change]:
    """Journal a registry change (see the module docstring): the aliases as they were are saved
    first; on an error or interruption inside, they are put back at once (and the version
    registered inside is deleted); after a kill, by the next `repair`."""
    entry = {"what": what, "pid": os.getpid(), "aliases": _aliases(settings), "version": None}
    _write_journal(settings, entry)
    try:
        yield Change(settings, entry)
    except BaseException:
        _undo(settings, entry)
        raise
    _close_journal(settings)


def _undo(settings: Settings, entry: Mapping[str, Any]) -> list[str]:
    """Put the journal's aliases back and delete the version it registered; what was done."""
    done: list[str] = []
    before: Mapping[str, str | None] = entry.get("aliases") or {}
    for alias in ALIASES:
        want = before.get(alias)
        if want is None:
            registry.drop_alias(settings, alias)
        else:
            registry.set_alias(settings, alias, want, missing_ok=True)
    done.append("aliases put back as they were (" + ", ".join(f"{a}: {v or '-'}" for a, v in before.items()) + ")")
    version = entry.get("version")
    if version is not None and version not in before.values() and registry.delete_version(settings, str(version)):
        done.append(f"version {version}, registered by the unfinished {entry.get('what', 'change')}, deleted")
    _close_journal(settings)
    return done


def repair(settings: Settings) -> list[str]:
    """Undo a registry change a killed process left half-done, and mark the lifecycle runs it
    left RUNNING as KILLED. Call it holding the lifecycle lock (nothing else is then running).
    Returns what it repaired, one note each (empty when all was in order)."""
    notes: list[str] = []
    path = _journal_path(settings)
    if path.exists():
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            entry = {}
        if isinstance(entry, dict) and entry.get("aliases") is not None:
            notes += _undo(settings, entry)
        path.unlink(missing_ok=True)
    notes += [f"run {r} left RUNNING by a killed process marked KILLED" for r in mark_orphans(settings)]
    return notes


def mark_orphans(settings: Settings) -> list[str]:
    """Mark the training and retraining runs (and candidates) left RUNNING as KILLED; their ids."""
    from mlflow.exceptions import MlflowException

    from core import tracking

    if not tracking.store_exists(settings):
        return []
    c = tracking.client(settings)
    exp = c.get_experiment_by_name(settings.experiment_name)
    if exp is None:
        return []
    try:
        running = c.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    except MlflowException:
        return []
    killed = []
    for run in running:
        if run.info.run_name in LIFECYCLE_RUNS or run.data.tags.get(ROLE_TAG) in ("training", "candidate"):
            c.set_terminated(run.info.run_id, status="KILLED")
            killed.append(run.info.run_id)
    return killed
