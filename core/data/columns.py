"""The model's input columns as it takes them: numbers as doubles, categories as text.

Used by preparation (the prepared files hold categories as text), training, scoring and the
drift checks, so every stage hands the model the same types.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def feature_frame(df: pd.DataFrame, features: tuple[str, ...], categorical: tuple[str, ...] = ()) -> pd.DataFrame:
    """The feature columns as the model takes them: its input contract.

    Numbers as doubles everywhere, so that a fractional `period` is refused by validation rather
    than silently truncated by an integer signature; `categorical` features as text (object
    columns of str, NaN where missing: what the pipeline's imputer recognises as missing).
    """
    cats = set(categorical)
    if not cats:
        return df.loc[:, list(features)].astype("float64")
    return pd.DataFrame({f: as_text(df[f]) if f in cats else df[f].astype("float64") for f in features},
                        index=df.index)


def as_text(column: pd.Series) -> pd.Series:
    """A categorical column as object text, NaN where missing; whole numbers without '.0'
    (a category read as 1.0 from a file is the category "1")."""
    if pd.api.types.is_float_dtype(column.dtype):
        whole = column.dropna()
        if len(whole) and (whole == np.round(whole)).all():
            column = column.astype("Int64")
    if pd.api.types.is_bool_dtype(column.dtype):
        column = column.astype(object)
    text = column.astype("string")
    return text.astype(object).where(text.notna(), np.nan)
