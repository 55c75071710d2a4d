"""The MLflow tracking store: pointing MLflow at it, the dataset's experiment, runs by name, a
one-line description of the store for the home page, and the keys MLflow accepts for names
that come from the data (`metric_key`, `key_map`).
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

from core.config import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow (1.5-2 s to import) is imported by the functions that talk to the store, not by this
# module: the pages' MLflow links and the Home page's store line need only the settings.

# A run's metric and param keys may hold only letters, digits, `_`, `-`, `.`, ` `, `:` and `/`
# and must not read as another path (mlflow.utils.validation); a feature's name may hold anything.
FEATURE_KEYS_TAG = "workbench.feature_keys"  # {key: feature} of the features whose key differs
FEATURE_KEYS_FILE = "feature_keys.json"  # the run's artifact: {feature: key} of every feature
KEY_MAX = 200  # characters of a name kept in its key (MLflow takes 250, prefixes included)
_NOT_KEY = re.compile(r"[^\w\-. ]")  # MLflow's characters less ':' (refused on Windows) and '/' (a path)
TAG_MAX = 8000  # MLflow's longest tag value


def _plain_key(text: str) -> bool:
    """Whether `text` is a key MLflow takes as it is, alone or after a prefix."""
    return (bool(text) and text != "." and len(text) <= KEY_MAX and not _NOT_KEY.search(text) and not text.startswith("..")
            and posixpath.normpath(text) == text)


def metric_key(name: object, digits: int = 8) -> str:
    """The part of an MLflow metric or param key that stands for `name` (a feature's name).

    A name MLflow accepts is kept as it is; any other has each character MLflow refuses replaced
    by `_`, is cut to `KEY_MAX` characters and gets `_` and the first `digits` hex digits of its
    SHA-256, so that two names never share a key (e.g. `<img src=x>` -> `_img src_x__8c3e5f7a`).
    The same name always gets the same key."""
    text = str(name)
    if _plain_key(text):
        return text
    safe = _NOT_KEY.sub("_", text)[:KEY_MAX]
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    return f"{safe}_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:digits]}"


def key_map(names: Iterable[object]) -> dict[str, str]:
    """{name: `metric_key(name)`} for `names` (in their order), the keys unique: a changed name
    whose key another name already has gets its whole SHA-256 instead."""
    keys = {str(n): metric_key(n) for n in names}
    counts = Counter(keys.values())
    for name, key in keys.items():
        if counts[key] > 1 and key != name:
            keys[name] = metric_key(name, digits=64)
    if len(set(keys.values())) != len(keys):  # a plain name that is another's whole-hash key
        raise ValueError(f"feature names {sorted(keys)} do not map to distinct MLflow keys")
    return keys


def feature_names(keys: Iterable[str], tags: dict[str, str], known: Iterable[str] = ()) -> dict[str, str]:
    """{key: feature name} for a run's keys: from its `FEATURE_KEYS_TAG`, else from the keys of
    the `known` features (the dataset's), else the key itself."""
    import json

    found = {v: k for k, v in key_map(known).items()}
    try:
        found.update(json.loads(tags.get(FEATURE_KEYS_TAG) or "{}"))
    except ValueError:
        pass
    return {k: found.get(k, k) for k in keys}


def use(settings: Settings) -> str:
    """Point MLflow at the settings' store and return the project's experiment id.

    The embedded store is a SQLite database under `mlruns/` with artifacts beside it
    (absolute paths, so the working directory does not matter).
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    if settings.embedded_tracking:
        settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(settings.experiment_name, artifact_location=settings.artifact_location)
    except mlflow.exceptions.MlflowException:
        # created meanwhile by another process
        exp = client.get_experiment_by_name(settings.experiment_name)
        if exp is None:
            raise
        return exp.experiment_id


def client(settings: Settings) -> MlflowClient:
    """An MlflowClient on the settings' store (after making sure it exists)."""
    from mlflow.tracking import MlflowClient

    use(settings)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def runs(settings: Settings, run_name: str, status: str | None = None, max_results: int = 1000) -> list[Any]:
    """The project's runs with this name (and status, when given), newest first."""
    from mlflow.tracking import MlflowClient

    exp_id = use(settings)
    flt = f"attributes.run_name = '{run_name}'"
    if status:
        flt += f" and attributes.status = '{status}'"
    return MlflowClient(settings.tracking_uri).search_runs(
        [exp_id], filter_string=flt, order_by=["attributes.start_time DESC"], max_results=max_results)


def last_run(settings: Settings, run_name: str) -> dict[str, Any] | None:
    """The newest run with this name as a dict (id, status, start, params, metrics), or None."""
    runs_ = runs(settings, run_name, max_results=1)
    if not runs_:
        return None
    r = runs_[0]
    return {
        "run_id": r.info.run_id,
        "status": r.info.status,
        "start_time_ms": r.info.start_time,
        "params": dict(r.data.params),
        "metrics": dict(r.data.metrics),
    }


def _redacted(uri: str) -> str:
    """`uri` with any password in it replaced by `***` (safe to show on a page)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def store_description(settings: Settings) -> str:
    """Which tracking store is in use, in one line for the home page.

    The embedded SQLite file; or, for a tracking server (`MLFLOW_TRACKING_URI=http://…`), its
    address and the backend store type the server reports (`/api/3.0/mlflow/server-info`:
    `SqlStore` for PostgreSQL, MySQL or SQLite behind it); or a database URI used directly.
    Passwords are never shown. Does not raise: an unreachable server is described as such.
    """
    from urllib.parse import urlsplit

    import requests

    if settings.embedded_tracking:
        return f"embedded SQLite at {settings.mlruns_dir / 'mlflow.db'}"
    uri = settings.tracking_uri
    shown = _redacted(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        url = uri.rstrip("/") + "/api/3.0/mlflow/server-info"
        try:
            resp = requests.get(url, timeout=settings.request_timeout_s)
        except requests.RequestException as err:
            return f"MLflow server at {shown} (not reachable: {type(err).__name__})"
        if resp.status_code != 200:
            return f"MLflow server at {shown} (backend not reported: HTTP {resp.status_code})"
        try:
            store_type = resp.json().get("store_type")
        except ValueError:
            store_type = None
        kinds = {"SqlStore": "a SQL database (SqlStore)", "FileStore": "local files (FileStore)"}
        backend = kinds.get(store_type, str(store_type) if store_type else "not reported")
        return f"MLflow server at {shown}, backend reported by the server: {backend}"
    dialect = scheme.split("+")[0]
    names = {"postgresql": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite", "mssql": "SQL Server"}
    if dialect in names:
        return f"{names[dialect]} database at {shown} (used directly, no tracking server)"
    return f"tracking store at {shown}"


def store_exists(settings: Settings) -> bool:
    """False when the embedded store does not exist yet (opening it would create it): readers
    that only look call this first, so that looking never writes a file. A server: True."""
    from pathlib import Path

    return not settings.embedded_tracking or Path(settings.tracking_uri.removeprefix("sqlite:///")).exists()


# --------------------------------------------------------------------------- the MLflow UI
def is_tracking_server(settings: Settings) -> bool:
    """True when the store is an MLflow tracking server (an http(s) address), which has its own UI."""
    from urllib.parse import urlsplit

    return urlsplit(settings.tracking_uri).scheme.lower() in ("http", "https")


def ui_base_url(settings: Settings) -> str:
    """Where the MLflow UI of the workbench's store is: the tracking server itself when the store
    is one, else `python -m core mlflow-ui` on 127.0.0.1 at `settings.mlflow_ui_port`."""
    if is_tracking_server(settings):
        return _redacted(settings.tracking_uri).rstrip("/")
    return f"http://127.0.0.1:{settings.mlflow_ui_port}"


def ui_run_url(base: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of one run."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def ui_model_version_url(base: str, model_name: str, version: str) -> str:
    """The MLflow UI's page of one registered model version."""
    from urllib.parse import quote

    return f"{base}/#/models/{quote(model_name, safe='')}/versions/{version}"


def ui_command(settings: Settings, port: int) -> tuple[list[str], dict[str, str]]:
    """(command, environment) of `mlflow ui` on the workbench's own store, bound to 127.0.0.1, with
    one worker (one person browses it; MLflow's default of 4 holds four copies of the server) and
    without MLflow's background job runner (for its GenAI features); new experiments made in the
    UI keep their artifacts beside the others."""
    import os
    import sys

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.tracking_uri,
               "--host", "127.0.0.1", "--port", str(int(port)), "--workers", "1"]
    if settings.artifact_location:
        command += ["--default-artifact-root", settings.artifact_location]
    return command, {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
