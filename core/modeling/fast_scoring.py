"""The served model's fast path for every family (issue 33): the pipeline's preprocessing from
tables and numpy, then the fitted estimator's OWN method on the resulting matrix.

Where a served request's time went (bench/serve_profile.py, bench/RESULTS.md): not in the
models (a decision tree, LightGBM's boosted trees or a logistic regression score one row in tens
of microseconds), but in the scikit-learn steps around them on a pandas frame: the
`ColumnTransformer` splitting and re-joining columns, the category coder, the one-hot and target
encoders and the scalers each validating their input again. So the estimator itself is kept (no
conversion: its answers are its own, for every family the workbench trains, binary, multiclass
or regression), and only what comes before it is computed here:

- numbers: the fitted imputer's fill values and the scaler's `mean_` and `scale_`, the same
  float64 operations in the same order as `SimpleImputer.transform` and `StandardScaler.transform`
  (`X[missing] = statistics_`, `X -= mean_`, `X /= scale_`), hence the same bits;
- categories: each feature's category -> row of a table made once, at load, by running the
  fitted encoding steps after the category coder (one-hot, target encoding, scaling) on every
  code the coder can give (each known category, unseen, missing): a request then costs a dict
  look-up per value (a pandas index for many rows) and a `take`, whatever the encoders are;
- a calibrated model (`CalibratedClassifierCV`): its fitted calibrators' own `predict` on the
  pipeline's response, combined as scikit-learn combines them (`_Calibrated`), without the
  per-call set-up.

Hand-written because no kept library runs a scikit-learn preprocessing pipeline without its
per-call checks; what it computes is checked, when the model is logged, against the pipeline on
the example rows and on random valid rows (`core/modeling/fast_check.py`): the path is used
only when every answer equals the pipeline's within 1e-9; otherwise the model says why in its
metadata and serves through the pipeline. Anything this module does not know raises
`Unsupported` (the pipeline serves).

Like `pyfunc_model.py`, this file is copied into every model logged (`code/fast_scoring.py`) and
imports nothing from the workbench.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

SMALL = 64  # up to this many rows, category look-ups by dict; above, by a pandas index


class Unsupported(ValueError):
    """A pipeline step the fast path does not compute (the pipeline then serves)."""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _missing_or_unseen(value: Any, k: int) -> int:
    """The table row of a value that is not text: missing (k + 1) for None, NaN and pd.NA, else unseen (k)."""
    import pandas as pd

    return k + 1 if value is None or value is pd.NA or (isinstance(value, float) and value != value) else k


class _Numbers:
    """Numeric columns through an optional fitted `SimpleImputer` and an optional `StandardScaler`."""

    def __init__(self, names: list[str], steps: list[Any]) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        self.names, self.fill, self.mean, self.scale = names, None, None, None
        kinds = [type(s) for s in steps]
        if kinds not in ([StandardScaler], [SimpleImputer, StandardScaler], [SimpleImputer]):
            raise Unsupported(f"numeric steps {[k.__name__ for k in kinds]}")
        for step in steps:
            if isinstance(step, SimpleImputer):
                stats = np.asarray(step.statistics_, dtype=np.float64)
                if (step.add_indicator or not _is_nan(step.missing_values) or stats.shape != (len(names),)
                        or not np.isfinite(stats).all()):
                    raise Unsupported("an imputer with indicators, other missing values or dropped columns")
                self.fill = stats
            else:
                self.mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
                self.scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
        self.width = len(names)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """`x` (rows x these columns, float64, a copy of the input) transformed in place."""
        if self.fill is not None:
            missing = np.isnan(x)
            if missing.any():
                x[missing] = np.broadcast_to(self.fill, x.shape)[missing]
        if self.mean is not None:
            x -= self.mean
        if self.scale is not None:
            x /= self.scale
        return x


class _Categories:
    """Category columns through a fitted category coder (`OrdinalEncoder`) and the encoding steps
    after it, as one table per feature (see the module docstring)."""

    def __init__(self, names: list[str], steps: list[Any]) -> None:
        import pandas as pd
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

        coder, rest = steps[0], steps[1:]
        if type(coder) is not OrdinalEncoder or not rest or not all(any(_is_nan(v) for v in c) for c in coder.categories_):
            raise Unsupported("category steps that do not start with a category coder")
        if coder.handle_unknown != "use_encoded_value" or getattr(coder, "_infrequent_enabled", False):
            raise Unsupported("a category coder without codes for unseen categories")
        first = rest[0]
        if type(first) is OneHotEncoder and not first.sparse_output:
            widths = list(first._n_features_outs)
        elif type(first) is TargetEncoder:
            widths = [len(first.classes_) if first.target_type_ == "multiclass" else 1] * len(names)
        else:
            raise Unsupported(f"category encoding {type(first).__name__}")
        if any(type(s) is not StandardScaler for s in rest[1:]):
            raise Unsupported("steps after the category encoder other than scaling")
        self.names = names
        self.lookups: list[dict[str, int]] = []
        self.indexes: list[Any] = []
        self.sizes: list[int] = []
        probe_columns = []
        for cats in coder.categories_:
            known = [v for v in cats if not _is_nan(v)]
            if not all(type(v) is str for v in known) or len(set(known)) != len(known):
                raise Unsupported("categories that are not unique text")
            self.lookups.append({v: i for i, v in enumerate(known)})
            index = pd.Index(known, dtype=object)
            index.get_indexer(index[:1])  # its hash table now, not on the first large request
            self.indexes.append(index)
            self.sizes.append(len(known))
            # the codes the coder gives: each known category its position in `categories_`; unseen; missing
            probe_columns.append([*[i for i, v in enumerate(cats) if not _is_nan(v)],
                                  int(coder.unknown_value), int(coder.encoded_missing_value)])
        rows = max(len(c) for c in probe_columns)
        probe = np.array([c + [c[0]] * (rows - len(c)) for c in probe_columns], dtype=coder.dtype).T
        out = np.asarray(Pipeline([(f"s{i}", s) for i, s in enumerate(rest)]).transform(probe), dtype=np.float64)
        if out.ndim != 2 or out.shape[1] != sum(widths):
            raise Unsupported("an encoding whose width is not one block per feature")
        starts = np.cumsum([0, *widths])
        # per feature: rows 0..k-1 its categories, k unseen, k+1 missing
        self.tables = [np.ascontiguousarray(out[:self.sizes[j] + 2, starts[j]:starts[j + 1]])
                       for j in range(len(names))]
        self.width = int(sum(widths))

    def rows_of(self, j: int, values: np.ndarray) -> np.ndarray:
        """The table rows of feature `j`'s values: a category its position, anything else
        (another text, a number) unseen, a missing value (None, NaN, pd.NA: the served model
        passes each as NaN) missing."""
        import pandas as pd

        k = self.sizes[j]
        if len(values) <= SMALL:
            lookup = self.lookups[j]
            return np.fromiter((lookup.get(v, k) if isinstance(v, str) else _missing_or_unseen(v, k)
                                for v in values), dtype=np.intp, count=len(values))
        found = self.indexes[j].get_indexer(pd.Index(values, dtype=object, copy=False))
        found[found < 0] = k
        found[pd.isna(values)] = k + 1
        return found

    def transform(self, columns: list[np.ndarray], out: np.ndarray, start: int) -> None:
        for j, values in enumerate(columns):
            table = self.tables[j]
            out[:, start:start + table.shape[1]] = table.take(self.rows_of(j, values), axis=0)
            start += table.shape[1]


class FastPipeline:
    """Stands in for a fitted scikit-learn `Pipeline` (preprocessing, then an estimator) where the
    served model scores: `predict_proba`, `predict`, and `decision_function` when the estimator
    has one, of rows given as a DataFrame with the model's feature names (or, for a pipeline of
    numbers only, a float matrix in the model's feature order)."""

    def __init__(self, pipeline: Any) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
            raise Unsupported("not a pipeline of preprocessing steps and an estimator")
        self.features = [str(c) for c in getattr(pipeline, "feature_names_in_", [])]
        if not self.features:
            raise Unsupported("a pipeline fitted without feature names")
        self.final = pipeline.steps[-1][1]
        if hasattr(self.final, "feature_names_in_"):
            raise Unsupported("an estimator fitted on named columns")
        pre = [s for _, s in pipeline.steps[:-1] if s not in (None, "passthrough")]
        self.parts: list[tuple[Any, list[int], int]] = []  # (block, input positions, first output column)
        position = {n: i for i, n in enumerate(self.features)}
        if len(pre) == 1 and type(pre[0]) is ColumnTransformer:
            ct = pre[0]
            if getattr(ct, "sparse_output_", False):
                raise Unsupported("a sparse column transformer")
            for name, trans, columns in ct.transformers_:
                if trans == "drop" or (name == "remainder" and len(columns) == 0):
                    continue
                names = list(ct.feature_names_in_[columns]) if not isinstance(columns, list) or (
                    columns and not isinstance(columns[0], str)) else list(columns)
                steps = list(getattr(trans, "steps", [(name, trans)]))
                steps = [s for _, s in steps if s not in (None, "passthrough")]
                if trans == "passthrough" or not steps:
                    raise Unsupported("a passthrough part")
                block = _Categories(names, steps) if type(steps[0]).__name__ == "OrdinalEncoder" \
                    else _Numbers(names, steps)
                where = ct.output_indices_[name]
                if where.stop - where.start != block.width:
                    raise Unsupported(f"part {name}: {block.width} columns, the transformer gives "
                                      f"{where.stop - where.start}")
                self.parts.append((block, [position[n] for n in names], where.start))
            self.width = int(max((s.stop for s in ct.output_indices_.values()), default=0))
        else:
            self.parts.append((_Numbers(list(self.features), pre), list(range(len(self.features))), 0))
            self.width = len(self.features)
        # numbers only: the stand-in takes a float matrix in the model's feature order
        self.numeric = self.takes_matrix = all(isinstance(b, _Numbers) for b, _, _ in self.parts)
        self.classes_ = getattr(pipeline, "classes_", None)
        self._lightgbm = _LightGBM.of(self.final)
        self._estimator_type = getattr(self.final, "_estimator_type", None)

    def transform(self, X: Any) -> np.ndarray:
        """The estimator's input matrix of the rows `X`."""
        n = X.shape[0]
        out = np.empty((n, self.width), dtype=np.float64)
        if not isinstance(X, np.ndarray) and n <= SMALL and list(X.columns) == self.features:
            # a request's few rows: one object matrix (pandas costs ~15 µs a column access)
            rows = X.to_numpy(dtype=object)
            for block, positions, start in self.parts:
                if isinstance(block, _Numbers):
                    try:
                        x = np.array(rows[:, positions], dtype=np.float64)
                    except (TypeError, ValueError):  # a None among numbers: pandas reads it as NaN
                        x = np.column_stack([X.iloc[:, p].to_numpy(dtype=np.float64, na_value=np.nan)
                                             for p in positions])
                    out[:, start:start + block.width] = block.transform(x)
                else:
                    block.transform([rows[:, p] for p in positions], out, start)
            return out
        matrix = isinstance(X, np.ndarray)
        for block, positions, start in self.parts:
            if isinstance(block, _Numbers):
                if matrix:
                    x = np.array(X[:, positions], dtype=np.float64)
                else:
                    x = np.empty((n, len(positions)), dtype=np.float64)
                    for i, p in enumerate(positions):
                        x[:, i] = X[self.features[p]].to_numpy(dtype=np.float64, na_value=np.nan)
                out[:, start:start + block.width] = block.transform(x)
            else:
                if matrix:
                    raise Unsupported("categories given as a float matrix")
                block.transform([X[self.features[p]].to_numpy() for p in positions], out, start)
        return out

    def _call(self, method: str, X: Any) -> np.ndarray:
        import sklearn

        z = self.transform(X)
        if self._lightgbm is not None and method in ("predict_proba", "predict", "decision_function"):
            return self._lightgbm.answer(method, z)
        # the matrix is finite (checked rows, then imputed and encoded): the estimator's own checks
        # of it are skipped (its answers do not depend on them)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return getattr(self.final, method)(z)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._call("predict_proba", X)

    def predict(self, X: Any) -> np.ndarray:
        return self._call("predict", X)

    @property
    def decision_function(self) -> Any:
        """The estimator's, when it has one (calibration asks for it first, as for the pipeline)."""
        if not hasattr(self.final, "decision_function"):
            raise AttributeError("decision_function")
        return lambda X: self._call("decision_function", X)


class _LightGBM:
    """A fitted LightGBM scikit-learn model's `predict_proba` / `predict` (a regressor's) as its
    own code computes them, through its booster, with the prediction parameters the wrapper
    would pass worked out once (the wrapper re-derives them and re-validates the matrix on every
    call: 0.4 ms of a 0.43 ms single row here), on one thread (the server's workers are
    processes; LightGBM's default, every core, cost up to 20 ms a row on a loaded machine, and a
    worker forked after the loading process had run LightGBM's threads hung on its first large
    request; the answers do not depend on the number of threads). Mirrors lightgbm 4.7's `LGBMModel.predict`, `LGBMClassifier.predict_proba` and
    `LGBMClassifier.decision_function` (the raw score, which calibration asks for first)."""

    def __init__(self, model: Any) -> None:
        from lightgbm.basic import _choose_param_value, _ConfigAliases

        params = model._process_params(stage="predict")
        for alias in _ConfigAliases.get_by_alias("data", "X", "raw_score", "start_iteration", "num_iteration",
                                                 "pred_leaf", "pred_contrib"):
            params.pop(alias, None)
        params = _choose_param_value("num_threads", params, model.n_jobs)
        self.params = {**params, "num_threads": 1}
        self.booster = model._Booster
        self.classes = getattr(model, "_n_classes", None) if hasattr(model, "predict_proba") else None

    @classmethod
    def of(cls, model: Any) -> "_LightGBM | None":
        """The stand-in for a LightGBM classifier or regressor with its own objective, else None."""
        if not type(model).__module__.startswith("lightgbm.") or type(model).__name__ not in (
                "LGBMClassifier", "LGBMRegressor") or callable(getattr(model, "_objective", None)):
            return None
        try:
            return cls(model)
        except (AttributeError, ImportError, TypeError):  # another LightGBM: its wrapper answers
            return None

    def answer(self, method: str, z: np.ndarray) -> np.ndarray:
        if method == "predict" and self.classes is not None:  # a classifier's labels: not served this way
            raise Unsupported("LightGBM class labels")
        result = self.booster.predict(z, raw_score=method == "decision_function", start_iteration=0, num_iteration=None,
                                      pred_leaf=False, pred_contrib=False, validate_features=False, **self.params)
        if method == "predict_proba" and self.classes is not None and self.classes <= 2:
            return np.vstack((1.0 - result, result)).transpose()
        return result


class _Calibrated:
    """Stands in for a fitted `CalibratedClassifierCV`: its `predict_proba` as scikit-learn 1.4
    computes it (`CalibratedClassifierCV.predict_proba`, `_CalibratedClassifier.predict_proba`,
    the response of `_get_response_values`), with each calibrated classifier's pipeline scored
    by a `FastPipeline` and its fitted calibrators' own `predict`. Hand-written for what
    scikit-learn redoes on every call (a `LabelEncoder` fitted on the classes, the response
    method looked up and the classes' type inferred: about 0.25 ms of a 0.35 ms row); the class
    positions are worked out once here instead."""

    def __init__(self, model: Any) -> None:
        from sklearn.preprocessing import LabelEncoder

        self.classes_ = model.classes_
        self.calibrated = []  # per calibrated classifier: its pipeline stand-in, response, class positions, calibrators
        for calibrated in model.calibrated_classifiers_:
            pipeline = calibrated.estimator
            inner = FastPipeline(pipeline)
            # scikit-learn asks for decision_function first, then predict_proba (as the pipeline offers them)
            method = "decision_function" if hasattr(pipeline, "decision_function") else "predict_proba"
            classes = np.asarray(pipeline.classes_)
            n_classes = len(calibrated.classes)
            if len(np.unique(classes)) != len(classes) or n_classes < 2:
                raise Unsupported("a calibrated classifier of fewer than two distinct classes")
            positions = LabelEncoder().fit(calibrated.classes).transform(classes)
            self.calibrated.append((inner, method, positions, list(calibrated.calibrators), n_classes, len(classes) == 2))
        self.takes_matrix = all(inner.numeric for inner, *_ in self.calibrated)

    def predict_proba(self, X: Any) -> np.ndarray:
        n = X.shape[0]
        mean = np.zeros((n, len(self.classes_)))
        for inner, method, positions, calibrators, n_classes, binary in self.calibrated:
            predictions = inner.decision_function(X) if method == "decision_function" else inner.predict_proba(X)
            if method == "predict_proba" and binary:
                predictions = predictions[:, 1]  # the positive class: the last of the classes
            if predictions.ndim == 1:
                predictions = predictions.reshape(-1, 1)
            proba = np.zeros((n, n_classes))
            for class_idx, this_pred, calibrator in zip(positions, predictions.T, calibrators):
                if n_classes == 2:
                    class_idx += 1
                proba[:, class_idx] = calibrator.predict(this_pred)
            if n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denominator = np.sum(proba, axis=1)[:, np.newaxis]
                uniform = np.full_like(proba, 1 / n_classes)
                proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
            proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
            mean += proba
        mean /= len(self.calibrated)
        return mean


def fast_model(model: Any) -> Any:
    """The stand-in for a fitted model: a `FastPipeline` for a pipeline, a `_Calibrated` for a
    calibrated one (`CalibratedClassifierCV`; `model` is not changed). `Unsupported` when some
    step is not one this module computes. Its `takes_matrix` says what the served model gives it:
    a float matrix in the model's feature order, or the checked frame."""
    from sklearn.calibration import CalibratedClassifierCV

    if isinstance(model, CalibratedClassifierCV):
        return _Calibrated(model)
    return FastPipeline(model)
