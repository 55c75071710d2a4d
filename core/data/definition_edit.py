"""Editing an inferred definition as a table: one row per feature, back to a definition.

The Data page shows the definition `core.data.infer.infer` proposes as an editable table
(`edit_table`): each feature's column, whether to include it, its kind, whether it may be
missing, its range (numeric features) and how many values it allows (binary and categorical
ones). `apply_edits` turns the edited rows back into the definition dict `core.catalog.from_dict`
accepts. A feature whose kind was changed gets its domain from the data again (the table's
values, numbers or categories), so the definition always describes the table it is saved with.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from core.data.columns import as_text, yes_no_labels
from core.dataset import KINDS, DatasetError

COLUMNS = ("column", "include", "kind", "nullable", "min", "max", "values")
Rows = Union[pd.DataFrame, Sequence[Mapping[str, Any]]]


def values_text(entry: Mapping[str, Any]) -> str:
    """How a feature's allowed values are summed up in the table, e.g. '12 categories'."""
    values = list(entry.get("values") or ())
    if entry.get("kind") == "categorical":
        return f"{len(values):,} categor{'y' if len(values) == 1 else 'ies'}"
    if values:
        return f"{len(values)} values: " + ", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v)
                                                     for v in values[:5]) + (" ..." if len(values) > 5 else "")
    return "whole numbers" if entry.get("integer") else "any number in the range"


def edit_table(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per feature of `definition`, with the `COLUMNS` the Data page lets the analyst edit
    (`column` and `values` are for reading only; `min`/`max` are None when unbounded or not numeric)."""
    rows = []
    for entry in definition.get("features", ()):
        numeric = entry.get("kind") == "numeric"
        rows.append({
            "column": str(entry["name"]), "include": True, "kind": str(entry.get("kind", "numeric")),
            "nullable": bool(entry.get("nullable", False)),
            "min": _float(entry.get("min")) if numeric else None,
            "max": _float(entry.get("max")) if numeric else None,
            "values": values_text(entry),
        })
    return rows


def apply_edits(definition: Mapping[str, Any], rows: Rows, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """`definition` (not changed) with the edited table `rows` applied: features left out, kinds,
    `nullable` and numeric ranges. A feature whose kind changed takes its domain from `frame`'s
    column (needed then). Features left out also leave `feature_sets`, `example` and `partition_by`.

    Raises `DatasetError` saying what to fix: an unknown column or kind, no feature left, a
    minimum above the maximum, a kind the column's values do not fit.
    """
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else [dict(r) for r in rows]
    out = copy.deepcopy(dict(definition))
    entries = {str(e["name"]): e for e in out.get("features", ())}
    edits: dict[str, Mapping[str, Any]] = {}
    for r in records:
        column = str(r.get("column", ""))
        if column not in entries:
            raise DatasetError(f"The table names {column!r}, which is not a feature of the definition; "
                               "infer the definition again.")
        edits[column] = r
    kept: list[dict[str, Any]] = []
    for name, entry in entries.items():
        r = edits.get(name)
        if r is None:
            kept.append(entry)
            continue
        if not _flag(r.get("include", True)):
            continue
        kept.append(_edited(entry, r, frame))
    if not kept:
        raise DatasetError("Every feature is left out; include at least one (tick its `include` box).")
    out["features"] = kept
    return _without_dropped(out, {e["name"] for e in kept})


def _edited(entry: dict[str, Any], r: Mapping[str, Any], frame: pd.DataFrame | None) -> dict[str, Any]:
    name = entry["name"]
    kind = str(r.get("kind") or entry.get("kind", "")).strip()
    if kind not in KINDS:
        raise DatasetError(f"{name}: kind {kind!r} is not one of {', '.join(KINDS)}.")
    if kind != entry.get("kind"):
        if frame is None or name not in frame.columns:
            raise DatasetError(f"{name}: to change its kind to {kind}, the table's values are needed; "
                               "infer the definition again.")
        entry = {**{k: v for k, v in entry.items() if k not in ("values", "value_labels", "min", "max", "integer",
                                                                 "step")},
                 **_domain(name, frame[name], kind)}
    entry = {**entry, "nullable": _flag(r.get("nullable", entry.get("nullable", False)))}
    if kind == "numeric":
        entry = {k: v for k, v in entry.items() if k not in ("min", "max")}
        low, high = _float(r.get("min")), _float(r.get("max"))
        if low is not None and high is not None and low > high:
            raise DatasetError(f"{name}: min {low:g} is larger than max {high:g}; swap them or clear one.")
        whole = bool(entry.get("integer"))
        for key, bound in (("min", low), ("max", high)):
            if bound is not None:
                entry[key] = int(bound) if whole and float(bound).is_integer() else bound
    return entry


def _domain(name: str, column: pd.Series, kind: str) -> dict[str, Any]:
    """The domain of a column read as `kind`: categories, two numbers, or whole-number-ness."""
    present = column.dropna()
    if kind == "categorical":
        values = sorted(str(v) for v in pd.unique(as_text(present).to_numpy()))
        if not values:
            raise DatasetError(f"{name}: no values in the table to make categories of.")
        return {"kind": "categorical", "values": values}
    spelling = yes_no_labels(present) if kind == "binary" else None
    if spelling is not None:  # yes/no words: saved as 0 and 1 (`dataset_store.add`)
        return {"kind": "binary", "values": [0, 1], "value_labels": spelling}
    if pd.api.types.is_bool_dtype(present.dtype):
        numbers = present.astype("float64")
    else:
        numbers = pd.to_numeric(present, errors="coerce")
    bad = present[numbers.isna()]
    if len(bad):
        raise DatasetError(f"{name}: {len(bad):,} value(s) are not numbers (e.g. {bad.iloc[0]!r}), so it cannot be "
                           f"{kind}; keep it categorical.")
    distinct = np.unique(numbers.to_numpy(dtype="float64"))
    if kind == "binary":
        if len(distinct) != 2:
            raise DatasetError(f"{name}: a binary feature holds exactly two numbers; this column holds "
                               f"{len(distinct):,} distinct values. Make it numeric or categorical.")
        return {"kind": "binary", "values": [int(v) if float(v).is_integer() else float(v) for v in distinct]}
    whole = bool(len(distinct)) and bool((distinct == np.round(distinct)).all())
    return {"kind": "numeric", "integer": whole}


def _without_dropped(out: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    sets = out.get("feature_sets")
    if isinstance(sets, Mapping):
        trimmed = {k: [m for m in v if m in kept] for k, v in sets.items()}
        out["feature_sets"] = {k: v for k, v in trimmed.items() if v}
        if not out["feature_sets"]:
            del out["feature_sets"]
    if isinstance(out.get("example"), Mapping):
        example = {k: v for k, v in out["example"].items() if k in kept}
        if example:
            out["example"] = example
        else:
            del out["example"]
    if out.get("partition_by") and out["partition_by"] not in kept:
        del out["partition_by"]
    return out


def _float(value: Any) -> float | None:
    """A table cell as a bound: None for empty cells (None, NaN, '')."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{value!r} is not a number; give a number or leave the cell empty.") from err
    return None if math.isnan(number) else number


def _flag(value: Any) -> bool:
    """A checkbox cell as a bool (an empty cell is False)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)
