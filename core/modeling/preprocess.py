"""The model pipeline's preprocessing, built from the dataset definition (scikit-learn only).

Every step is a plain scikit-learn transformer inside the logged pipeline, so the registered
model takes the raw values (numbers as doubles, categories as text) and MLflow stores it in the
safe skops format:

- numeric and binary features: median imputation (only when a feature may be missing), then
  standardisation;
- a categorical feature with at most `ONE_HOT_MAX` categories: one-hot encoding, rare categories
  (fewer than `MIN_FREQUENCY` training rows) and categories never seen in training pooled into
  one "infrequent" column;
- a categorical feature with more categories: scikit-learn's `TargetEncoder` (cross-fitted mean
  of the target per category, shrunk towards the overall mean; an unseen category gets the
  overall mean);
- a missing category is a category of its own (its own integer code) before encoding.

A dataset of numbers only keeps the pipeline it always had (a StandardScaler step named
"normalize"), which the served model's fast path computes in numpy.
"""
from __future__ import annotations

from typing import Any

import numpy as np

ONE_HOT_MAX = 25  # PyCaret's own default limit for one-hot encoding (max_encoding_ohe)
MIN_FREQUENCY = 10  # categories seen in fewer training rows share the "infrequent" column
MISSING_CODE, UNSEEN_CODE = -2, -1  # the integer codes of a missing and of an unseen category
# scikit-learn's TargetEncoder target type per task kind (multiclass: one column per class)
TARGET_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}


def preprocessor(spec: Any, seed: int) -> list[tuple[str, Any]]:
    """The preprocessing steps (name, unfitted transformer) for the definition's features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

    features = spec.features_spec
    by_name = {f.name: f for f in features}
    categorical = [f for f in features if f.kind == "categorical"]
    numbers = [f for f in features if f.kind != "categorical"]
    # median imputation only when a number may be missing
    impute = [("impute", SimpleImputer(strategy="median"))] if any(f.nullable for f in numbers) else []
    if not categorical:
        return [*impute, ("normalize", StandardScaler())]

    def coded(names: list[str]) -> list[tuple[str, Any]]:
        """Text to integer codes first: the definition's categories in order, a missing value
        MISSING_CODE, an unseen category UNSEEN_CODE. The encoders after it then count integers
        with numpy, not Python objects (scikit-learn's object path cost ~1 s per fit on 100,000
        rows, dozens of fits per training); and no imputer pass over the text is needed.
        The fitted encoder stays in the saved model (scikit-learn types only); the served model
        gives its codes from a lookup built once at load (`category_codes.py`), as the encoder
        searches its categories on every call (~240 ms a row against 110,000)."""
        known = [np.array([*[str(v) for v in by_name[n].values], np.nan], dtype=object) for n in names]
        return [("codes", OrdinalEncoder(categories=known, handle_unknown="use_encoded_value",
                                         unknown_value=UNSEEN_CODE, encoded_missing_value=MISSING_CODE,
                                         dtype=np.int64))]

    parts: list[tuple[str, Any, list[str]]] = []
    if numbers:
        parts.append(("numeric", Pipeline([*impute, ("scale", StandardScaler())]), [f.name for f in numbers]))
    few = [f.name for f in categorical if len(f.values) <= ONE_HOT_MAX]
    many = [f.name for f in categorical if len(f.values) > ONE_HOT_MAX]
    if few:
        parts.append(("onehot", Pipeline([
            *coded(few),
            ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=MIN_FREQUENCY,
                                     sparse_output=False)),
        ]), few))
    if many:
        parts.append(("target", Pipeline([
            *coded(many),
            ("encode", TargetEncoder(target_type=TARGET_TYPES.get(spec.target.task, "binary"), random_state=seed)),
            ("scale", StandardScaler()),
        ]), many))
    return [("encode", ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False))]
