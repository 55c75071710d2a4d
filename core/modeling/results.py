"""What a training returns: each candidate's figures (`CandidateResult`), the versions it
compared (`ChampionInfo`) and the whole result (`TrainResult`, whose `to_dict` is the CLI's
`train --json`: fields are added, never renamed or removed).

The steps of a training hand each other frozen results too: the data and PyCaret experiment
(`TrainingData`, `TrainingSetup`), a tuned candidate (`TunedCandidate`), its decision threshold
and calibration (`Decision`), the candidate evaluated on the test split (`EvaluatedCandidate`,
with its `HeldOutPredictions` and `Diagnostics`: what its charts are drawn from) and the gate's
choice (`Choice`). `HeldOutPredictions` and `Diagnostics` are what a candidate run stores as
JSON data (`core.modeling.run_log`); `core.charts.evaluation` draws them when they are shown.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from core.modeling.threshold import ThresholdChoice


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
    # binary: chosen on out-of-fold predictions, the test figures are at it; None for another
    # task kind (a multiclass model answers its most probable class, a regression a number)
    threshold: float | None = 0.5
    threshold_rule: str | None = "accuracy"
    calibration: str = "none"
    # test accuracy at `threshold` vs always answering the training split's majority class
    # (`core.modeling.threshold.against_majority`): below it, and why in words (a multiclass
    # model: its accuracy against the majority's; a regression: None, not compared)
    below_majority: bool | None = False
    majority_accuracy: float | None = None
    majority_class: str = ""
    why_below_majority: str = ""
    # a regression's prediction interval: {"level": 0.9, "halfwidth": q} (None for a classifier)
    interval: dict[str, float] | None = None

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
    # `test["accuracy"]` vs always answering the majority class (None: not compared)
    below_majority: bool | None = None
    majority_accuracy: float | None = None
    why_below_majority: str = ""
    interval: dict[str, float] | None = None  # a regression version's interval (level, halfwidth)

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
    base_rate: float | None = None  # the training split's share of positives (baselines' "base_rate" is its log loss etc.)
    task: str = "binary"
    classes: tuple[str, ...] = ()  # a classifier's class names in its label order

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [{"name": c.name, "label": c.label, "test": c.test, "cv": c.cv, "run_id": c.run_id,
                            "seconds": c.seconds, "threshold": c.threshold, "threshold_rule": c.threshold_rule,
                            "calibration": c.calibration, "accuracy": c.test.get("accuracy"),
                            "below_majority": c.below_majority, "majority_accuracy": c.majority_accuracy,
                            "majority_class": c.majority_class, "why_below_majority": c.why_below_majority,
                            "interval": c.interval}
                           for c in self.candidates],
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
            "base_rate": self.base_rate,
            "previous_version": self.previous_version,
            "feature_set": self.feature_set,
            "features": list(self.features),
            "seconds": self.seconds,
            "task": self.task,
            "classes": list(self.classes),
        }




# --------------------------------------------------------------------------- stored as data
@dataclass(frozen=True)
class HeldOutPredictions:
    """A candidate's labels and predictions on the held-out test split, per task kind (stored as
    `eval/test_predictions.json`), what its charts are drawn from:

    - binary: the positive class's probability (`proba`, n) and the decision threshold (ROC,
      precision-recall, calibration and confusion charts);
    - multiclass: the class probabilities (`proba`, n x k, the model's label order) and the
      class names (one-vs-rest ROC per class, the k x k confusion matrix, per-class precision
      and recall);
    - regression: the predictions and their interval's bounds (`prediction`, `lower`, `upper`)
      at `level` (predicted vs actual, residuals, error distribution, interval coverage).
    """

    y_true: np.ndarray
    proba: np.ndarray
    threshold: float | None = 0.5
    task: str = "binary"
    classes: tuple[str, ...] = ()
    prediction: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    level: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.task == "regression":
            return {"task": self.task, "y_true": [float(v) for v in self.y_true],
                    "prediction": [float(v) for v in self.prediction],
                    "lower": [float(v) for v in self.lower], "upper": [float(v) for v in self.upper],
                    "level": self.level}
        if self.task == "multiclass":
            return {"task": self.task, "y_true": [int(v) for v in self.y_true],
                    "proba": [[float(v) for v in row] for row in np.asarray(self.proba)],
                    "classes": list(self.classes)}
        return {"y_true": [int(v) for v in self.y_true], "proba": [float(v) for v in self.proba],
                "threshold": float(self.threshold if self.threshold is not None else 0.5)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_threshold: float = 0.5) -> "HeldOutPredictions":
        """Read back `to_dict()` (a run logged before thresholds existed gets `default_threshold`;
        one logged before task kinds is binary). ValueError when the lengths differ."""
        task = str(data.get("task", "binary"))
        if task == "regression":
            y = np.asarray(data["y_true"], dtype=float)
            arrays = [np.asarray(data[k], dtype=float) for k in ("prediction", "lower", "upper")]
            if any(a.shape != y.shape for a in arrays):
                raise ValueError("y_true and the predictions differ in length.")
            return cls(y_true=y, proba=arrays[0], threshold=None, task=task, prediction=arrays[0],
                       lower=arrays[1], upper=arrays[2], level=data.get("level"))
        y, p = np.asarray(data["y_true"], dtype=int), np.asarray(data["proba"], dtype=float)
        if y.shape[0] != p.shape[0] or (task == "binary" and y.shape != p.shape):
            raise ValueError(f"y_true and proba differ in length ({y.shape[0]} vs {p.shape[0]}).")
        if task == "multiclass":
            return cls(y_true=y, proba=p.reshape(len(y), -1), threshold=None, task=task,
                       classes=tuple(str(c) for c in data.get("classes", ())))
        return cls(y_true=y, proba=p, threshold=float(data.get("threshold", default_threshold)))


@dataclass(frozen=True)
class LearningCurve:
    """The task's loss (`metric`: log loss for a classifier, RMSE for a regression) on the
    training subset and on the test split when refit on growing shares."""

    sizes: tuple[int, ...]
    train_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    metric: str = "log_loss"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sizes": list(self.sizes), "train_loss": list(self.train_loss),
                               "test_loss": list(self.test_loss)}
        if self.metric != "log_loss":  # a binary run's data as it always was
            out["metric"] = self.metric
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LearningCurve":
        return cls(sizes=tuple(int(v) for v in data["sizes"]), train_loss=tuple(float(v) for v in data["train_loss"]),
                   test_loss=tuple(float(v) for v in data["test_loss"]), metric=str(data.get("metric", "log_loss")))


@dataclass(frozen=True)
class Diagnostics:
    """A fitted candidate's feature importance (`kind`: coefficient, importance or permutation;
    one value per feature), its learning curve and its tuned parameters (as text): the
    importance and learning-curve charts are drawn from these (stored as `eval/diagnostics.json`)."""

    kind: str
    features: tuple[str, ...]
    values: tuple[float, ...]
    learning_curve: LearningCurve
    params: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "features": list(self.features), "values": list(self.values),
                "learning_curve": self.learning_curve.to_dict(), "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Diagnostics":
        """Read back `to_dict()`; KeyError or ValueError when a field is missing or malformed."""
        features, values = tuple(str(f) for f in data["features"]), tuple(float(v) for v in data["values"])
        if len(features) != len(values):
            raise ValueError(f"{len(features)} features but {len(values)} importance values.")
        return cls(kind=str(data["kind"]), features=features, values=values,
                   learning_curve=LearningCurve.from_dict(data["learning_curve"]),
                   params={str(k): str(v) for k, v in (data.get("params") or {}).items()})


# --------------------------------------------------------------------------- the steps' results
@dataclass(frozen=True)
class TrainingData:
    """The training and test splits (features in the model's types, labels as the task's model
    takes them: int64 classes, float64 numbers) and the baselines' figures on the test labels."""

    train: "pd.DataFrame"
    test: "pd.DataFrame"
    baselines: dict[str, dict[str, float]]
    task: str = "binary"


@dataclass(frozen=True)
class TrainingSetup:
    """What every candidate shares: the data, the PyCaret experiment set up on the tuning sample
    (not serialisable: it lives for one training) and the number of CV folds."""

    data: TrainingData
    experiment: Any
    folds: int


@dataclass(frozen=True)
class TunedCandidate:
    """A candidate after the search: PyCaret's tuned estimator, the parameters its search varied
    (`params`) and all of them, and the search's mean CV figures."""

    name: str
    label: str
    estimator: Any
    params: dict[str, Any]
    all_params: dict[str, Any]
    tuning_cv: dict[str, float]
    n_iter: int


@dataclass(frozen=True)
class Decision:
    """A tuned candidate's decision policy and calibration, chosen on out-of-fold predictions
    of the tuning sample, and its CV figures (what chooses among candidates): binary its
    threshold; multiclass none (the most probable class); regression its interval's halfwidth
    at `interval_level` (conformal, `core.modeling.intervals`)."""

    threshold: "ThresholdChoice | None"
    calibration: str
    calibration_log_loss: dict[str, float]
    cv: dict[str, float]
    interval_halfwidth: float | None = None
    interval_level: float | None = None

    @property
    def interval(self) -> dict[str, float] | None:
        """{"level", "halfwidth"} of a regression's interval (None for a classifier)."""
        if self.interval_halfwidth is None or self.interval_level is None:
            return None
        return {"level": float(self.interval_level), "halfwidth": float(self.interval_halfwidth)}


@dataclass(frozen=True)
class EvaluatedCandidate:
    """A candidate refit on the whole training split (`model`, calibrated or not) and measured on
    the test split: its figures at its own threshold, predictions and diagnostics."""

    tuned: TunedCandidate
    decision: Decision
    model: Any
    test: dict[str, float]
    predictions: HeldOutPredictions
    diagnostics: Diagnostics
    # the global view of its explanations on a sample of the test split (issue 31:
    # `explanations.global_importance`, JSON data), None when it could not be computed
    explanations: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.tuned.name

    @property
    def label(self) -> str:
        return self.tuned.label


@dataclass(frozen=True)
class Choice:
    """The best candidate (`winner`), the champion it was compared with (a registry version, or
    None) and that champion's figures on this test split, and whether the winner is promoted."""

    winner: CandidateResult
    before: Any
    before_test: dict[str, float] | None
    promoted: bool
    reason: str
