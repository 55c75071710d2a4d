"""MLflow: the store, the project's experiment, runs, model logging, registry and aliases."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from core import kobe_pyfunc
from core.config import Settings
from core.errors import TrackingError

CHAMPION = "champion"
PREVIOUS = "previous"
CHALLENGER = "challenger"


def use(settings: Settings) -> str:
    """Point MLflow at the settings' store and return the project's experiment id.

    The embedded store is a SQLite database under `mlruns/` with artifacts beside it
    (absolute paths, so the working directory does not matter).
    """
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
    use(settings)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def feature_frame(df: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """The feature columns as doubles: the model's input contract.

    Doubles everywhere, so that a fractional `period` is refused by validation rather than
    silently truncated by an integer signature.
    """
    return df.loc[:, list(features)].astype("float64")


# Types a model of ours may hold beyond skops' default trusted list (trees, LightGBM boosters).
TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "lightgbm.", "numpy.", "collections.OrderedDict")


def model_requirements(model: Any) -> list[str]:
    """Pinned requirements of a served model (given explicitly: MLflow's inference takes 6-8 s)."""
    from importlib.metadata import version

    names = ["mlflow", "scikit-learn", "numpy", "scipy", "pandas", "skops"]
    steps = getattr(model, "steps", [(None, model)])
    if any(type(step).__module__.startswith("lightgbm") for _, step in steps):
        names.append("lightgbm")
    return [f"{n}=={version(n)}" for n in names]


def trusted_types(model: Any) -> list[str]:
    """The skops types of a model outside skops' default list; each must start with TRUSTED_PREFIXES."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    odd = [t for t in found if not t.startswith(TRUSTED_PREFIXES)]
    if odd:
        raise TrackingError(f"The model holds types that cannot be stored safely: {', '.join(odd)}.")
    return list(found)


def _save_served_sklearn(path: str, mlflow_model: Any, **kwargs: Any) -> None:
    """`mlflow.sklearn.save_model`, then make `kobe_pyfunc` (shipped in `code/`) the pyfunc loader."""
    mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
    mlflow_model.flavors["python_function"]["loader_module"] = kobe_pyfunc.__name__.rsplit(".", 1)[-1]
    mlflow_model.save(os.path.join(path, "MLmodel"))


# `Model.log` takes a "flavor" module with save_model; this one is mlflow.sklearn's plus our loader
SERVED_SKLEARN = SimpleNamespace(__name__="mlflow.sklearn", save_model=_save_served_sklearn)


def log_model(model: Any, features: tuple[str, ...], example: pd.DataFrame, name: str = "model") -> Any:
    """Log a scikit-learn model that returns P(made) when served (predict_proba).

    The signature declares the features as doubles; the model is stored in MLflow's safe
    (skops) format with the types it needs trusted (`trusted_types`: only scikit-learn,
    LightGBM and numpy types), and its requirements pinned (`model_requirements`). It loads
    with `mlflow.sklearn.load_model` as any scikit-learn model; as a pyfunc (the model server,
    Spark) it loads through `core/kobe_pyfunc.py`, copied into the model, which computes the
    same probabilities without scikit-learn's per-call input checks.
    """
    from mlflow.models import Model, infer_signature

    x = feature_frame(example, features).head(5)
    proba = np.asarray(model.predict_proba(x))
    signature = infer_signature(x, proba)
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=SERVED_SKLEARN,
        sk_model=model,
        signature=signature,
        input_example=x,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=model_requirements(model),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted_types(model),
        code_paths=[kobe_pyfunc.__file__],
    )


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version and its aliases."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register(settings: Settings, model_uri: str) -> str:
    """Register `model_uri` under the settings' model name; return the new version."""
    use(settings)
    mv = mlflow.register_model(model_uri, settings.model_name)
    return str(mv.version)


def promote(settings: Settings, version: str) -> VersionInfo:
    """Give `version` the `champion` alias; the former champion keeps alias `previous`."""
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
    return VersionInfo(
        name=settings.model_name,
        version=str(mv.version),
        run_id=mv.run_id,
        aliases=tuple(sorted(mv.aliases or ())),
        created_ms=int(mv.creation_timestamp or 0),
    )


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


def runs(settings: Settings, run_name: str, status: str | None = None, max_results: int = 1000) -> list[Any]:
    """The project's runs with this name (and status, when given), newest first."""
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


# from this many rows, in-process scoring goes through kobe_pyfunc on every core (LightGBM's
# training n_jobs=1 would leave one idle): 1M rows 0.47-0.64 s instead of 0.92-1.03 s here
PARALLEL_ROWS = 100_000


def predict_proba(model: Any, df: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """P(made) for each row of `df` (the model's positive-class column).

    Large frames are scored by `kobe_pyfunc.ServedModel` with all cores, after checking it
    against the pipeline on the first rows; anything it does not handle uses the pipeline.
    """
    x = feature_frame(df, features)
    if len(x) >= PARALLEL_ROWS:
        served = kobe_pyfunc.ServedModel(model, threads=os.cpu_count() or 1)
        if served.fast is not None and served.verify(x.head(5).to_numpy(dtype=np.float64)):
            return np.asarray(served.predict_proba(x))[:, 1]
    return np.asarray(model.predict_proba(x))[:, 1]


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
