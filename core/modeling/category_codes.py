"""The served pipeline's category codes from a lookup built once (issue 28: a single row against
110,000 categories took about 250 ms).

The pipeline's first categorical step is a fitted scikit-learn `OrdinalEncoder`
(`core/modeling/preprocess.py`), and the saved model keeps it: the model holds scikit-learn
types only, which MLflow's skops format loads without any workbench code. But
`OrdinalEncoder.transform` rebuilds its lookup of every category on each call (a set and a
dict of `categories_`): about 240 ms for ONE row against 110,000 categories, whatever the rows.

`with_category_codes` makes the served copy of the pipeline (`pyfunc_model.ServedModel`) with
each such encoder stood in for by `CategoryCodes`, which gives the same codes from a
`pandas.Index` per column, built once at load, so a request costs its rows.

Like `pyfunc_model.py`, this file is copied into every model logged (`code/category_codes.py`,
which the model's loader reads by path) and imports nothing from the workbench.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


class CategoryCodes:
    """A fitted `OrdinalEncoder` of text categories, its codes from a lookup built once.

    Hand-written because scikit-learn's encoder searches its categories again on every call.
    The codes are the encoder's: a category its position in `categories_`, a NaN (the missing
    value the served model passes) `encoded_missing_value`, anything else (an unseen category, a
    value that is not text, None, pd.NA) `unknown_value`; in the encoder's dtype. An input it
    does not reproduce exactly (not a frame of object columns named as in fitting, or no rows)
    goes to the encoder itself.
    """

    def __init__(self, encoder: Any) -> None:
        import pandas as pd

        self.encoder = encoder
        self._lookups = [pd.Index(cats[:-1], dtype=object) for cats in encoder.categories_]
        for lookup in self._lookups:
            lookup.get_indexer(lookup[:1])  # builds the hash table now, not on the first request
        self._names = list(encoder.feature_names_in_)
        self._output: str | None = None  # set_output's choice; None: the encoder's

    @classmethod
    def of(cls, encoder: Any) -> "CategoryCodes | None":
        """The stand-in for a fitted `encoder`, or None where it would not give the encoder's
        codes: unknown categories not given a code, infrequent categories, no feature names,
        a float dtype, or categories other than unique text followed by NaN (what
        `preprocess.coded` builds)."""
        cats = getattr(encoder, "categories_", None)
        missing = getattr(encoder, "_missing_indices", None)
        if (cats is None or not isinstance(missing, dict) or getattr(encoder, "_infrequent_enabled", True)
                or getattr(encoder, "handle_unknown", None) != "use_encoded_value"
                or not hasattr(encoder, "feature_names_in_") or np.dtype(encoder.dtype).kind not in "iu"
                or not all(isinstance(v, numbers.Integral) for v in (encoder.unknown_value,
                                                                     encoder.encoded_missing_value))):
            return None
        for i, values in enumerate(cats):
            known = values[:-1]
            if (values.dtype != object or len(values) < 2 or not _is_nan(values[-1])
                    or missing.get(i) != len(values) - 1
                    or not all(type(v) is str for v in known) or len(set(known)) != len(known)):
                return None
        return cls(encoder)

    def transform(self, X: Any) -> Any:
        """The codes of `X`'s rows (an ndarray, or a frame under `set_output(transform="pandas")`)."""
        import pandas as pd

        output = self._output_kind()
        if (not isinstance(X, pd.DataFrame) or list(X.columns) != self._names or len(X) == 0
                or not (X.dtypes == object).all() or output not in ("default", "pandas")):
            return self.encoder.transform(X)
        unseen, missing_code = self.encoder.unknown_value, self.encoder.encoded_missing_value
        codes = np.empty((len(X), len(self._lookups)), dtype=self.encoder.dtype)
        for j, lookup in enumerate(self._lookups):
            values = X.iloc[:, j].to_numpy()
            found = lookup.get_indexer(pd.Index(values, dtype=object, copy=False))
            found[found < 0] = unseen
            gaps = np.flatnonzero(pd.isna(values))  # None, NaN, pd.NA, NaT: the encoder's missing is NaN
            found[[i for i in gaps if _is_nan(values[i])]] = missing_code
            codes[:, j] = found
        if output == "pandas":
            return pd.DataFrame(codes, columns=self.get_feature_names_out(), index=X.index)
        return codes

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.encoder.get_feature_names_out(input_features)

    def set_output(self, *, transform: str | None = None) -> "CategoryCodes":
        """As scikit-learn's `set_output`, for this stand-in only (the encoder is not changed)."""
        if transform is not None:
            self._output = transform
        return self

    def _output_kind(self) -> str:
        """'default' (an ndarray), 'pandas' or another container: what the encoder would return."""
        import sklearn

        chosen = self._output or getattr(self.encoder, "_sklearn_output_config", {}).get("transform", "default")
        return sklearn.get_config()["transform_output"] if chosen == "default" else chosen


def _is_nan(value: Any) -> bool:
    """scikit-learn's `is_scalar_nan`: a real number, not an integer, that is NaN."""
    return not isinstance(value, numbers.Integral) and isinstance(value, numbers.Real) and math.isnan(value)


def with_category_codes(model: Any) -> Any:
    """`model` with each fitted `OrdinalEncoder` that `CategoryCodes.of` takes stood in for, in
    shallow copies of the pipelines, column transformers and calibrated classifiers holding it
    (every other fitted step shared; `model` itself is not changed); `model` itself when it
    holds none."""
    import copy

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    if type(model) is OrdinalEncoder:
        return CategoryCodes.of(model) or model
    if isinstance(model, Pipeline):
        attribute, old = "steps", model.steps
        new = [(name, with_category_codes(step)) for name, step in old]
        changed = any(a[1] is not b[1] for a, b in zip(new, old))
    elif isinstance(model, ColumnTransformer) and hasattr(model, "transformers_"):
        attribute, old = "transformers_", model.transformers_
        new = [(name, with_category_codes(step), columns) for name, step, columns in old]
        changed = any(a[1] is not b[1] for a, b in zip(new, old))
    elif isinstance(model, CalibratedClassifierCV) and hasattr(model, "calibrated_classifiers_"):
        attribute, old, new = "calibrated_classifiers_", model.calibrated_classifiers_, []
        for calibrated in old:
            inner = with_category_codes(calibrated.estimator)
            if inner is not calibrated.estimator:
                calibrated = copy.copy(calibrated)
                calibrated.estimator = inner
            new.append(calibrated)
        changed = any(a is not b for a, b in zip(new, old))
    else:
        return model
    if not changed:
        return model
    served = copy.copy(model)
    setattr(served, attribute, new)
    return served
