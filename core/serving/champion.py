"""Which version is champion, read cheaply (for `status`: is the server stale?, and `predict`),
and its files put in place for the model server (`put_champion_in_place`).

The embedded SQLite store is read directly, read-only, in a few milliseconds: MLflow's client
would cost about 1.5 s of imports and store start-up on every `predict` just to say whether the
server is stale, and at each `serve` it would compete for the CPU with the starting server
process. A tracking server, or a store whose tables do not read as expected (another MLflow
schema, several workspaces), goes through the registry (`core.modeling.registry`).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from core.config import Settings
from core.errors import TrackingError

CHAMPION_ALIAS = "champion"  # core.modeling.registry.CHAMPION, without importing MLflow for it
_UNREAD = object()  # the store did not read as expected


def _query(settings: Settings, sql: str, params: tuple | None = None) -> list[tuple] | object:
    """The rows of `sql` (parameters: `params`, by default model name and alias) on the embedded
    store; [] when there is no store yet (nothing is created); _UNREAD on any SQLite error."""
    db = settings.embedded_db_path
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5.0)) as conn:
            return conn.execute(sql, params or (settings.model_name, CHAMPION_ALIAS)).fetchall()
    except sqlite3.Error:
        return _UNREAD


def champion_version(settings: Settings) -> str | None:
    """The champion's version now (None without one)."""
    if settings.embedded_tracking:
        rows = _query(settings, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?")
        if isinstance(rows, list) and len(rows) <= 1:
            return str(rows[0][0]) if rows else None
    from core.modeling import registry  # MLflow: imported only when needed

    champ = registry.champion(settings)
    return champ.version if champ else None


def version_threshold(settings: Settings, version: str | None) -> float | None:
    """A registered version's own decision threshold (its `workbench.threshold` tag), None when it
    has none or the version is unknown: read like `champion_version` (no MLflow on the embedded store)."""
    from core.modeling.threshold import VERSION_TAG

    if version is None:
        return None
    text: str | None = None
    rows = _query(settings, "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
                  (settings.model_name, int(version) if str(version).isdigit() else -1, VERSION_TAG)) \
        if settings.embedded_tracking else _UNREAD
    if isinstance(rows, list):
        text = rows[0][0] if rows else None
    else:
        from core.modeling import registry

        info = registry.version_info(settings, str(version))
        return info.threshold if info else None
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 < value < 1.0 else None


def champion_files(settings: Settings) -> tuple[str, Path] | None:
    """(the champion's version, the local folder of its files) from the embedded store, or None
    when that cannot be told without MLflow (a tracking server, no champion, files not in a local
    folder, an unexpected schema): the caller then asks the registry."""
    if not settings.embedded_tracking:
        return None
    rows = _query(settings, "SELECT v.version, v.storage_location, v.status FROM registered_model_aliases a "
                            "JOIN model_versions v ON v.name = a.name AND v.version = a.version "
                            "AND v.workspace = a.workspace WHERE a.name = ? AND a.alias = ?")
    if not isinstance(rows, list) or len(rows) != 1:
        return None
    version, location, state = rows[0]
    parts = urlsplit(str(location or ""))
    if parts.scheme != "file" or state != "READY":
        return None
    files = Path(url2pathname(parts.path))
    return (str(version), files) if (files / "MLmodel").is_file() else None


def clear(path: Path) -> None:
    """Remove a file, symlink or folder at `path` (nothing there is fine)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _place_model(settings: Settings, version: str, folder: Path) -> None:
    """Make `folder` the files of `version`, in one step (the server process waits for it):
    a symlink to them when the store keeps them in a local folder (registered files never
    change), else a downloaded copy."""
    from core import tracking

    uri = tracking.client(settings).get_model_version_download_uri(settings.model_name, version)
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    clear(tmp)
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        os.symlink(url2pathname(parts.path) if parts.scheme else uri, tmp, target_is_directory=True)
    else:
        import mlflow

        tmp.mkdir(parents=True)
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp),
                                                       tracking_uri=settings.tracking_uri))
        if got != tmp:  # the folder's own name under dst_path
            os.replace(got, folder)
            clear(tmp)
            return
    os.replace(tmp, folder)


def put_champion_in_place(settings: Settings, folder: Path) -> str:
    """The champion's version, with its files made `folder` (see `_place_model`): straight from
    the embedded store when it reads as expected (no MLflow import: the server process has the
    machine to itself meanwhile), else through the registry. TrackingError without a champion."""
    found = champion_files(settings)
    if found is not None:
        version, files = found
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        clear(tmp)
        os.symlink(files, tmp, target_is_directory=True)
        os.replace(tmp, folder)
        return version
    from core.modeling import registry

    champ = registry.champion(settings)
    if champ is None:
        raise TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")
    _place_model(settings, champ.version, folder)
    return champ.version
