"""Logged models: the model's input frame (`feature_frame`), logging a scikit-learn pipeline to
MLflow in the safe (skops) format with its signature and requirements (`log_model`), and scoring
in-process (`predict_proba`).
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from core.data.columns import feature_frame
from core.errors import TrackingError

# MLflow (2-4 s to import) and `pyfunc_model` (which imports it) are imported by the functions that
# log models, not here: `predict_proba` serves the drift check, which does not need them


# Types a model of ours may hold beyond skops' default trusted list (trees, LightGBM boosters).
TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "lightgbm.", "numpy.", "collections.OrderedDict")


def model_requirements(model: Any) -> list[str]:
    """Pinned requirements of a served model (given explicitly: MLflow's inference takes 6-8 s)."""
    from importlib.metadata import version

    names = ["mlflow", "scikit-learn", "numpy", "scipy", "pandas", "skops"]
    inner = getattr(model, "estimator", None) if hasattr(model, "calibrated_classifiers_") else None
    steps = getattr(inner or model, "steps", [(None, inner or model)])  # a calibrated model: its pipeline
    if any(type(step).__module__.startswith("lightgbm") for _, step in steps):
        names.append("lightgbm")
    try:  # the served explanations' TreeSHAP (`explanations.py`, shipped in the model's code/)
        version("shap")
        names.append("shap")
    except ImportError:  # PackageNotFoundError: the model explains linear and LightGBM models without it
        pass
    return [f"{n}=={version(n)}" for n in names]


def trusted_types(model: Any) -> list[str]:
    """The skops types of a model outside skops' default list; each must start with TRUSTED_PREFIXES."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    odd = [t for t in found if not t.startswith(TRUSTED_PREFIXES)]
    if odd:
        raise TrackingError(f"The model holds types that cannot be stored safely: {', '.join(odd)}.")
    return list(found)


def _save_served_sklearn(path: str, mlflow_model: Any, onnx_model: bytes | None = None,
                         fast: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """`mlflow.sklearn.save_model`, then make `pyfunc_model` (shipped in `code/`) the pyfunc
    loader, with the pipeline's ONNX export beside the skops file when it has one; `fast` is the
    fast path's verdict (`fast_check.check`), said in the MLmodel (`fast_path`) too."""
    import mlflow.sklearn

    from core.modeling import pyfunc_model

    mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
    if onnx_model is not None:
        with open(os.path.join(path, pyfunc_model.ONNX_FILE), "wb") as fh:
            fh.write(onnx_model)
    conf = mlflow_model.flavors["python_function"]
    conf["loader_module"] = pyfunc_model.__name__.rsplit(".", 1)[-1]
    conf["engine"] = "onnxruntime" if onnx_model is not None else (fast or {}).get("engine", "scikit-learn")
    if fast is not None:
        conf["fast_path"] = fast
    mlflow_model.save(os.path.join(path, "MLmodel"))


# `Model.log` takes a "flavor" module with save_model; this one is mlflow.sklearn's plus our loader
SERVED_SKLEARN = SimpleNamespace(__name__="mlflow.sklearn", save_model=_save_served_sklearn)


def input_schema(features: tuple[str, ...], rules: Any = None, categorical: tuple[str, ...] = ()) -> Any:
    """The model's input columns as MLflow declares them: text for a category, `long` for a
    whole-number feature that may not be missing (so int64 data, e.g. a CSV of whole numbers,
    passes MLflow's schema check; JSON numbers are cast to it), `double` for the others.

    Every column is declared optional (`required=False`) although the model needs all of them:
    the served model refuses a missing column itself, naming it; MLflow's own refusal quotes
    the whole request (a 10 MB CSV gave a 31.5 MB error body)."""
    from mlflow.types.schema import ColSpec, Schema

    by_name = rules.by_name if rules is not None else {}
    cats = set(categorical)

    def kind(name: str) -> str:
        rule = by_name.get(name)
        if name in cats or (rule is not None and rule.categorical):
            return "string"
        if rule is not None and not rule.nullable and (rule.integer or _whole(rule.values)):
            return "long"
        return "double"
    return Schema([ColSpec(kind(f), f, required=False) for f in features])


def _whole(values: tuple[Any, ...]) -> bool:
    return bool(values) and all(float(v).is_integer() for v in values)


def task_file(task: dict[str, Any] | None) -> dict[str, Any] | None:
    """The task dict `log_model` writes as `code/task.json`, checked (None for binary, which
    writes none: a model without the file is binary). `task`: None or {"task": "binary"};
    {"task": "multiclass", "classes": [names in label order]}; {"task": "regression",
    "interval": {"level": 0.9, "halfwidth": q, ...}}. ValueError for anything else."""
    if task is None or task.get("task") in (None, "binary"):
        return None
    kind = task.get("task")
    if kind == "multiclass":
        classes = task.get("classes")
        if not isinstance(classes, (list, tuple)) or len(classes) < 2:
            raise ValueError(f"A multiclass task names its classes in label order (2 or more), not {classes!r}.")
        return {**task, "classes": [str(c) for c in classes]}
    if kind == "regression":
        interval = task.get("interval")
        ok = isinstance(interval, dict) and all(isinstance(interval.get(k), (int, float, np.number))
                                                and not isinstance(interval.get(k), bool) for k in ("level", "halfwidth"))
        if not ok or not 0 < interval["level"] < 1 or not np.isfinite(interval["halfwidth"]) or interval["halfwidth"] < 0:
            raise ValueError(f"A regression task gives its interval as {{'level': 0.9, 'halfwidth': q}} (level "
                             f"strictly between 0 and 1, halfwidth a number >= 0), not {interval!r}.")
        return {**task, "interval": {k: float(v) if isinstance(v, (int, float, np.number)) else v
                                     for k, v in interval.items()}}
    raise ValueError(f"Unknown task {kind!r}: binary, multiclass or regression.")


def log_model(model: Any, features: tuple[str, ...], example: pd.DataFrame, name: str = "model",
              rules: Any = None, categorical: tuple[str, ...] = (), task: dict[str, Any] | None = None) -> Any:
    """Log a scikit-learn model that returns, when served, the answer of its task kind: a
    classifier its class probabilities (predict_proba: binary both classes, multiclass one
    column per class in label order), a regressor (prediction, lower, upper) per row (predict,
    plus and minus the interval's halfwidth).

    `task` (`task_file`: None for binary) is written as `code/task.json` (`pyfunc_model.TASK_FILE`),
    which the served model reads at load.

    The signature is `input_schema`'s; the model is stored in MLflow's safe (skops) format with
    the types it needs trusted (`trusted_types`: only scikit-learn, LightGBM and numpy types),
    and its requirements pinned (`model_requirements`). It loads with `mlflow.sklearn.load_model`
    as any scikit-learn model; as a pyfunc (the model server, Spark) it loads through
    `core/modeling/pyfunc_model.py`, copied into the model with `category_codes.py` (the
    pipeline's category codes from a lookup built once at load), which checks the input and
    scores it with the pipeline, or with its ONNX export (`onnx_export.export`, checked against the
    pipeline on up to 2,000 of `example`'s rows) where ONNX Runtime gives the same answers, or
    else with its fast path (`fast_scoring.py`, shipped too) where `fast_check.check` found it
    equal to the pipeline within 1e-9 (`code/fast_path.json` and the MLmodel's `fast_path` say
    so, or why not).

    `rules` (the dataset's `core.rules.RuleTable`) travels with the model as
    `code/input_rules.json` beside a copy of `core/rules.py`: the served model then refuses
    rows outside the definition's domain (HTTP 400 naming each problem), whoever sends them.
    """
    import tempfile


    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from core import rules as rules_module
    from core.modeling import fast_check, onnx_export, pyfunc_model

    task = task_file(task)
    regression = pyfunc_model.task_name(task) == "regression"
    frame = feature_frame(example, features, categorical)
    x = frame.head(5)
    if categorical:  # the example must not hold NaN in a string column (the signature says string)
        x = x.assign(**{c: x[c].fillna(x[c].dropna().iloc[0] if x[c].notna().any() else "")
                        for c in categorical})
    schema = input_schema(features, rules, categorical)
    whole = [c.name for c in schema.inputs if c.type.name == "long"]
    x = x.astype({c: "int64" for c in whole}) if whole and x[whole].notna().all().all() else x
    raw = model.predict(x) if regression else model.predict_proba(x)
    answer = pyfunc_model.task_answer(task, raw, getattr(model, "classes_", None))
    # `allow_unseen` is a request parameter (`{"params": {"allow_unseen": true}}`) that scores
    # categories never seen in training
    # `explain` too (`{"params": {"explain": true}}`): each row's answer with its explanation
    params = ParamSchema([*([ParamSpec(pyfunc_model.ALLOW_UNSEEN, "boolean", False)] if categorical else []),
                          ParamSpec(pyfunc_model.EXPLAIN, "boolean", False)])
    signature = ModelSignature(inputs=schema, outputs=infer_signature(x, answer).outputs, params=params)
    onnx_model = None
    if not categorical and rules is not None:
        sample = frame.dropna()
        onnx_model = onnx_export.export(model, sample.sample(min(len(sample), 2000), random_state=0)
                                        if len(sample) else sample, task)
    # the fast path (issue 33) where ONNX Runtime does not serve, kept only when it gives the
    # pipeline's answers on the example's and random valid rows
    fast = None if onnx_model is not None else fast_check.check(model, frame, rules, regression)
    with tempfile.TemporaryDirectory() as tmp:
        here = os.path.dirname(pyfunc_model.__file__)
        code = [pyfunc_model.__file__, os.path.join(here, pyfunc_model.CODES_FILE),
                os.path.join(here, pyfunc_model.FAST_FILE)]
        if fast is not None:
            note = os.path.join(tmp, pyfunc_model.FAST_NOTE)
            with open(note, "w") as fh:
                json.dump(fast, fh)
            code.append(note)
        if rules is not None:
            table = os.path.join(tmp, pyfunc_model.RULES_FILE)
            with open(table, "w") as fh:
                json.dump(rules.to_dict(), fh)
            code += [table, rules_module.__file__]
        code += explainer_files(model, frame, features, task, tmp)
        if task is not None:
            told = os.path.join(tmp, pyfunc_model.TASK_FILE)
            with open(told, "w") as fh:
                json.dump(task, fh)
            code.append(told)
        return _log(model, name, signature, x, code, onnx_model, "predict" if regression else "predict_proba", fast)


def explainer_files(model: Any, frame: pd.DataFrame, features: tuple[str, ...], task: dict[str, Any] | None,
                    folder: str) -> list[str]:
    """The files that let the served model explain its answers: `core/modeling/explanations.py`
    and its background (`explainer.json`: the estimator's matrix of up to BACKGROUND_ROWS of the
    training rows `frame`, with the features and class names), written in `folder`."""
    from core.modeling import explanations, pyfunc_model

    classes = None
    if pyfunc_model.task_name(task) == "multiclass":
        names = list((task or {}).get("classes") or [])
        labels = list(getattr(model, "classes_", range(len(names))))
        classes = [names[int(c)] if names and str(c).lstrip("-").isdigit() and 0 <= int(c) < len(names) else str(c)
                   for c in labels]
    background = explanations.background_matrix(model, frame.loc[:, list(features)])
    stored = os.path.join(folder, pyfunc_model.BACKGROUND_FILE)
    with open(stored, "w") as fh:
        json.dump({"features": list(features), "classes": classes, "background": background.tolist()}, fh)
    return [explanations.__file__, stored]


def _log(model: Any, name: str, signature: Any, example: pd.DataFrame, code_paths: list[str],
         onnx_model: bytes | None = None, predict_fn: str = "predict_proba", fast: dict[str, Any] | None = None) -> Any:
    import mlflow.sklearn
    from mlflow.models import Model

    requirements = model_requirements(model)
    if onnx_model is not None:
        from importlib.metadata import version

        requirements.append(f"onnxruntime=={version('onnxruntime')}")
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=SERVED_SKLEARN,
        sk_model=model,
        signature=signature,
        input_example=example,
        pyfunc_predict_fn=predict_fn,
        pip_requirements=requirements,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted_types(model),
        code_paths=code_paths,
        onnx_model=onnx_model,
        fast=fast,
    )


# from this many rows, in-process scoring asks LightGBM for every core (the model's own n_jobs,
# often 1 from training, would leave the others idle)
PARALLEL_ROWS = 100_000


def predict_proba(model: Any, df: pd.DataFrame, features: tuple[str, ...],
                  categorical: tuple[str, ...] = ()) -> np.ndarray:
    """The positive class's probability for each row of `df`: the pipeline's `predict_proba`
    (LightGBM on every core from PARALLEL_ROWS rows: `num_threads` is a prediction parameter,
    the model is not changed)."""
    x = feature_frame(df, features, categorical)
    return np.asarray(model.predict_proba(x, **_prediction_params(model, len(x))))[:, 1]


def version_task(task: str, classes: tuple[str, ...] = (), interval: dict[str, float] | None = None
                 ) -> dict[str, Any] | None:
    """The task dict of a registered version (its `task`, `classes` and `interval`, as
    `core.modeling.model_version.ModelVersion` holds them), as `log_model` takes it: None for
    binary. A regression version without a halfwidth in its interval gets NaN for it (its
    bounds are then unknown, never a zero-width interval)."""
    if task == "multiclass":
        return {"task": "multiclass", "classes": list(classes)}
    if task == "regression":
        got = dict(interval or {})
        return {"task": "regression", "interval": {"level": float(got.get("level", float("nan"))),
                                                    "halfwidth": float(got.get("halfwidth", float("nan")))}}
    return None


def answers(model: Any, df: pd.DataFrame, features: tuple[str, ...], categorical: tuple[str, ...] = (),
            task: dict[str, Any] | None = None) -> np.ndarray:
    """What the served model answers for each row of `df`, computed in-process with the
    pipeline (`pyfunc_model.task_answer`): binary both classes' probabilities, multiclass the k
    class probabilities, regression (prediction, lower, upper); `task` as `version_task` gives it."""
    from core.modeling.pyfunc_model import task_answer, task_name

    x = feature_frame(df, features, categorical)
    params = _prediction_params(model, len(x))
    raw = model.predict(x, **params) if task_name(task) == "regression" else model.predict_proba(x, **params)
    return task_answer(task, raw, getattr(model, "classes_", None))


def _prediction_params(model: Any, rows: int) -> dict[str, Any]:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if rows >= PARALLEL_ROWS and type(final).__module__.startswith("lightgbm."):
        return {"num_threads": os.cpu_count() or 1}
    return {}
