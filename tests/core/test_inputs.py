"""The Kobe definition's rule table on single requests, and training-range warnings (inline data)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from core import catalog
from core.data import profile
from core.rules import InvalidInputError

KOBE = catalog.find("kobe")

GOOD = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}


def test_valid_row_becomes_doubles_in_model_order() -> None:
    row = KOBE.rules.validate_row(dict(reversed(list(GOOD.items()))))
    assert list(row) == list(KOBE.features)
    assert all(isinstance(v, float) for v in row.values())
    assert row["period"] == 2.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"period": 1.5}, "period must be one of 1, 2, 3, 4, 5, 6, 7, got 1.5"),
        ({"period": 8}, "period must be one of 1, 2, 3, 4, 5, 6, 7, got 8"),
        ({"playoffs": 2}, "playoffs must be one of 0, 1, got 2"),
        ({"lat": 95.0}, "lat must be a finite number from -90 to 90, got 95"),
        ({"shot_distance": 150}, "shot_distance must be a whole number from 0 to 100, got 150"),
        ({"lat": None}, "lat is missing (null)"),
        ({"lon": math.nan}, "lon is NaN"),
        ({"lat": math.inf}, "lat must be a finite number"),
        ({"shot_distance": -1}, "shot_distance must be a whole number from 0 to 100, got -1"),
        ({"minutes_remaining": 12}, "minutes_remaining must be a whole number from 0 to 11"),
        ({"playoffs": "1"}, "got '1' (str)"),
        ({"playoffs": True}, "got True (bool)"),
        ({"extra": 1}, "unknown column(s): extra"),
    ],
)
def test_bad_values_are_refused_with_a_readable_message(change: dict, expected: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        KOBE.rules.validate_row({**GOOD, **change})
    assert expected in str(err.value)


def test_missing_columns_are_named_and_all_problems_listed() -> None:
    row = {k: v for k, v in GOOD.items() if k not in ("lat", "period")}
    row["playoffs"] = 3
    with pytest.raises(InvalidInputError) as err:
        KOBE.rules.validate_row(row)
    msg = str(err.value)
    assert "missing column(s): lat, period" in msg and "playoffs must be" in msg


def test_out_of_training_range_warns_only_outside() -> None:
    train = pd.DataFrame({**{k: [v, v] for k, v in GOOD.items()}, "shot_distance": [0, 20]})
    ranges = profile.training_ranges(train, KOBE.features)
    assert profile.out_of_training_range(KOBE.rules.validate_row(GOOD), ranges) == []
    warnings = profile.out_of_training_range(KOBE.rules.validate_row({**GOOD, "shot_distance": 45}), ranges)
    assert len(warnings) == 1 and "shot_distance = 45 lies outside the training range [0, 20]" in warnings[0]
    batch = pd.DataFrame({**{k: [v] * 4 for k, v in GOOD.items()}, "shot_distance": [5, 21, 30, 10]})
    assert profile.share_out_of_range(batch, ranges)["shot_distance"] == 0.5


def test_typical_row_uses_whole_numbers_where_the_definition_says_so() -> None:
    train = pd.DataFrame({k: [v, v + 1, v + 1] for k, v in GOOD.items()})
    shot = profile.typical_row(train, KOBE)
    assert shot["period"] == 3.0 and shot["lat"] == round(GOOD["lat"] + 1, 4)
    KOBE.rules.validate_row(shot)
