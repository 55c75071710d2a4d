"""Logged models: the model's input frame (`feature_frame`), logging a scikit-learn pipeline to
MLflow in the safe (skops) format with its signature and requirements (`log_model`), and scoring
in-process (`predict_proba`).
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from core.data.columns import feature_frame
from core.errors import TrackingError
from core.modeling import pyfunc_model


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
    """`mlflow.sklearn.save_model`, then make `pyfunc_model` (shipped in `code/`) the pyfunc loader."""
    mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
    mlflow_model.flavors["python_function"]["loader_module"] = pyfunc_model.__name__.rsplit(".", 1)[-1]
    mlflow_model.save(os.path.join(path, "MLmodel"))


# `Model.log` takes a "flavor" module with save_model; this one is mlflow.sklearn's plus our loader
SERVED_SKLEARN = SimpleNamespace(__name__="mlflow.sklearn", save_model=_save_served_sklearn)


def log_model(model: Any, features: tuple[str, ...], example: pd.DataFrame, name: str = "model",
              rules: Any = None, categorical: tuple[str, ...] = ()) -> Any:
    """Log a scikit-learn model that returns the class probabilities when served (predict_proba).

    The signature declares the features as doubles; the model is stored in MLflow's safe
    (skops) format with the types it needs trusted (`trusted_types`: only scikit-learn,
    LightGBM and numpy types), and its requirements pinned (`model_requirements`). It loads
    with `mlflow.sklearn.load_model` as any scikit-learn model; as a pyfunc (the model server,
    Spark) it loads through `core/modeling/pyfunc_model.py`, copied into the model, which computes the
    same probabilities without scikit-learn's per-call input checks.

    `rules` (the dataset's `core.data.rules.RuleTable`) travels with the model as
    `code/input_rules.json` beside a copy of `core/data/rules.py`: the served model then refuses
    rows outside the definition's domain (HTTP 400 naming each problem), whoever sends them.
    """
    import tempfile

    from mlflow.models import infer_signature

    from core.data import rules as rules_module

    x = feature_frame(example, features, categorical).head(5)
    if categorical:  # the example must not hold NaN in a string column (the signature says string)
        x = x.assign(**{c: x[c].fillna(x[c].dropna().iloc[0] if x[c].notna().any() else "")
                        for c in categorical})
    proba = np.asarray(model.predict_proba(x))
    # categorical features are declared as strings; `allow_unseen` is a request parameter
    # (`{"params": {"allow_unseen": true}}`) that scores categories never seen in training
    signature = infer_signature(x, proba, params={pyfunc_model.ALLOW_UNSEEN: False} if categorical else None)
    with tempfile.TemporaryDirectory() as tmp:
        code = [pyfunc_model.__file__]
        if rules is not None:
            table = os.path.join(tmp, pyfunc_model.RULES_FILE)
            with open(table, "w") as fh:
                json.dump(rules.to_dict(), fh)
            code += [table, rules_module.__file__]
        return _log(model, name, signature, x, code)


def _log(model: Any, name: str, signature: Any, example: pd.DataFrame, code_paths: list[str]) -> Any:
    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=SERVED_SKLEARN,
        sk_model=model,
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=model_requirements(model),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted_types(model),
        code_paths=code_paths,
    )


# from this many rows, in-process scoring goes through pyfunc_model on every core (LightGBM's
# training n_jobs=1 would leave one idle): 1M rows 0.47-0.64 s instead of 0.92-1.03 s here
PARALLEL_ROWS = 100_000


def predict_proba(model: Any, df: pd.DataFrame, features: tuple[str, ...],
                  categorical: tuple[str, ...] = ()) -> np.ndarray:
    """The positive class's probability for each row of `df`.

    Large frames are scored by `pyfunc_model.ServedModel` with all cores, after checking it
    against the pipeline on the first rows; anything it does not handle uses the pipeline.
    """
    x = feature_frame(df, features, categorical)
    if categorical:
        return np.asarray(model.predict_proba(x))[:, 1]
    if len(x) >= PARALLEL_ROWS:
        served = pyfunc_model.ServedModel(model, threads=os.cpu_count() or 1)
        if served.fast is not None and served.verify(x.head(5).to_numpy(dtype=np.float64)):
            return np.asarray(served.predict_proba(x))[:, 1]
    return np.asarray(model.predict_proba(x))[:, 1]
