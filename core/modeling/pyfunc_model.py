"""How a logged workbench model scores when MLflow loads it as a pyfunc (`mlflow models serve`,
`mlflow.pyfunc.spark_udf`): the pipeline's `predict_proba`, computed with plain numpy.

`core.modeling.model_io.log_model` copies this file into each model it logs (`code/pyfunc_model.py`;
models logged before the layout change carry the same code as `code/kobe_pyfunc.py`) and names
it as the model's pyfunc `loader_module`, so it imports nothing from the workbench. The model
itself stays a scikit-learn pipeline in MLflow's skops format (`mlflow.sklearn.load_model`
reads it as before); only the pyfunc path changes.

Why: on one row, scikit-learn's and LightGBM's input checks cost far more than the arithmetic
(about 1.3 ms of a 1.4 ms `predict_proba` on a pandas row for scaler + LightGBM here). For
steps this module knows (StandardScaler, MinMaxScaler, SimpleImputer on NaN; a binary
LogisticRegression, LGBMClassifier or DecisionTreeClassifier, or any final estimator after a
known transformer), the same arithmetic runs on a float64 array. Anything else, non-finite
input, or columns other than the training ones (in their order) go through the pipeline itself, so errors read
as before. The fast path must give the pipeline's answer: at load it is compared with
`predict_proba` on the model's input example (and a perturbed copy) and dropped if it differs
by more than 1e-12.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]
TOLERANCE = 1e-12
RULES_FILE = "input_rules.json"  # the dataset's input rule table, in the model's code/ folder
ALLOW_UNSEEN = "allow_unseen"  # request parameter: score categories never seen in training anyway


def _load_pyfunc(path: str, model_config: Any = None) -> "ServedModel":
    """MLflow's pyfunc entry point: `path` is the model's skops file (or its folder)."""
    from mlflow.sklearn import _load_pyfunc as load_sklearn

    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    model = ServedModel(load_sklearn(path).sklearn_model, rules=_load_rules(model_dir))
    model.verify(_example_rows(model_dir, model.features))
    return model


def _load_rules(model_dir: str) -> Any:
    """The input rule table shipped with the model (`code/input_rules.json` and `code/rules.py`),
    or None for a model logged without one (it scores as before)."""
    import importlib.util

    code = os.path.join(model_dir, "code")
    table, module_file = os.path.join(code, RULES_FILE), os.path.join(code, "rules.py")
    if not (os.path.exists(table) and os.path.exists(module_file)):
        return None
    import sys

    name = "workbench_input_rules"
    spec = importlib.util.spec_from_file_location(name, module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    with open(table) as fh:
        return module.RuleTable.from_dict(json.load(fh))


class InvalidInput(ValueError):
    """A request breaks the dataset's input rules (served as HTTP 400 with the problems)."""


def _refuse(problems: list[str]) -> Exception:
    """An MLflow error the scoring server answers with HTTP 400 and this message."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
    except ImportError:  # pragma: no cover - MLflow is always there when a model is served
        return InvalidInput("; ".join(problems))
    return MlflowException("Invalid input: " + "; ".join(problems) + ".", error_code=INVALID_PARAMETER_VALUE)


def _example_rows(model_dir: str, features: list[str]) -> np.ndarray | None:
    """The input example saved with the model, as a float array in training column order."""
    try:
        with open(os.path.join(model_dir, "serving_input_example.json")) as f:
            split = json.load(f)["dataframe_split"]
        cols = list(split["columns"])
        rows = np.asarray(split["data"], dtype=np.float64)
        return rows[:, [cols.index(c) for c in features]] if features else rows
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _plain_output(step: Any) -> bool:
    """True when `step` returns numpy arrays (no `set_output(transform="pandas")`)."""
    config = getattr(step, "_sklearn_output_config", None) or {}
    return config.get("transform", "default") == "default"


def _transform(step: Any) -> Transform | None:
    """`step.transform` as numpy arithmetic, for the transformers known here; else None."""
    kind = type(step).__name__
    if not type(step).__module__.startswith("sklearn.") or not _plain_output(step):
        return None
    if kind == "StandardScaler":
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standard(x: np.ndarray) -> np.ndarray:
            # scikit-learn's own order: subtract, then divide in place (one new array, not two)
            out = x - mean if mean is not None else np.array(x, dtype=np.float64)
            if scale is not None:
                out /= scale
            return out
        return standard
    if kind == "MinMaxScaler":
        low, high = step.feature_range
        factor, offset, clip = step.scale_, step.min_, bool(step.clip)

        def minmax(x: np.ndarray) -> np.ndarray:
            x = x * factor
            x += offset
            return np.clip(x, low, high) if clip else x
        return minmax
    if kind == "SimpleImputer":
        # the fast path only sees finite rows, which an imputer on NaN leaves as they are
        missing = step.missing_values
        stats = np.asarray(getattr(step, "statistics_", []), dtype=object)
        if (isinstance(missing, float) and np.isnan(missing) and not step.add_indicator
                and not any(isinstance(s, float) and np.isnan(s) for s in stats)):
            return lambda x: x
    return None


def _final(est: Any, after_transform: bool, threads: int | None = None) -> Transform | None:
    """`est.predict_proba` (both columns) on a float64 array; else None. `threads` overrides
    LightGBM's thread count (the answer does not depend on it)."""
    kind = type(est).__name__
    classes = getattr(est, "classes_", None)
    if classes is None or len(classes) != 2:
        return None
    if kind == "LogisticRegression" and est.coef_.shape[0] == 1:
        if est.multi_class not in ("auto", "ovr", "warn"):
            return None
        from scipy.special import expit

        coef_t, intercept = est.coef_.T, est.intercept_

        def logistic(x: np.ndarray) -> np.ndarray:
            p = expit((x @ coef_t + intercept).ravel())
            return np.vstack([1 - p, p]).T
        return logistic
    if kind == "LGBMClassifier" and getattr(est, "objective_", None) == "binary":
        booster = est.booster_
        n_jobs = est.get_params().get("n_jobs")
        if threads is None:
            threads = 0 if n_jobs is None else (n_jobs if n_jobs > 0 else max((os.cpu_count() or 1) + 1 + n_jobs, 1))

        def lightgbm(x: np.ndarray) -> np.ndarray:
            p = booster.predict(x, num_threads=threads)
            return np.vstack((1.0 - p, p)).transpose()
        return lightgbm
    if kind == "DecisionTreeClassifier" and type(est).__module__.startswith("sklearn."):
        return lambda x: est.predict_proba(np.ascontiguousarray(x, dtype=np.float32), check_input=False)
    if after_transform and hasattr(est, "predict_proba"):
        # fitted on a transformer's numpy output: exactly what the pipeline hands it
        return est.predict_proba
    return None


def compile_proba(model: Any, threads: int | None = None) -> Transform | None:
    """A numpy function equal to `model.predict_proba` on finite float rows, or None."""
    steps = list(model.steps) if hasattr(model, "steps") else [("model", model)]
    transforms: list[Transform] = []
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        fn = _transform(step)
        if fn is None:
            return None
        transforms.append(fn)
    final = _final(steps[-1][1], after_transform=bool(transforms), threads=threads)
    if final is None:
        return None

    def proba(x: np.ndarray) -> np.ndarray:
        for fn in transforms:
            x = fn(x)
        return final(x)
    return proba


def _missing_as_nan(data: Any) -> Any:
    """Text columns with None (what a JSON null becomes) as NaN, the missing value the pipeline's
    category coder knows; anything else unchanged."""
    if not hasattr(data, "columns"):
        return data
    text = [c for c in data.columns if data[c].dtype == object and data[c].isna().any()]
    if not text:
        return data
    return data.assign(**{c: data[c].where(data[c].notna(), np.nan) for c in text})


class ServedModel:
    """The pyfunc wrapper MLflow serves: `predict_proba` on a DataFrame, fast when it can be."""

    def __init__(self, sklearn_model: Any, threads: int | None = None, rules: Any = None) -> None:
        self.sklearn_model = sklearn_model
        self.features = [str(c) for c in getattr(sklearn_model, "feature_names_in_", [])]
        self.fast = compile_proba(sklearn_model, threads) if self.features else None
        self.rules = rules
        # the rules' columns, and whether they are the model's own order (then checked rows go
        # straight to the fast path): decided once, not per request
        self.rule_names = list(rules.names) if rules is not None else []
        self._checked_is_input = self.rule_names == self.features

    def check(self, data: Any, allow_unseen: bool = False) -> np.ndarray | None:
        """Refuse (HTTP 400 when served) input that breaks the dataset's rules: missing columns,
        text that is not a number, nulls, infinities, values outside a feature's domain, and
        (unless `allow_unseen`) categories never seen in training.
        Returns the checked rows as a float matrix in the rules' column order (None without rules,
        or when some feature is categorical: those rows go to the pipeline as a frame)."""
        if self.rules is None or not hasattr(data, "columns"):
            return None
        names = self.rule_names
        if list(data.columns) != names:
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise _refuse([f"missing column(s): {', '.join(missing)}"])
            data = data.loc[:, names]
        if getattr(self.rules, "has_categories", False):
            problems = self.rules.plain_problems(data, allow_unseen)
            if problems:
                raise _refuse(problems)
            return None
        try:
            x = data.to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise _refuse(["every feature must be a number"]) from None
        if not self.rules.all_valid(x):
            raise _refuse(self.rules.array_problems(x))
        return x

    def get_raw_model(self) -> Any:
        return self.sklearn_model

    def verify(self, rows: np.ndarray | None) -> bool:
        """Keep the fast path only if it matches the pipeline on `rows` and a perturbed copy."""
        if self.fast is None or rows is None or rows.size == 0:
            self.fast = None
            return False
        import pandas as pd

        x = np.vstack([rows, rows * 1.01 + 0.5])
        try:
            want = self.sklearn_model.predict_proba(pd.DataFrame(x, columns=self.features))
            got = self.fast(x.copy())
            ok = np.shape(got) == np.shape(want) and bool(np.allclose(got, want, rtol=0, atol=TOLERANCE))
        except Exception:  # noqa: BLE001 - any failure means: use the pipeline
            ok = False
        if not ok:
            self.fast = None
        return ok

    def _rows(self, data: Any) -> np.ndarray | None:
        """`data` as finite float64 rows in training order, or None to use the pipeline."""
        if self.fast is None or not hasattr(data, "columns") or list(data.columns) != self.features:
            return None
        try:
            x = data.to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            return None
        return x if x.ndim == 2 and x.shape[0] > 0 and np.isfinite(x).all() else None

    def predict_proba(self, data: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        checked = self.check(data, allow_unseen=bool((params or {}).get(ALLOW_UNSEEN, False)))
        if checked is not None and self.fast is not None and self._checked_is_input:
            return self.fast(checked)  # valid rows are finite: the fast path takes them as they are
        x = self._rows(data)
        if x is None:
            return self.sklearn_model.predict_proba(_missing_as_nan(data))
        return self.fast(x)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        self.check(data, allow_unseen=bool((params or {}).get(ALLOW_UNSEEN, False)))
        return self.sklearn_model.predict(data)
