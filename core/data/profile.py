"""What the training data looks like: each numeric feature's range, the categories seen in
training, a typical row, and the label in each split (`label_summary`: class shares, or the
spread of a number).

Used to warn about values the model never saw (a warning, not an error: the domain rules in
`core/rules.py` decide what is refused) and to fill the Serve page's form. Missing values
are left out of every summary (a missing value is neither outside a range nor a new category).

"Outside the training range", one definition for every screen (the Production verdict, the drift
check and its table, `serve stats`): per feature, the share of a batch's rows whose value lies
below the training minimum or above the training maximum (`outside_range` counts them); the
denominator is every row of the batch, a missing value counting as inside. A categorical
feature's counterpart is the share of rows in a category training never saw.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd


def _is_text(column: pd.Series) -> bool:
    """True for a column of text categories (object or string dtype; not numbers)."""
    return not pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def training_ranges(train: pd.DataFrame, features: tuple[str, ...],
                    categorical: tuple[str, ...] = ()) -> dict[str, tuple[float, float]]:
    """Min and max of each numeric feature in the training data (missing values left out).

    Categorical features (those in `categorical`, and any column of text) have no range: they are
    left out here; `training_categories` lists what training saw of them.
    """
    skip = set(categorical)
    return {f: (float(train[f].min()), float(train[f].max())) for f in features
            if f not in skip and not _is_text(train[f])}


def training_categories(train: pd.DataFrame, categorical: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The categories each categorical feature takes in the training data (missing values left out)."""
    from core.data.columns import as_text

    return {f: frozenset(str(v) for v in as_text(train[f]).dropna().unique()) for f in categorical}


def out_of_training_range(row: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]],
                          noun: str = "row", categories: Mapping[str, frozenset[str]] | None = None) -> list[str]:
    """Warnings for the features of one row that lie outside the training range, or (given
    `categories`, see `training_categories`) hold a category never seen in training."""
    warnings: list[str] = []
    for name, (low, high) in ranges.items():
        value = row[name]
        if value is None or pd.isna(value):
            continue
        value = float(value)
        if value < low or value > high:
            warnings.append(
                f"{name} = {value:g} lies outside the training range [{low:g}, {high:g}]: "
                f"the model never saw such a {noun}, so treat its probability with caution."
            )
    for name, seen in (categories or {}).items():
        value = row.get(name)
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        if str(value) not in seen:
            warnings.append(
                f"{name} = {str(value)!r} is a category never seen in training: the model never saw such "
                f"a {noun}, so treat its probability with caution."
            )
    return warnings


def outside_range(values: np.ndarray | pd.Series, low: float, high: float) -> tuple[int, int]:
    """(how many `values` lie below `low`, how many above `high`): the one count behind every
    "outside the training range" figure (module docstring). Missing values (NaN, pd.NA) are neither."""
    v = (values.to_numpy(dtype="float64", na_value=np.nan) if isinstance(values, pd.Series)
         else np.asarray(values, dtype="float64"))
    return int(np.count_nonzero(v < low)), int(np.count_nonzero(v > high))


def share_out_of_range(df: pd.DataFrame, ranges: Mapping[str, tuple[float, float]],
                       categories: Mapping[str, frozenset[str]] | None = None) -> dict[str, float]:
    """For each feature, the share of the batch's rows outside the training range (0..1); given
    `categories` (see `training_categories`), for each categorical feature the share of rows in
    categories never seen in training. Missing values count as inside."""
    cats = dict(categories or {})
    if len(df) == 0:
        return {name: 0.0 for name in [*ranges, *cats]}
    shares = {name: sum(outside_range(df[name], low, high)) / len(df) for name, (low, high) in ranges.items()}
    for name, seen in cats.items():
        column = df[name]
        text = column if column.dtype == object else column.astype("string")
        shares[name] = float((column.notna() & ~text.isin(list(seen))).to_numpy(dtype=bool).mean())
    return shares


def typical_row(train: pd.DataFrame, spec: Any) -> dict[str, Any]:
    """Default form values: the most frequent training category of a categorical feature (text),
    the most frequent value of a numeric feature with allowed values, else its training median
    (a whole number where the definition says so); missing values left out."""
    row: dict[str, Any] = {}
    for feature in spec.features_spec:
        column = train[feature.name]
        if feature.kind == "categorical":
            from core.data.columns import as_text

            counts = as_text(column).value_counts(dropna=True)
            # the most frequent category (ties: the first in name order); the first allowed value
            # when training holds none
            if len(counts):
                row[feature.name] = str(counts.sort_index().sort_values(ascending=False, kind="stable").index[0])
            else:
                row[feature.name] = str(feature.values[0]) if feature.values else ""
        elif column.notna().sum() == 0:  # no training value at all: the definition's example value
            row[feature.name] = spec.example_row()[feature.name]
        elif feature.discrete:
            row[feature.name] = float(column.mode().iloc[0])
        else:
            median = float(column.median())
            row[feature.name] = float(round(median)) if feature.integer else round(median, 4)
    return row


# --------------------------------------------------------------------------- the label per split
@dataclass(frozen=True)
class LabelSummary:
    """The target in each split, per its task kind: the share of each class (binary and
    multiclass: {split: {class name: share}}, classes in the model's order) or the spread of the
    number (regression: {split: {mean, std, min, q1, median, q3, max}}); `rows` the labelled rows
    per split."""

    task: str
    column: str
    rows: dict[str, int]
    shares: dict[str, dict[str, float]] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_summary(splits: Mapping[str, pd.Series], target: Any) -> LabelSummary:
    """The `LabelSummary` of each split's target column (`splits`: {split name: column}). A column
    of numbers is read as prepared, the model's labels (binary 1/0, multiclass the class
    position, regression the number); any other column (the values as the data holds them) is
    encoded with `target` (`core.dataset.Target`) first. Unlabelled rows are left out."""
    rows: dict[str, int] = {}
    shares: dict[str, dict[str, float]] = {}
    stats: dict[str, dict[str, float]] = {}
    names = target.names
    for split, column in splits.items():
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            y = column.to_numpy(dtype="float64", na_value=np.nan)
        else:
            y = np.asarray(target.encode(column)[0], dtype="float64")
        y = y[~np.isnan(y)]
        rows[split] = int(len(y))
        if target.task == "regression":
            if len(y):
                q = np.quantile(y, [0.0, 0.25, 0.5, 0.75, 1.0])
                stats[split] = {"mean": float(y.mean()), "std": float(y.std()), "min": float(q[0]), "q1": float(q[1]),
                                "median": float(q[2]), "q3": float(q[3]), "max": float(q[4])}
            continue
        known = y[(y >= 0) & (y < len(names)) & (y == np.round(y))].astype(np.int64)
        counts = np.bincount(known, minlength=len(names))
        total = max(1, len(y))
        shares[split] = {name: float(counts[i] / total) for i, name in enumerate(names)}
    return LabelSummary(task=target.task, column=target.column, rows=rows, shares=shares, stats=stats,
                        unit=getattr(target, "unit", ""))
