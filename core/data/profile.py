"""What the training data looks like: each feature's range, and a typical row.

Used to warn about values the model never saw (a warning, not an error: the domain rules in
`core/data/rules.py` decide what is refused) and to fill the Serve page's form.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd


def training_ranges(train: pd.DataFrame, features: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Min and max of each feature in the training data."""
    return {f: (float(train[f].min()), float(train[f].max())) for f in features}


def out_of_training_range(row: Mapping[str, float], ranges: Mapping[str, tuple[float, float]],
                          noun: str = "row") -> list[str]:
    """Warnings for the features of one row that lie outside the training range."""
    warnings: list[str] = []
    for name, (low, high) in ranges.items():
        value = float(row[name])
        if value < low or value > high:
            warnings.append(
                f"{name} = {value:g} lies outside the training range [{low:g}, {high:g}]: "
                f"the model never saw such a {noun}, so treat its probability with caution."
            )
    return warnings


def share_out_of_range(df: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """For each feature, the share of the batch's rows outside the training range (0..1)."""
    if len(df) == 0:
        return {name: 0.0 for name in ranges}
    return {
        name: float(((df[name] < low) | (df[name] > high)).mean())
        for name, (low, high) in ranges.items()
    }


def typical_row(train: pd.DataFrame, spec: Any) -> dict[str, float]:
    """Default form values: the most frequent value of a feature with allowed values, else its
    training median (a whole number where the definition says so)."""
    row: dict[str, float] = {}
    for feature in spec.features_spec:
        column = train[feature.name]
        if feature.discrete:
            row[feature.name] = float(column.mode().iloc[0])
        else:
            median = float(column.median())
            row[feature.name] = float(round(median)) if feature.integer else round(median, 4)
    return row
