"""The last steps of a training: the best candidate by cross-validation and the gate against the
champion (`choose`), its registration (`register`) and the aliases it gets (`promote`).

`register` and `promote` run inside `promotion.change` (`record`: a journal a killed process
leaves for `promotion.repair`) and write the registry only through it; `choose` reads it through
`registry.champion`.
"""
from __future__ import annotations

import json
from typing import Sequence

from core.config import Settings
from core.modeling import promotion, registry, threshold
from core.modeling.candidates import CRITERIA, MODEL_TAG, PROMOTE_MODES
from core.modeling.model_version import CLASSES_TAG, INTERVAL_TAG
from core.modeling.results import CandidateResult, Choice

RUN_TAG = "workbench.training_run"  # a training's version: the training run that registered it


def best(candidates: Sequence[CandidateResult], criterion: str = "log_loss") -> CandidateResult:
    """The candidate with the best cross-validated `criterion` (the first on a tie). The test
    split only reports (and gates against the champion): choosing on it would bias its figure.
    ValueError when there is no candidate."""
    if not candidates:
        raise ValueError("No candidate to choose from.")
    sign = -1.0 if CRITERIA[criterion] else 1.0
    return min(candidates, key=lambda c: sign * c.cv.get(criterion, c.test[criterion]))


def choose(settings: Settings, candidates: Sequence[CandidateResult], criterion: str,
           promote: str = "gate") -> Choice:
    """The best candidate by CV `criterion`, and whether it replaces the champion: it must beat
    the champion's figures on this test split (`promotion.judge`), unless `promote="always"`."""
    if promote not in PROMOTE_MODES:
        raise ValueError(f"promote must be one of {', '.join(PROMOTE_MODES)}, not {promote!r}.")
    winner = best(candidates, criterion)
    before = registry.champion(settings)
    before_test, note = promotion.on_test(settings, before)
    ok, reason = promotion.judge(before_test, winner.test, criterion, settings.promotion, settings.dataset.task)
    if note:
        reason = f"{reason} ({note})"
    if promote == "always" and not ok:
        ok, reason = True, f"promoted as asked (--promote always); the gate said: {reason}"
    return Choice(winner=winner, before=before, before_test=before_test, promoted=ok, reason=reason)


def version_tags(settings: Settings, winner: CandidateResult, training_run_id: str) -> dict[str, str]:
    """A new version's tags: its model id and training run, and its task's decision policy:
    binary its threshold, threshold rule and calibration; multiclass its calibration and class
    names in label order (`CLASSES_TAG`); regression its interval (`INTERVAL_TAG`). The task kind
    and feature set are added by `registry.register`."""
    task = settings.dataset.task
    tags = {MODEL_TAG: winner.name}
    if winner.threshold is not None:
        tags |= {threshold.VERSION_TAG: f"{winner.threshold:.4f}", threshold.RULE_TAG: str(winner.threshold_rule)}
    if task != "regression":
        tags[threshold.CALIBRATION_TAG] = winner.calibration
    if task == "multiclass":
        tags[CLASSES_TAG] = json.dumps(list(settings.dataset.target.names))
    if task == "regression" and winner.interval is not None:
        tags[INTERVAL_TAG] = json.dumps(winner.interval)
    return tags | {RUN_TAG: training_run_id}


def register(settings: Settings, winner: CandidateResult, training_run_id: str, journal: promotion.Change) -> str:
    """Register `winner`'s model as a new version of `settings.model_name` in the open registry
    change `journal`, tagged with its model id, decision policy (`version_tags`) and training
    run; returns the version."""
    return journal.register(winner.model_uri, tags=version_tags(settings, winner, training_run_id))


def promote(settings: Settings, version: str, promoted: bool, journal: promotion.Change) -> None:
    """Give `version` its alias in the open registry change `journal`: `champion` (the champion
    before becomes `previous`, and no `challenger` is left) when `promoted`, else `challenger`."""
    if promoted:
        journal.promote(version, drop_challenger=True)
    else:
        journal.challenge(version)


def record(settings: Settings, winner: CandidateResult, promoted: bool, training_run_id: str) -> str:
    """Register `winner` and give it its alias (`register`, `promote`) as one journalled registry
    change (`promotion.change`): what a training does last. Returns the new version."""
    with promotion.change(settings, "training") as journal:
        version = register(settings, winner, training_run_id, journal)
        promote(settings, version, promoted, journal)
    return version
