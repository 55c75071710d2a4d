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


# yes/no columns: the spellings read as a binary feature's 0 and 1 (any case, spaces around ignored)
YES_NO_PAIRS = (("no", "yes"), ("false", "true"), ("n", "y"))
_YES_NO = {word: float(i) for pair in YES_NO_PAIRS for i, word in enumerate(pair)}


def _lowered(column: pd.Series) -> pd.Series:
    """The present values as stripped lower-case text (booleans as 'true'/'false')."""
    present = column.dropna()
    if pd.api.types.is_bool_dtype(present.dtype) or present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        present = present.astype(bool).astype(str)
    if not present.map(lambda v: isinstance(v, str)).all():
        return pd.Series([], dtype=object)
    return present.astype(str).str.strip().str.lower()


def yes_no_labels(column: pd.Series) -> dict[str, str] | None:
    """{'0': the no spelling, '1': the yes spelling} (each the one most used) when the column's
    present values are exactly the two of yes/no, true/false or y/n, in any case (booleans too);
    else None. Such a column is a binary feature, its values stored as 0 and 1."""
    lowered = _lowered(column)
    if lowered.empty or set(lowered.unique()) not in [set(pair) for pair in YES_NO_PAIRS]:
        return None
    original = column.dropna().loc[lowered.index]
    original = original.astype(str).str.strip()
    spelling = {}
    for key, word in (("0", 0.0), ("1", 1.0)):
        spelled = original[lowered.map(_YES_NO) == word]
        spelling[key] = str(spelled.value_counts().index[0])
    return spelling


def yes_no_numbers(column: pd.Series) -> pd.Series | None:
    """The column as doubles, 1.0 for yes/true/y and 0.0 for no/false/n (any case), NaN where
    missing, when every present value is one of these words; else None."""
    lowered = _lowered(column)
    if (lowered.empty and column.notna().any()) or not lowered.isin(list(_YES_NO)).all():
        return None
    return pd.Series(lowered.map(_YES_NO), index=column.index, dtype="float64")
