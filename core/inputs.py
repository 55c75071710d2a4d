"""The model's input contract: domain rules of the six features, for one shot or a batch.

`RULES` is the single statement of what a valid shot looks like (reused by the drift checks);
`validate_row` turns one request into the doubles the model expects or raises `InvalidInputError`
with a readable message (batches are validated by `core.validation.read_batch`);
`out_of_training_range` flags values the model never saw (a warning, not an error).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.config import FEATURES
from core.errors import WorkbenchError

FEATURE_NAMES: tuple[str, ...] = FEATURES


class InvalidInputError(WorkbenchError):
    """A shot (or a batch) does not satisfy the model's input contract."""


@dataclass(frozen=True)
class FeatureRule:
    """Domain of one feature: bounds (inclusive, None = open) and whether it is a whole number."""

    name: str
    label: str
    integer: bool
    minimum: float | None
    maximum: float | None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The domain in words, e.g. 'a whole number from 1 to 7'."""
        kind = "a whole number" if self.integer else "a finite number"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{kind} of at least {self.minimum:g}"
        if self.maximum is not None:
            return f"{kind} of at most {self.maximum:g}"
        return kind


# Domains of the raw Kobe data (the whole dev and prod files lie inside them): a quarter has
# 12 minutes (0-11 whole minutes remaining), four quarters plus up to three overtimes.
RULES: tuple[FeatureRule, ...] = (
    FeatureRule("lat", "Latitude", False, -90.0, 90.0, "°"),
    FeatureRule("lon", "Longitude", False, -180.0, 180.0, "°"),
    FeatureRule("minutes_remaining", "Minutes remaining in the period", True, 0.0, 11.0, "min"),
    FeatureRule("period", "Period (5-7 are overtimes)", True, 1.0, 7.0, ""),
    FeatureRule("playoffs", "Playoff game (1) or regular season (0)", True, 0.0, 1.0, ""),
    FeatureRule("shot_distance", "Shot distance", True, 0.0, 100.0, "ft"),
)
RULES_BY_NAME: dict[str, FeatureRule] = {r.name: r for r in RULES}
assert tuple(RULES_BY_NAME) == FEATURE_NAMES, "one rule per feature, in the model's order"


def _problem(rule: FeatureRule, value: Any) -> str | None:
    """Why `value` is not valid for `rule`, or None."""
    if value is None:
        return f"{rule.name} is missing (null); it must be {rule.describe()}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"{rule.name} must be {rule.describe()}, got {value!r} ({type(value).__name__})"
    x = float(value)
    if math.isnan(x):
        return f"{rule.name} is NaN; it must be {rule.describe()}"
    if not math.isfinite(x):
        return f"{rule.name} must be {rule.describe()}, got {x}"
    if rule.integer and not x.is_integer():
        return f"{rule.name} must be {rule.describe()}, got {x:g} (the server would silently truncate it)"
    if (rule.minimum is not None and x < rule.minimum) or (rule.maximum is not None and x > rule.maximum):
        return f"{rule.name} must be {rule.describe()}, got {x:g}"
    return None


def validate_row(row: Mapping[str, Any], features: tuple[str, ...] = FEATURE_NAMES) -> dict[str, float]:
    """One shot as `{feature: float}` in the model's column order, or `InvalidInputError`.

    Every problem is listed (missing or extra columns, nulls, NaN, wrong types, fractional
    whole numbers, values outside the domain). Numeric strings are refused rather than
    coerced, so that what is logged is exactly what was sent.
    """
    problems: list[str] = []
    missing = [f for f in features if f not in row]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    extra = sorted(k for k in row if k not in features)
    if extra:
        problems.append(f"unknown column(s): {', '.join(map(str, extra))} (expected {', '.join(features)})")
    for name in features:
        if name in row:
            found = _problem(RULES_BY_NAME[name], row[name])
            if found:
                problems.append(found)
    if problems:
        raise InvalidInputError("Invalid shot: " + "; ".join(problems) + ".")
    return {name: float(row[name]) for name in features}


def training_ranges(train: pd.DataFrame, features: tuple[str, ...] = FEATURE_NAMES) -> dict[str, tuple[float, float]]:
    """Min and max of each feature in the training data."""
    return {f: (float(train[f].min()), float(train[f].max())) for f in features}


def out_of_training_range(row: Mapping[str, float], ranges: Mapping[str, tuple[float, float]]) -> list[str]:
    """Warnings for the features of one shot that lie outside the training range."""
    warnings: list[str] = []
    for name, (low, high) in ranges.items():
        value = float(row[name])
        if value < low or value > high:
            warnings.append(
                f"{name} = {value:g} lies outside the training range [{low:g}, {high:g}]: "
                f"the model never saw such a shot, so treat its probability with caution."
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


def typical_shot(train: pd.DataFrame, features: tuple[str, ...] = FEATURE_NAMES) -> dict[str, float]:
    """Default form values: each feature's training median (whole numbers where the rule says so)."""
    shot: dict[str, float] = {}
    for name in features:
        median = float(train[name].median())
        shot[name] = float(round(median)) if RULES_BY_NAME[name].integer else round(median, 4)
    return shot
