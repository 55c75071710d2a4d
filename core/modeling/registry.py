"""The MLflow model registry of a dataset: its versions as `ModelVersion` values, the `champion` /
`previous` / `challenger` aliases, registering, moving aliases, and loading a version.

This is the only module that knows MLflow's tables. A version is read two ways:

- on a SQLite store (the embedded one, or a `sqlite:///` tracking URI) straight from its tables,
  read-only, in a few milliseconds: MLflow's client costs about 1.5 s of imports and store
  start-up, which `predict`, `serve status`, the model server's start and a 1M-row drift check
  (whose own work takes about a second) should not pay just to learn the champion's version;
- through MLflow's client for a tracking server, or a store whose tables do not read as
  expected (another schema, several workspaces).

Both give the same `ModelVersion` (tests compare them). MLflow itself is imported inside the
functions that use the client, only for start-up speed (the fast path must not pay for it).

Alias moves that change the champion go through `core.modeling.promotion` (the lifecycle lock
and the journal, in which the moves are planned before `set_alias` / `drop_alias` make them).
"""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from core.config import Settings
from core.errors import TrackingError
from core.modeling.model_version import (  # noqa: F401 (re-exported: the names callers used before)
    ALIASES,
    CHALLENGER,
    CHAMPION,
    FEATURE_SET_TAG,
    PREVIOUS,
    TASK_TAG,
    ModelVersion,
    VersionInfo,
)

NO_CHAMPION = "No champion yet: train one on the Train page (or `python -m core train`)."
_UNREAD = object()  # the store did not read as expected: ask MLflow's client


# --------------------------------------------------------------------------- the fast path (SQLite)
def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of the store: the embedded one, or a `sqlite:///PATH` tracking URI's (the
    same MLflow schema); None for any other store."""
    if settings.embedded_tracking:
        return settings.embedded_db_path
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and "?" not in uri:
        return Path(uri.removeprefix("sqlite:///"))
    return None


def _read(settings: Settings, where: str, params: tuple) -> list[ModelVersion] | object:
    """The versions of the settings' model matching `where` (SQL over `model_versions v`, and
    `registered_model_aliases a` when it names them), read from a SQLite store; [] when there is
    no store file yet (nothing is created); `_UNREAD` when it is not SQLite or does not read."""
    db = _sqlite_file(settings)
    if db is None:
        return _UNREAD
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5.0)) as conn:
            rows = conn.execute(
                "SELECT v.version, v.run_id, v.workspace, v.creation_time, v.storage_location, v.status "
                # a deleted version stays as a row in stage Deleted_Internal (MLflow's soft delete)
                "FROM model_versions v WHERE v.name = ? AND v.current_stage != 'Deleted_Internal' "
                f"{where}", (settings.model_name, *params)).fetchall()
            if len({r[2] for r in rows}) > 1:
                return _UNREAD  # several workspaces: the client knows which one is meant
            out = []
            for version, run_id, workspace, created, location, status in rows:
                if status != "READY":
                    continue
                tags = dict(conn.execute(
                    "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? AND workspace = ?",
                    (settings.model_name, version, workspace)).fetchall())
                aliases = tuple(a for (a,) in conn.execute(
                    "SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ? AND workspace = ?",
                    (settings.model_name, version, workspace)).fetchall())
                out.append(ModelVersion.from_tags(settings.model_name, version, run_id, tags, settings.dataset,
                                                  aliases=aliases, created_ms=created or 0, source=location))
            return out
    except sqlite3.Error:
        return _UNREAD


def _read_alias(settings: Settings, alias: str) -> ModelVersion | None | object:
    found = _read(settings, "AND v.version IN (SELECT a.version FROM registered_model_aliases a "
                            "WHERE a.name = v.name AND a.workspace = v.workspace AND a.alias = ?)", (alias,))
    if not isinstance(found, list) or len(found) > 1:
        return _UNREAD
    return found[0] if found else None


# --------------------------------------------------------------------------- reading
def _from_client(settings: Settings, mv: Any) -> ModelVersion:
    return ModelVersion.from_tags(settings.model_name, mv.version, mv.run_id, dict(mv.tags or {}), settings.dataset,
                                  aliases=tuple(mv.aliases or ()), created_ms=mv.creation_timestamp or 0,
                                  source=getattr(mv, "source", None))


def version_info(settings: Settings, version: str) -> ModelVersion | None:
    """A registered version (None when unknown or not ready)."""
    if not str(version).isdigit():
        return None
    found = _read(settings, "AND v.version = ?", (int(version),))
    if isinstance(found, list):
        return found[0] if found else None
    import mlflow  # deferred for start-up speed (see the module docstring)

    from core.tracking import client

    try:
        mv = client(settings).get_model_version(settings.model_name, str(version))
    except mlflow.exceptions.MlflowException:
        return None
    return _from_client(settings, mv)


def unreadable_store(settings: Settings, err: Exception) -> TrackingError:
    """The error for a tracking store that is damaged or out of reach, naming what to check."""
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return TrackingError(f"The tracking store cannot be read ({first}); check MLFLOW_TRACKING_URI, or restore "
                         f"the store under {settings.mlruns_dir}.")


def alias_version(settings: Settings, alias: str) -> ModelVersion | None:
    """The version behind an alias now (an alias can move), or None. A store that cannot be read
    (damaged, unreachable) is a `TrackingError` naming it."""
    found = _read_alias(settings, alias)
    if found is not _UNREAD:
        return found  # type: ignore[return-value]
    import mlflow  # deferred for start-up speed
    import sqlalchemy

    from core.tracking import client, store_exists

    if settings.embedded_tracking and not store_exists(settings):
        return None
    try:
        mv = client(settings).get_model_version_by_alias(settings.model_name, alias)
    except mlflow.exceptions.MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise unreadable_store(settings, err) from err
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise unreadable_store(settings, err) from err
    return _from_client(settings, mv)


def champion(settings: Settings) -> ModelVersion | None:
    """The champion now, or None when none is registered."""
    return alias_version(settings, CHAMPION)


def require_champion(settings: Settings) -> ModelVersion:
    """The champion now; `TrackingError` saying how to get one when there is none."""
    found = champion(settings)
    if found is None:
        raise TrackingError(NO_CHAMPION)
    return found


def champion_version(settings: Settings) -> str | None:
    """The champion's version now (None without one)."""
    found = champion(settings)
    return found.version if found else None


def versions(settings: Settings) -> list[ModelVersion]:
    """Every registered version of the model, newest first."""
    found = _read(settings, "", ())
    if not isinstance(found, list):
        import mlflow  # deferred for start-up speed

        from core.tracking import client

        try:  # a search's records may lack aliases and tags: each version is read again
            numbers = [str(mv.version) for mv in client(settings).search_model_versions(f"name='{settings.model_name}'")]
        except mlflow.exceptions.MlflowException:
            return []
        found = [v for v in (version_info(settings, n) for n in numbers) if v is not None]
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def local_files(model: ModelVersion) -> Path | None:
    """The local folder of a version's files when the store keeps them in one (else None)."""
    parts = urlsplit(str(model.source or ""))
    if parts.scheme != "file":
        return None
    files = Path(url2pathname(parts.path))
    return files if (files / "MLmodel").is_file() else None


def download_uri(settings: Settings, model: ModelVersion) -> str:
    """Where MLflow's client says a version's files can be fetched from."""
    from core.tracking import client

    return client(settings).get_model_version_download_uri(settings.model_name, model.version)


def load_model(settings: Settings, version: str | ModelVersion | None = None) -> tuple[str, Any]:
    """The scikit-learn model of a registered version (the champion when None) and its version.

    Resolve the alias to a version first (an alias can move), so callers can cache by version.
    """
    if version is None:
        version = require_champion(settings)
    number = version.version if isinstance(version, ModelVersion) else str(version)
    import mlflow  # deferred for start-up speed

    from core.tracking import use

    use(settings)
    return number, mlflow.sklearn.load_model(f"models:/{settings.model_name}/{number}")


# --------------------------------------------------------------------------- writing
def register(settings: Settings, model_uri: str, tags: dict[str, str] | None = None) -> str:
    """Register `model_uri` under the settings' model name, tagged with its feature set, its task
    kind and `tags`; return the new version."""
    import mlflow  # deferred for start-up speed

    from core.tracking import use

    use(settings)
    mv = mlflow.register_model(model_uri, settings.model_name,
                               tags={FEATURE_SET_TAG: settings.dataset.feature_set, TASK_TAG: settings.dataset.task,
                                     **(tags or {})})
    return str(mv.version)


def set_challenger(settings: Settings, version: str) -> None:
    """Give `version` the `challenger` alias (a registered version that did not pass the gate)."""
    from core.tracking import client

    client(settings).set_registered_model_alias(settings.model_name, CHALLENGER, str(version))


def set_alias(settings: Settings, alias: str, version: str, missing_ok: bool = False) -> None:
    """Point `alias` at `version`; with `missing_ok`, a version or model that is gone is no error
    (the journal's undo puts aliases back as they were)."""
    import mlflow  # deferred for start-up speed

    from core.tracking import client

    try:
        client(settings).set_registered_model_alias(settings.model_name, alias, str(version))
    except mlflow.exceptions.MlflowException:
        if not missing_ok:
            raise


def drop_alias(settings: Settings, alias: str) -> None:
    """Remove an alias (nothing when it is not set)."""
    import mlflow  # deferred for start-up speed

    from core.tracking import client

    try:
        client(settings).delete_registered_model_alias(settings.model_name, alias)
    except mlflow.exceptions.MlflowException:
        pass


def versions_tagged(settings: Settings, key: str, value: str) -> list[str]:
    """The versions (numbers, any status) whose tag `key` is `value`, asked of MLflow's client
    (a search's records may lack tags: each version is read again)."""
    import mlflow  # deferred for start-up speed

    from core.tracking import client, store_exists

    if settings.embedded_tracking and not store_exists(settings):
        return []
    c = client(settings)
    try:
        found = c.search_model_versions(f"name='{settings.model_name}'")
        return sorted((str(mv.version) for mv in found
                       if (c.get_model_version(settings.model_name, str(mv.version)).tags or {}).get(key) == value),
                      key=int)
    except mlflow.exceptions.MlflowException:
        return []


def delete_version(settings: Settings, version: str) -> bool:
    """Delete a version; False when it was already gone."""
    import mlflow  # deferred for start-up speed

    from core.tracking import client

    try:
        client(settings).delete_model_version(settings.model_name, str(version))
    except mlflow.exceptions.MlflowException:
        return False
    return True
