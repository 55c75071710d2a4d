"""What a training returns: each candidate's figures (`CandidateResult`), the versions it
compared (`ChampionInfo`) and the whole result (`TrainResult`, whose `to_dict` is the CLI's
`train --json`: fields are added, never renamed or removed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CandidateResult:
    """One tuned candidate: its test and CV metrics, tuned parameters and MLflow run."""

    name: str
    label: str
    test: dict[str, float]
    cv: dict[str, float]
    params: dict[str, Any]
    run_id: str
    model_uri: str
    seconds: float
    threshold: float = 0.5  # chosen on out-of-fold predictions; the test figures are at it
    threshold_rule: str = "f1"
    calibration: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChampionInfo:
    """A registered version: the champion after a training, the one before it, or the challenger.
    `test`: its figures on this training's test split, at its own `threshold`."""

    name: str
    version: str
    run_id: str | None
    test: dict[str, float]
    threshold: float | None = None
    cv: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """What `train` did (the CLI prints `to_dict()`)."""

    candidates: tuple[CandidateResult, ...]
    champion: ChampionInfo
    parent_run_id: str
    criterion: str
    folds: int
    n_iter: int
    baselines: dict[str, dict[str, float]]
    seconds: float
    previous_version: str | None = None
    feature_set: str = "default"
    features: tuple[str, ...] = ()
    promoted: bool = True
    reason: str = ""
    champion_before: ChampionInfo | None = None
    challenger: ChampionInfo | None = None
    selected_by: str = ""
    repaired: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [{"name": c.name, "label": c.label, "test": c.test, "cv": c.cv, "run_id": c.run_id,
                            "seconds": c.seconds, "threshold": c.threshold, "threshold_rule": c.threshold_rule,
                            "calibration": c.calibration} for c in self.candidates],
            # the champion after this training: the challenger when promoted, else the one before
            "champion": self.champion.to_dict(),
            "promoted": self.promoted,
            "reason": self.reason,
            "champion_before": self.champion_before.to_dict() if self.champion_before else None,
            "challenger": self.challenger.to_dict() if self.challenger else None,
            "selected_by": self.selected_by,
            "repaired": list(self.repaired),
            "parent_run_id": self.parent_run_id,
            "criterion": self.criterion,
            "folds": self.folds,
            "n_iter": self.n_iter,
            "baselines": self.baselines,
            "previous_version": self.previous_version,
            "feature_set": self.feature_set,
            "features": list(self.features),
            "seconds": self.seconds,
        }


