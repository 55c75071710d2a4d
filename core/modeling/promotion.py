"""Promotion: the gate a new version passes to become champion, and registry changes that a
process killed at any moment cannot leave half-done.

The gate (`judge`): on the same test split, the challenger must beat the champion on the
criterion (log loss by default) and must not fall below the champion on the decision metric
(F1 by default, each at its own decision threshold) by more than the tolerance
(`Settings.promotion`, `core.config.PromotionPolicy`).

Registry changes (`change`): a training, retraining, promotion or rollback changes the registry
inside a journal (`run/registry.journal.json`), written before each registry write, so that a
process killed at any point (kill -9: no cleanup runs) leaves what the next one needs:

1. the aliases as they were and a fresh token, before anything else;
2. the new version is registered with the token as a tag (`CHANGE_TAG`), so that a repair finds
   it even when the kill came before the journal got its number; then its number;
3. the alias moves planned, in their order: `previous` to the champion first, then `champion`
   to the new version, then `challenger` dropped (or, when the champion stays, `challenger` to
   the new version);
4. the journal is removed once every move is made.

The move of `champion` (of `challenger` when the champion stays) is the commit. A journal left
behind is settled by `repair`, which the next training, retraining or promotion runs first under
the lifecycle lock: when the commit is in place the change is finished (the moves made again,
each one idempotent), else it is undone (the aliases put back, every version carrying the token
deleted). Why finish rather than undo once `champion` moved: from that moment the model server,
`apply` and `predict`, which read the champion without taking the lock or reading the journal
(their fast path imports no MLflow), may already use the new version; undoing would delete a
version they use and serve with `"stale": false`. So `champion` never points at a version a
repair deletes, and the readers need no repair of their own. A repair killed half-way is settled
the same way by the next one (the journal stays until it is done). An error or interruption
inside `change` settles the change at once the same way. `repair` also marks the runs the dead
process left RUNNING as KILLED. A journal of an older workbench (no token, no planned moves) is
finished when `champion` moved, else undone.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from core.config import PromotionPolicy, Settings
from core.errors import TrackingError
from core.modeling import registry
from core.modeling.candidates import CRITERIA, ROLE_TAG
from core.modeling.lock import training_lock
from core.modeling.model_version import ALIASES, CHALLENGER, CHAMPION, PREVIOUS, ModelVersion

JOURNAL = "registry.journal.json"
CHANGE_TAG = "workbench.change"  # a version's tag: the token of the journalled change that registered it
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
          policy: PromotionPolicy, task: str = "binary") -> tuple[bool, str]:
    """(promote?, reason) from both versions' test figures (the decision metric at each one's
    own threshold; a multiclass model's accuracy of its most probable class; a regression has no
    decision metric: the criterion alone). No champion, or one whose figures are missing: promote."""
    if not champion:
        return True, "promoted: there was no champion to compare with"
    metric, tol = policy.decision_metric, policy.metric_tolerance
    if task != "binary":  # a binary reason reads as it always did; the others name the metrics as pages do
        from core.modeling.metrics import label

        return _judged(champion, challenger, criterion, metric, tol, label)
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


def _judged(champion: Mapping[str, float], challenger: Mapping[str, float], criterion: str, metric: str, tol: float,
            label: Any) -> tuple[bool, str]:
    """`judge` of a multiclass or regression version: the criterion must be better; a multiclass
    model's accuracy (its most probable class) must not fall by more than the tolerance (a
    regression has no accuracy: the criterion alone)."""
    name = label(criterion)
    theirs, ours = champion.get(criterion), challenger.get(criterion)
    if theirs is None or ours is None or theirs != theirs or ours != ours:
        return False, f"kept the champion: the {name} cannot be computed for both on the test split"
    if not (ours > theirs if CRITERIA.get(criterion, False) else ours < theirs):
        return False, f"kept the champion: the challenger's test {name} {ours:.4g} is not better than the " \
                      f"champion's {theirs:.4g}"
    m_theirs, m_ours = champion.get(metric), challenger.get(metric)
    if m_theirs is not None and m_ours is not None and m_ours < m_theirs - tol:
        return False, (f"kept the champion: the challenger's test {name} is better ({ours:.4g} vs {theirs:.4g}) but "
                       f"its {label(metric)} is {_fmt(m_ours)} vs the champion's {_fmt(m_theirs)}, worse by more "
                       f"than the tolerance {tol:g}")
    tail = "" if m_theirs is None or m_ours is None else f"; {label(metric)} {_fmt(m_ours)} vs {_fmt(m_theirs)}"
    return True, f"promoted: test {name} {ours:.4g} vs the champion's {theirs:.4g}{tail}"


def on_test(settings: Settings, info: ModelVersion | None) -> tuple[dict[str, float] | None, str]:
    """A registered version's figures on this test split, through its own feature set, as its task
    kind measures them (`TaskKind.metrics`): a binary model at its own threshold, a multiclass one
    from its class probabilities, a regression with its own interval. (None, why) when it cannot
    be scored, or is of another task kind than the dataset's target now (then the gate has
    nothing to compare)."""
    from mlflow.exceptions import MlflowException

    from core.data import preparation
    from core.modeling import fitting, model_io

    if info is None:
        return None, ""
    task = settings.dataset.task
    if info.task != task:
        return None, (f"the champion, version {info.version}, is a {info.task} model and the target is now "
                      f"{task}: nothing to compare")
    inputs = info.inputs(settings.dataset)
    halfwidth = (info.interval or {}).get("halfwidth")
    try:
        _, model = registry.load_model(settings, info)
        test = preparation.load_split(settings, "test")
        if task == "binary":
            output = model_io.predict_proba(model, test, inputs.features, inputs.categorical_features)
        else:
            x = model_io.feature_frame(test, inputs.features, inputs.categorical_features)
            output = fitting.model_output(task, model, x, halfwidth)
    except (MlflowException, OSError, ValueError, KeyError) as err:
        return None, f"the champion, version {info.version}, could not be scored on the test split: " \
                     f"{type(err).__name__}: {str(err)[:200]}"
    y = test[inputs.target.column].astype("float64" if task == "regression" else "int64").to_numpy()
    threshold = info.decision_threshold if info.kind.default_threshold is not None else None
    return info.kind.metrics(y, output, threshold), ""


# --------------------------------------------------------------------------- promotion and rollback
def promote(settings: Settings, version: str) -> ModelVersion:
    """Give `version` the `champion` alias (the former champion keeps alias `previous`), holding
    the lifecycle lock (`TrainingBusyError` while a training or retraining runs) and journalling
    the move, as training does: the Compare page's button and `python -m core promote`."""
    with training_lock(settings, "promotion"):
        repair(settings)
        with change(settings, "promotion") as journal:
            return journal.promote(str(version))


def rollback(settings: Settings) -> ModelVersion:
    """Make the `previous` version champion again (the current champion becomes `previous`)."""
    with training_lock(settings, "promotion"):
        repair(settings)
        prev = registry.alias_version(settings, PREVIOUS)
        if prev is None:
            raise TrackingError("There is no previous champion to roll back to.")
        with change(settings, "rollback") as journal:
            return journal.promote(prev.version)


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


Move = tuple[str, "str | None"]  # (alias, the version it points at; None: the alias is dropped)


def _apply(settings: Settings, moves: Sequence[Sequence[Any]], missing_ok: bool = False) -> None:
    for alias, version in moves:
        if version is None:
            registry.drop_alias(settings, alias)
        else:
            registry.set_alias(settings, alias, str(version), missing_ok=missing_ok)


class Change:
    """An open registry change (see the module docstring): `register` a version, then `promote`
    it or make it `challenge`r; each writes the journal before it writes the registry."""

    def __init__(self, settings: Settings, entry: dict[str, Any]) -> None:
        self.settings, self.entry = settings, entry

    def register(self, model_uri: str, tags: Mapping[str, str] | None = None) -> str:
        """Register `model_uri` as a new version tagged with this change's token (so that a
        repair finds it even if the journal never got its number), then journal its number."""
        version = registry.register(self.settings, model_uri, tags={**(tags or {}), CHANGE_TAG: self.entry["token"]})
        self.registered(version)
        return version

    def registered(self, version: str) -> None:
        """Journal the number of the version this change registered."""
        self.entry["version"] = str(version)
        _write_journal(self.settings, self.entry)

    def move(self, moves: Sequence[Move]) -> None:
        """Journal the alias moves planned, then make them in order (`CHAMPION`'s is the commit)."""
        self.entry["moves"] = [[a, v] for a, v in moves]
        _write_journal(self.settings, self.entry)
        _apply(self.settings, moves)

    def promote(self, version: str, drop_challenger: bool = False) -> ModelVersion:
        """Make `version` champion: `previous` moves to the champion first, then `champion` to
        `version` (the commit), then `challenger` is dropped when it is `version` (always, with
        `drop_challenger`). TrackingError for a version that is not registered."""
        current = registry.champion(self.settings)
        if current is not None and current.version == str(version):
            return current
        if registry.version_info(self.settings, str(version)) is None:
            raise TrackingError(f"Model {self.settings.model_name} has no version {version}. "
                                "Pick one of the registered versions (`python -m core versions`).")
        moves: list[Move] = [(PREVIOUS, current.version)] if current is not None else []
        moves.append((CHAMPION, str(version)))
        challenger = registry.alias_version(self.settings, CHALLENGER)
        if challenger is not None and (drop_challenger or challenger.version == str(version)):
            moves.append((CHALLENGER, None))
        self.move(moves)
        info = registry.version_info(self.settings, str(version))
        assert info is not None
        return info

    def challenge(self, version: str) -> None:
        """Give `version` the `challenger` alias (the commit of a change that keeps the champion)."""
        self.move([(CHALLENGER, str(version))])


@contextmanager
def change(settings: Settings, what: str) -> Iterator[Change]:
    """Journal a registry change (see the module docstring): the aliases as they were and a token
    are saved first; on an error or interruption inside, the change is settled at once (finished
    when its commit is in place, else undone); after a kill, by the next `repair`."""
    entry = {"what": what, "pid": os.getpid(), "aliases": _aliases(settings), "token": uuid.uuid4().hex,
             "version": None, "moves": None}
    _write_journal(settings, entry)
    try:
        yield Change(settings, entry)
    except BaseException:
        _settle(settings, entry)
        raise
    _close_journal(settings)


def _commit(entry: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """The move that commits a journalled change: `champion`'s when it moves, else the first."""
    moves = entry.get("moves") or []
    for alias, version in moves:
        if alias == CHAMPION:
            return alias, version
    return (moves[0][0], moves[0][1]) if moves else None


def _committed(settings: Settings, entry: Mapping[str, Any]) -> list[list[Any]] | None:
    """The moves to finish when the change's commit is in place (None: it is not, undo it).

    A journal of an older workbench (no token, no planned moves) committed when `champion`
    moved (its `previous` had moved first): `previous` is then the champion before."""
    before: Mapping[str, str | None] = entry.get("aliases") or {}
    if "token" not in entry:
        now = registry.alias_version(settings, CHAMPION)
        if now is None or now.version == before.get(CHAMPION):
            return None
        moves: list[list[Any]] = [[PREVIOUS, before.get(CHAMPION)]] if before.get(CHAMPION) else []
        challenger = registry.alias_version(settings, CHALLENGER)
        return moves + ([[CHALLENGER, None]] if challenger is not None and challenger.version == now.version else [])
    commit = _commit(entry)
    if commit is None:
        return None
    now = registry.alias_version(settings, commit[0])
    if (now.version if now else None) != commit[1]:
        return None
    return list(entry.get("moves") or [])


def _settle(settings: Settings, entry: Mapping[str, Any]) -> list[str]:
    """Finish a journalled change whose commit is in place, else undo it; what was done."""
    what = entry.get("what", "change")
    finish = _committed(settings, entry)
    if finish is not None:
        _apply(settings, finish, missing_ok=True)
        _close_journal(settings)
        return [f"the unfinished {what} finished (its champion was already in place: "
                + ", ".join(f"{a}: {v or '-'}" for a, v in finish) + ")"]
    done = _undo(settings, entry)
    _close_journal(settings)
    return done


def _undo(settings: Settings, entry: Mapping[str, Any]) -> list[str]:
    """Put the journal's aliases back and delete the version(s) it registered; what was done."""
    done: list[str] = []
    before: Mapping[str, str | None] = entry.get("aliases") or {}
    _apply(settings, [(a, before.get(a)) for a in ALIASES], missing_ok=True)
    done.append("aliases put back as they were (" + ", ".join(f"{a}: {v or '-'}" for a, v in before.items()) + ")")
    created = {str(entry["version"])} if entry.get("version") is not None else set()
    if entry.get("token"):  # registered, maybe before the journal got its number
        created |= set(registry.versions_tagged(settings, CHANGE_TAG, str(entry["token"])))
    for version in sorted(created - {v for v in before.values() if v}, key=int):
        if registry.delete_version(settings, version):
            done.append(f"version {version}, registered by the unfinished {entry.get('what', 'change')}, deleted")
    return done


def repair(settings: Settings) -> list[str]:
    """Settle a registry change a killed process left half-done (finish it when its commit is in
    place, else undo it), and mark the lifecycle runs it left RUNNING as KILLED. Call it holding
    the lifecycle lock (nothing else is then running). Returns what it repaired, one note each
    (empty when all was in order)."""
    notes: list[str] = []
    path = _journal_path(settings)
    if path.exists():
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            entry = {}
        if isinstance(entry, dict) and entry.get("aliases") is not None:
            notes += _settle(settings, entry)
        _close_journal(settings)
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
