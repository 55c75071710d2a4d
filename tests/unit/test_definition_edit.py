"""Editing an inferred definition as a table (`core/data/definition_edit.py`), on a tiny inline table."""
from __future__ import annotations

import pandas as pd
import pytest

from core import catalog
from core.data import definition_edit, infer
from core.dataset import DatasetError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    n = 120
    return pd.DataFrame({
        "plan": (["basic", "plus", "pro"] * 40)[:n],
        "premium": [0, 1] * (n // 2),
        "usage": [float(i % 37) for i in range(n)],
        "code": [str(i % 5) for i in range(n)],  # numbers written as text: categorical unless changed
        "churned": (["yes"] + ["no"] * 3) * (n // 4),
    })


@pytest.fixture(scope="module")
def definition(frame: pd.DataFrame) -> dict:
    return infer.infer(frame, "tiny-edit", "churned").definition


def test_the_table_has_one_row_per_feature(definition: dict) -> None:
    rows = {r["column"]: r for r in definition_edit.edit_table(definition)}
    assert list(rows) == ["plan", "premium", "usage", "code"]
    assert rows["plan"]["kind"] == "categorical" and rows["plan"]["values"] == "3 categories"
    assert rows["premium"]["values"] == "2 values: 0, 1" and rows["premium"]["min"] is None
    assert rows["usage"]["min"] == 0.0 and rows["usage"]["max"] is None and rows["usage"]["include"]


def test_unchanged_rows_give_the_same_definition(definition: dict) -> None:
    assert definition_edit.apply_edits(definition, definition_edit.edit_table(definition)) == definition


def test_edits_leave_out_bound_and_change_kinds(definition: dict, frame: pd.DataFrame) -> None:
    rows = pd.DataFrame(definition_edit.edit_table(definition))
    rows.loc[rows["column"] == "plan", "include"] = False
    rows.loc[rows["column"] == "usage", ["max", "nullable"]] = [50.0, True]
    rows.loc[rows["column"] == "code", "kind"] = "numeric"
    out = definition_edit.apply_edits(definition, rows, frame)
    assert definition["features"][0]["name"] == "plan"  # the argument is not changed
    by_name = {f["name"]: f for f in out["features"]}
    assert list(by_name) == ["premium", "usage", "code"]
    assert by_name["usage"]["max"] == 50 and by_name["usage"]["nullable"] is True
    assert by_name["code"]["kind"] == "numeric" and by_name["code"]["integer"] is True
    assert "values" not in by_name["code"]
    spec = catalog.from_dict(out)
    assert spec.features == ("premium", "usage", "code") and spec.feature("usage").maximum == 50.0


@pytest.mark.parametrize("change, message", [
    ({"include": False}, "at least one"),
    ({"column": "nope"}, "not a feature"),
])
def test_refusals_of_the_whole_table(definition: dict, change: dict, message: str) -> None:
    rows = [{**r, **change} for r in definition_edit.edit_table(definition)]
    with pytest.raises(DatasetError, match=message):
        definition_edit.apply_edits(definition, rows)


@pytest.mark.parametrize("column, change, message", [
    ("usage", {"min": 10.0, "max": 5.0}, "larger than max"),
    ("usage", {"kind": "ordinal"}, "not one of"),
    ("plan", {"kind": "numeric"}, "not numbers"),
    ("usage", {"kind": "binary"}, "exactly two"),
])
def test_refusals_of_one_row(definition: dict, frame: pd.DataFrame, column: str, change: dict, message: str) -> None:
    rows = [{**r, **change} if r["column"] == column else r for r in definition_edit.edit_table(definition)]
    with pytest.raises(DatasetError, match=message):
        definition_edit.apply_edits(definition, rows, frame)


def test_a_kind_change_needs_the_data(definition: dict) -> None:
    rows = [{**r, "kind": "categorical"} if r["column"] == "usage" else r
            for r in definition_edit.edit_table(definition)]
    with pytest.raises(DatasetError, match="values are needed"):
        definition_edit.apply_edits(definition, rows)
