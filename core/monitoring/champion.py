"""The champion as a drift check sees it: its version, run, feature set and threshold, and its model.

A check needs the champion's version (an alias can move), the feature set it takes and its own
decision threshold (`core.modeling.registry.for_version`), and the model. Through MLflow's client
that costs the import of MLflow and the start of its store, 2-4 s of a 1,000,000-row check
whose own work takes about one second. On a SQLite store (the embedded one, or a `sqlite:///`
tracking URI) these facts are read directly, read-only, in a few milliseconds (as
`core.serving.champion` does for the model server, whose module is not imported here: its
`urllib.request` costs more than the query); a tracking server, or a store whose tables do not
read as expected, goes through the registry. The model is loaded from a local joblib copy of
the registered version (written the first time from the registry's skops artifact, whose import
alone takes seconds).
"""
from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import TrackingError

CHAMPION_ALIAS = "champion"  # core.modeling.registry.CHAMPION, without importing MLflow for it
FEATURE_SET_TAG = "workbench.feature_set"  # core.modeling.registry.FEATURE_SET_TAG, likewise
NO_CHAMPION = "No champion yet: train one on the Train page (or `python -m core train`)."
_UNREAD = object()  # the store did not read as expected


@dataclass(frozen=True)
class Champion:
    """The champion version's facts a check needs (from `core.modeling.registry.VersionInfo`)."""

    version: str
    run_id: str | None
    feature_set: str | None
    threshold: float | None


def _from_store(settings: Settings) -> Champion | None | object:
    """The champion read from the embedded store: a `Champion`, None without one, or `_UNREAD`
    when the store cannot be read this way (then the registry is asked)."""
    from core.modeling.threshold import VERSION_TAG

    db = _sqlite_file(settings)
    if db is None:
        return _UNREAD
    if not db.exists():
        return None
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5.0)) as conn:
            rows = conn.execute(
                "SELECT v.version, v.run_id, v.workspace FROM registered_model_aliases a JOIN model_versions v "
                "ON v.name = a.name AND v.version = a.version AND v.workspace = a.workspace "
                "WHERE a.name = ? AND a.alias = ?", (settings.model_name, CHAMPION_ALIAS)).fetchall()
            if len(rows) != 1:
                return None if not rows else _UNREAD
            version, run_id, workspace = rows[0]
            tags = dict(conn.execute(
                "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? AND workspace = ? "
                "AND key IN (?, ?)", (settings.model_name, version, workspace, FEATURE_SET_TAG, VERSION_TAG),
            ).fetchall())
    except sqlite3.Error:
        return _UNREAD
    return Champion(version=str(version), run_id=run_id, feature_set=tags.get(FEATURE_SET_TAG),
                    threshold=_threshold(tags.get(VERSION_TAG)))


def _threshold(text: str | None) -> float | None:
    """A version's threshold tag as `core.modeling.registry.VersionInfo.threshold` reads it: a
    number strictly between 0 and 1, else None."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 < value < 1.0 else None


def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of the store: the embedded one, or a `sqlite:///PATH` tracking URI's (the
    same MLflow schema); None for any other store."""
    if settings.embedded_tracking:
        return settings.embedded_db_path
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and "?" not in uri:
        return Path(uri.removeprefix("sqlite:///"))
    return None


def champion(settings: Settings) -> Champion | None:
    """The champion now (None without one): from a SQLite store without MLflow when it reads as
    expected, else from the registry."""
    found = _from_store(settings)
    if found is not _UNREAD:
        return found  # type: ignore[return-value]
    from core.modeling import registry

    info = registry.champion(settings)
    if info is None:
        return None
    return Champion(version=info.version, run_id=info.run_id, feature_set=info.feature_set, threshold=info.threshold)


def champion_settings(settings: Settings) -> Settings:
    """The settings seen through the champion, as `core.modeling.registry.champion_settings` gives
    them (its feature set, its own threshold; unchanged without a champion), without MLflow on the
    embedded store (tests compare the two)."""
    from core.tracking import store_exists

    if not store_exists(settings):
        return settings
    champ = champion(settings)
    if champ is None:
        return settings
    out = settings.replace(dataset=settings.dataset.with_feature_set(champ.feature_set))
    return out if champ.threshold is None else out.replace(threshold=champ.threshold)


def model_cache_path(settings: Settings, version: str, run_id: str | None) -> Path:
    """Local copy of a registered version for fast loading (see `champion_model`)."""
    return settings.monitoring_dir / "models" / f"{settings.model_name}-v{version}-{(run_id or 'x')[:12]}.joblib"


def champion_model(settings: Settings) -> tuple[str, Any]:
    """The champion's version and model, resolved now (an alias can move).

    The registry's artifact is in skops format, whose import alone takes seconds; a local
    joblib copy of each version, written by this function from the registry's model, is loaded
    instead on later checks (keyed by model name, version and run id).
    """
    import joblib

    info = champion(settings)
    if info is None:
        raise TrackingError(NO_CHAMPION)
    path = model_cache_path(settings, info.version, info.run_id)
    if path.exists():
        return info.version, joblib.load(path)
    from core.files import atomic_write
    from core.modeling import registry

    version, model = registry.load_model(settings, info.version)
    atomic_write(path, lambda tmp: joblib.dump(model, tmp))
    return version, model
