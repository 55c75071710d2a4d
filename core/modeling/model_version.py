"""What the workbench knows about one registered model version, as one value.

`ModelVersion` holds the facts of a version that every stage needs: the dataset and registered
name, the version and its run, its aliases, the task kind, the class names, the feature set it
takes, its decision policy (for a binary model: its threshold and the rule that chose it), its
calibration and where its files are. `core.modeling.registry` reads it (the only module that knows
MLflow's tables); a page, a command or the server start reads it once and passes it explicitly to
scoring, checks, predict and retraining. Nothing here imports MLflow.

The version's tags (set at registration) are named here, so that the registry, training and
retraining share one spelling of each.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.config import Settings
from core.dataset import DEFAULT_FEATURE_SET, DatasetSpec
from core.modeling.candidates import MODEL_TAG, ROLE_TAG  # noqa: F401 (the tags training sets, named once there)
from core.modeling.tasks import TaskKind, task_kind

CHAMPION = "champion"
PREVIOUS = "previous"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, PREVIOUS, CHALLENGER)

FEATURE_SET_TAG = "workbench.feature_set"     # the feature set the version takes
THRESHOLD_TAG = "workbench.threshold"         # its decision threshold (a binary model's)
THRESHOLD_RULE_TAG = "workbench.threshold_rule"
CALIBRATION_TAG = "workbench.calibration"
TASK_TAG = "workbench.task"                   # the task kind (`core.modeling.tasks`)
DATASET_TAG = "workbench.dataset"
CLASSES_TAG = "workbench.classes"             # a multiclass model's class names in its label order (JSON list)
INTERVAL_TAG = "workbench.interval"           # a regression model's interval (JSON: {"level": 0.9, ...})
VERSION_TAGS = (FEATURE_SET_TAG, THRESHOLD_TAG, THRESHOLD_RULE_TAG, CALIBRATION_TAG, MODEL_TAG, TASK_TAG,
                CLASSES_TAG, INTERVAL_TAG)


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """A classes tag's value: a JSON list of at least two names, else None."""
    import json

    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return tuple(str(v) for v in value) if isinstance(value, list) and len(value) >= 2 else None


def parse_interval(text: str | None) -> dict[str, float] | None:
    """An interval tag's value: a JSON object with a `level` strictly between 0 and 1, else None."""
    import json

    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("level"), (int, float)) or not 0 < value["level"] < 1:
        return None
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float))}


def parse_threshold(text: str | None) -> float | None:
    """A threshold tag's value: a number strictly between 0 and 1, else None (a version logged
    before thresholds were tagged, or a tag written by hand)."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 < value < 1.0 else None


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version: its facts, read once from the registry (see the module docstring)."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    created_ms: int = 0
    feature_set: str = DEFAULT_FEATURE_SET
    threshold: float | None = None  # the version's own decision threshold (None: logged before they existed)
    threshold_rule: str | None = None
    model: str | None = None  # the candidate's model id (lr, dt, lightgbm, ...)
    dataset: str = ""
    task: str = "binary"
    classes: tuple[str, ...] = ()  # class names in the model's order (binary: negative, positive)
    calibration: str | None = None
    interval: dict[str, float] | None = field(default=None, compare=False)  # a regression's interval (level, ...)
    source: str | None = field(default=None, compare=False)  # where its files are (each read path names them its way)
    tags: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def uri(self) -> str:
        """How MLflow loads it: `models:/NAME/VERSION` (a fixed version, never an alias)."""
        return f"models:/{self.name}/{self.version}"

    @property
    def kind(self) -> TaskKind:
        """Its task kind (`core.modeling.tasks`): metrics, criterion and decision policy."""
        return task_kind(self.task)

    @property
    def decision_threshold(self) -> float:
        """The threshold its decisions use: its own, else its task kind's default."""
        return self.kind.decision_threshold(self.threshold)

    def inputs(self, dataset: DatasetSpec) -> DatasetSpec:
        """The dataset seen through the feature set this version takes (its inputs, rules, form)."""
        return dataset.with_feature_set(self.feature_set)

    def scoped(self, settings: Settings) -> Settings:
        """`settings` with their dataset seen through this version's feature set (`inputs`), for the
        functions that read the inputs from the settings' definition; the version's other facts
        (threshold, task, classes) stay in this value and are passed explicitly."""
        return settings.replace(dataset=self.inputs(settings.dataset))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("tags")
        return out

    @classmethod
    def from_tags(cls, name: str, version: Any, run_id: str | None, tags: dict[str, str],
                  dataset: DatasetSpec | None = None, aliases: tuple[str, ...] = (), created_ms: int = 0,
                  source: str | None = None) -> "ModelVersion":
        """The value of a version from its registry record and tags; the class names come from the
        dataset's definition (the target's names), the task kind from its tag (binary by default)."""
        task = tags.get(TASK_TAG) or "binary"
        classes = parse_classes(tags.get(CLASSES_TAG)) or (
            task_kind(task).class_names(dataset) if dataset is not None else ())
        return cls(name=name, version=str(version), run_id=run_id, aliases=tuple(sorted(aliases)),
                   created_ms=int(created_ms or 0),
                   feature_set=tags.get(FEATURE_SET_TAG) or DEFAULT_FEATURE_SET,
                   threshold=parse_threshold(tags.get(THRESHOLD_TAG)), threshold_rule=tags.get(THRESHOLD_RULE_TAG),
                   model=tags.get(MODEL_TAG), dataset=dataset.name if dataset is not None else "", task=task,
                   classes=classes, calibration=tags.get(CALIBRATION_TAG), interval=parse_interval(tags.get(INTERVAL_TAG)),
                   source=source, tags=dict(tags))


# the name it had before (`core.modeling.registry.VersionInfo`)
VersionInfo = ModelVersion
