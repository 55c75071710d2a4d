"""The MLflow model registry of the active dataset: versions, the `champion` / `previous` /
`challenger` aliases, promotion, rollback, and loading a version (`load_model`).

Each version carries tags for what it takes and how it decides: its feature set
(`workbench.feature_set`), its decision threshold (`workbench.threshold`, chosen at training on
cross-validated predictions) and the rule that chose it. `for_version` / `champion_settings`
give the settings seen through a version, so serving, scoring and the drift checks use its
inputs and its threshold unless told otherwise.

`promote` and `rollback` take the lifecycle lock (`core.modeling.lock`) and journal their alias
moves (`core.modeling.promotion.change`); training and retraining, which already hold the lock
and journal their whole change, call `promote_held`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import mlflow

from core.config import Settings
from core.dataset import DEFAULT_FEATURE_SET
from core.errors import TrackingError
from core.tracking import client, use

CHAMPION = "champion"
PREVIOUS = "previous"
CHALLENGER = "challenger"
FEATURE_SET_TAG = "workbench.feature_set"  # model version tag: the feature set the version takes


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version and its aliases."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    created_ms: int
    feature_set: str = DEFAULT_FEATURE_SET
    threshold: float | None = None  # the version's own decision threshold (None: logged before they existed)
    threshold_rule: str | None = None
    model: str | None = None  # the candidate's model id (lr, dt, lightgbm, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register(settings: Settings, model_uri: str, tags: dict[str, str] | None = None) -> str:
    """Register `model_uri` under the settings' model name (tagged with its feature set and `tags`);
    return the new version."""
    use(settings)
    mv = mlflow.register_model(model_uri, settings.model_name,
                               tags={FEATURE_SET_TAG: settings.dataset.feature_set, **(tags or {})})
    return str(mv.version)


def set_challenger(settings: Settings, version: str) -> None:
    """Give `version` the `challenger` alias (a registered version that did not pass the gate)."""
    client(settings).set_registered_model_alias(settings.model_name, CHALLENGER, str(version))


def drop_alias(settings: Settings, alias: str) -> None:
    """Remove an alias (nothing when it is not set)."""
    try:
        client(settings).delete_registered_model_alias(settings.model_name, alias)
    except mlflow.exceptions.MlflowException:
        pass


def promote(settings: Settings, version: str) -> VersionInfo:
    """Give `version` the `champion` alias (the former champion keeps alias `previous`), holding
    the lifecycle lock (`TrainingBusyError` while a training or retraining runs) and journalling
    the move (see the module docstring)."""
    from core.modeling import promotion
    from core.modeling.lock import training_lock

    with training_lock(settings, "promotion"):
        promotion.repair(settings)
        with promotion.change(settings, "promotion"):
            return promote_held(settings, version)


def promote_held(settings: Settings, version: str) -> VersionInfo:
    """`promote` for a caller that already holds the lifecycle lock and journals its change."""
    c = client(settings)
    current = champion(settings)
    if current is not None and current.version == str(version):
        return current
    try:
        c.get_model_version(settings.model_name, str(version))
    except mlflow.exceptions.MlflowException as err:
        raise TrackingError(
            f"Model {settings.model_name} has no version {version}. Pick one of the registered versions."
        ) from err
    if current is not None:
        c.set_registered_model_alias(settings.model_name, PREVIOUS, current.version)
    c.set_registered_model_alias(settings.model_name, CHAMPION, str(version))
    challenger = alias_version(settings, CHALLENGER)
    if challenger is not None and challenger.version == str(version):
        drop_alias(settings, CHALLENGER)  # the challenger is the champion now
    info = version_info(settings, str(version))
    assert info is not None
    return info


def rollback(settings: Settings) -> VersionInfo:
    """Make the `previous` version champion again (the current champion becomes `previous`)."""
    prev = alias_version(settings, PREVIOUS)
    if prev is None:
        raise TrackingError("There is no previous champion to roll back to.")
    return promote(settings, prev.version)


def version_info(settings: Settings, version: str) -> VersionInfo | None:
    """A model version with its aliases, or None."""
    c = client(settings)
    try:
        mv = c.get_model_version(settings.model_name, str(version))
    except mlflow.exceptions.MlflowException:
        return None
    from core.modeling.candidates import MODEL_TAG
    from core.modeling.threshold import RULE_TAG, VERSION_TAG

    tags = mv.tags or {}
    return VersionInfo(
        name=settings.model_name,
        version=str(mv.version),
        run_id=mv.run_id,
        aliases=tuple(sorted(mv.aliases or ())),
        created_ms=int(mv.creation_timestamp or 0),
        feature_set=tags.get(FEATURE_SET_TAG, DEFAULT_FEATURE_SET),
        threshold=_threshold(tags.get(VERSION_TAG)),
        threshold_rule=tags.get(RULE_TAG),
        model=tags.get(MODEL_TAG),
    )


def _threshold(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 < value < 1.0 else None


def alias_version(settings: Settings, alias: str) -> VersionInfo | None:
    """The version behind an alias (resolved now; an alias can move), or None."""
    c = client(settings)
    try:
        mv = c.get_model_version_by_alias(settings.model_name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return version_info(settings, str(mv.version))


def champion(settings: Settings) -> VersionInfo | None:
    """The current champion version, or None when none is registered."""
    return alias_version(settings, CHAMPION)


def versions(settings: Settings) -> list[VersionInfo]:
    """All registered versions of the model, newest first."""
    c = client(settings)
    try:
        found = c.search_model_versions(f"name='{settings.model_name}'")
    except mlflow.exceptions.MlflowException:
        return []
    infos = [version_info(settings, str(mv.version)) for mv in found]
    return sorted((i for i in infos if i is not None), key=lambda i: int(i.version), reverse=True)


def load_model(settings: Settings, version: str | None = None) -> tuple[str, Any]:
    """The scikit-learn model of a registered version (the champion when None) and its version.

    Resolve the alias to a version first (an alias can move), so callers can cache by version.
    """
    if version is None:
        info = champion(settings)
        if info is None:
            raise TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")
        version = info.version
    use(settings)
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    return str(version), model


def for_version(settings: Settings, info: VersionInfo | None) -> Settings:
    """The settings seen through a version: the feature set it takes (its inputs, rules, form)
    and its own decision threshold (`Settings.threshold` stays for versions without one)."""
    if info is None:
        return settings
    out = settings.replace(dataset=settings.dataset.with_feature_set(info.feature_set))
    return out if info.threshold is None else out.replace(threshold=info.threshold)


def champion_settings(settings: Settings) -> Settings:
    """The settings seen through the champion (unchanged without a champion): what serving,
    scoring, the drift checks and retraining use, so they feed the champion its inputs and
    decide at its threshold."""
    from core.tracking import store_exists

    if not store_exists(settings):
        return settings  # no store yet: nothing to look up (and nothing created)
    return for_version(settings, champion(settings))
