"""Inferring a dataset definition from a table: "bring your own dataset".

`infer(frame, name, target)` looks at every column of an analyst's table and proposes the
definition `core.catalog.from_dict` accepts (the same shape as `datasets/NAME/dataset.toml`):
the target with its task kind (binary, multiclass or regression, inferred from its values or
chosen with `task`; `core.data.target_task`) and, for binary, its positive class (the minority
one unless chosen), a kind and a domain for each feature, and the columns left out with the
reason for each (identifiers, constants, dates, free text, almost empty columns, and single
columns that give the label away). The result is an `Inference`; `core.data.dataset_store.add`
saves it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.data.column_roles import (
    ColumnProfile,
    exclusion_reason,
    leak_reason,
    leak_rows,
    plain_value,
    profile,
    show_value,
)
from core import row_filter
from core.data.columns import yes_no_labels, yes_no_numbers
from core.data.target_task import check_dev, predicts, read_target
from core.dataset import DatasetError, Target

NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"  # what `core.catalog.from_dict` accepts as a name
# a dataset's features at most: the inference log keeps one SQLite column per feature (SQLite's
# default limit is 2,000 columns a table; `core/serving/inference_log.py` adds 8 of its own)
MAX_FEATURES = 1000


@dataclass(frozen=True)
class Inference:
    """A proposed definition and how it was reached.

    `definition` is what `core.catalog.from_dict` accepts (its single source is the table saved as
    `<name>.parquet`, without a checksum yet); `excluded` lists each column left out as
    {column, reason}; `warnings` what deserves a look (features kept on purpose despite a reason);
    `task` is the target's task kind and `task_note` says in words which and why (its classes, or
    its range); `fitting_tasks` are the kinds the target fits (the inferred one first), what
    `task=` may choose. For a binary target `positive_note` says which class is positive and why
    and `positive_share` is its share of the labelled rows; for other tasks both are None.
    """

    name: str
    definition: dict[str, Any]
    kinds: dict[str, str]
    excluded: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]
    positive_note: str | None
    rows: int
    labelled_rows: int
    unlabelled_rows: int
    positive_share: float | None
    dev_rows: int
    prod_rows: int | None
    task: str = "binary"
    task_note: str = ""
    fitting_tasks: tuple[str, ...] = ("binary",)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "definition": copy.deepcopy(self.definition), "kinds": dict(self.kinds),
                "excluded": [dict(e) for e in self.excluded], "warnings": list(self.warnings),
                "positive_note": self.positive_note, "rows": self.rows, "labelled_rows": self.labelled_rows,
                "unlabelled_rows": self.unlabelled_rows, "positive_share": self.positive_share,
                "dev_rows": self.dev_rows, "prod_rows": self.prod_rows, "task": self.task,
                "task_note": self.task_note, "fitting_tasks": list(self.fitting_tasks)}


# --------------------------------------------------------------------------- checks
def check_name(name: str, builtin: Sequence[str] = ()) -> None:
    """`DatasetError` unless `name` is a valid dataset name not taken by a built-in dataset."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise DatasetError(f"The dataset name {name!r} is not allowed: use 1 to 64 lower-case letters, digits, "
                           "'-' or '_', starting with a letter or a digit (e.g. --name churn-2024).")
    if name in builtin:
        raise DatasetError(f"{name!r} is a built-in dataset; choose another name for yours (e.g. --name my-{name}).")


def _builtin_names() -> tuple[str, ...]:
    from core import catalog

    return tuple(catalog.available())  # without extra folders: the built-in ones only


# --------------------------------------------------------------------------- features
def _feature(name: str, p: ColumnProfile) -> dict[str, Any]:
    """The [[features]] entry of one column."""
    entry: dict[str, Any] = {"name": name, "label": name.replace("_", " ").strip().capitalize() or name}
    missing = f"; {p.missing:,} missing" if p.missing else ""
    if p.family == "number" and p.distinct == 2:
        values = sorted(plain_value(v) for v in p.uniques)
        entry.update(kind="binary", values=values, help=f"Two values in the data: "
                     f"{' and '.join(map(str, values))}{missing}.")
    elif p.family == "number":
        v = p.uniques.astype("float64")
        whole = bool(len(v)) and bool((v == np.round(v)).all())
        entry.update(kind="numeric", integer=whole)
        if len(v) and v.min() >= 0:
            entry["min"] = 0 if whole else 0.0
        seen = f"from {v.min():g} to {v.max():g} in the data" if len(v) else "no values in the data"
        entry["help"] = f"{'Whole numbers' if whole else 'Numbers'} {seen}{missing}."
    elif p.family in ("bool", "text") and (spelling := _yes_no(p)) is not None:
        # yes/no, true/false, y/n in any case: a binary feature, stored as 0 and 1 (dataset_store.add)
        entry.update(kind="binary", values=[0, 1], value_labels=spelling,
                     help=f"Two values in the data: {spelling['0']} (0) and {spelling['1']} (1){missing}.")
    elif p.family in ("bool", "text"):
        values = sorted(str(v) for v in p.uniques)
        shown = ", ".join(values[:5]) + (f", ... ({len(values):,} in all)" if len(values) > 5 else "")
        entry.update(kind="categorical", values=values, help=f"Categories in the data: {shown}{missing}.")
    else:
        raise DatasetError(f"Column {name!r} holds {p.family} values, which cannot be a feature as they are: "
                           "derive a number or a category from it, or leave it out of --features.")
    entry["nullable"] = bool(p.missing)
    return entry


def _yes_no(p: ColumnProfile) -> dict[str, str] | None:
    """The no/yes spellings of a column of exactly two yes/no words (see `columns.yes_no_labels`);
    its few distinct values are looked at first, the whole column only when they are such words."""
    if not 2 <= p.distinct <= 16:  # two words in a few spellings each (Yes, yes, YES)
        return None
    if yes_no_numbers(pd.Series(p.uniques, dtype=object)) is None:
        return None
    return yes_no_labels(p.values)


def _chosen(frame: pd.DataFrame, target: str, features: Sequence[str]) -> list[str]:
    names = [str(f).strip() for f in features]
    unknown = [f for f in names if f not in frame.columns]
    if unknown:
        raise DatasetError(f"--features names column(s) the table does not have: {', '.join(unknown)}; its columns "
                           f"are: {', '.join(map(str, frame.columns))}.")
    if target in names:
        raise DatasetError(f"--features lists the target {target!r}; a feature cannot be the label it predicts.")
    if not names:
        raise DatasetError("--features is empty; name at least one column, e.g. --features a,b.")
    dupes = sorted({f for f in names if names.count(f) > 1})
    if dupes:
        raise DatasetError(f"--features lists {', '.join(dupes)} more than once.")
    return names


# --------------------------------------------------------------------------- production rows
def _split(frame: pd.DataFrame, expr: str | None, target: Target, labels: np.ndarray) -> tuple[np.ndarray, int | None]:
    """(the dev rows' positions, the number of production rows) of the `prod_where` query; refuses
    a query that fails or that leaves either side empty, and dev rows the target's task cannot be
    trained on (`target_task.check_dev`: binary without both classes, a class too rare to split,
    too few numbers for a regression)."""
    if expr is None:
        check_dev(target, labels, None)
        return np.arange(len(frame)), None
    expr = expr.strip()
    if not expr:
        raise DatasetError("--prod-where is empty; give a row filter such as 'year >= 2024', or leave it out.")
    plain = frame.reset_index(drop=True)
    try:
        prod = row_filter.parse(expr, plain.columns).select(plain).index
        dev = row_filter.parse(f"not ({expr})", plain.columns).select(plain).index
    except row_filter.FilterError as err:
        raise DatasetError(f"The --prod-where filter cannot be applied: {err}") from err
    if len(prod) == 0 or len(dev) == 0:
        which = "no row" if len(prod) == 0 else "every row"
        raise DatasetError(f"The --prod-where filter {expr!r} selects {which} of the {len(frame):,}; it must set "
                           "some rows apart as production and leave the others for training.")
    check_dev(target, labels[dev.to_numpy()], expr)
    return dev.to_numpy(), len(prod)


# --------------------------------------------------------------------------- infer
def infer(frame: pd.DataFrame, name: str, target: str, positive: Any = None,
          features: Sequence[str] | None = None, prod_where: str | None = None,
          title: str | None = None, task: str | None = None) -> Inference:
    """A dataset definition inferred from `frame` (see the module docstring and the thresholds above).

    `task` ("binary", "multiclass" or "regression") overrides the task kind inferred from the
    target when the target fits it; `positive` (a value of the target, or its text; binary only)
    picks the positive class, else the minority one;
    `features` keeps exactly those columns (their exclusion reasons become warnings); `prod_where`
    (a row filter, `core.row_filter`) sets production rows apart: dev is `not (EXPR)`, production is EXPR.
    Raises `DatasetError` saying what is wrong and how to fix it.
    """
    check_name(name, _builtin_names())
    if not all(isinstance(c, str) for c in frame.columns):
        raise DatasetError("Every column needs a text name; rename the unnamed or numbered columns.")
    if frame.columns.duplicated().any():
        raise DatasetError(f"Column(s) {', '.join(sorted(set(frame.columns[frame.columns.duplicated()])))} appear "
                           "more than once; keep one of each.")
    if frame.shape[1] < 2:
        raise DatasetError(f"The table has {frame.shape[1]} column(s); it needs a target and at least one feature. "
                           "If it is a CSV, check its separator (comma, semicolon, tab or pipe).")
    if len(frame) == 0:
        raise DatasetError("The table has no rows.")
    found = read_target(frame, target, task=task, positive=positive)
    spec_target, labels = found.target, found.labels
    dev, prod_rows = _split(frame, prod_where, spec_target, labels)
    n = len(frame)
    labelled = int((~np.isnan(labels)).sum())
    profiles = {c: profile(frame[c]) for c in frame.columns if c != target}
    reasons = {c: exclusion_reason(p, n) for c, p in profiles.items()}
    if prod_rows is not None:  # e.g. the column the query splits on: no information left for training
        for c, p in profiles.items():
            if reasons[c] is None and p.values.iloc[dev].nunique(dropna=True) <= 1:
                reasons[c] = "constant among the dev rows (those --prod-where leaves for training)"
    chosen = _chosen(frame, target, features) if features is not None else None
    candidates = chosen if chosen is not None else [c for c, r in reasons.items() if r is None]
    rows = leak_rows(labels)
    for c in candidates if rows is not None else ():
        if reasons[c] is None:
            reasons[c] = leak_reason(profiles[c], labels, rows, spec_target.task)
    excluded = [{"column": target, "reason": "the target"}]
    warnings: list[str] = []
    if chosen is None:
        kept = [c for c in candidates if reasons[c] is None]
        excluded += [{"column": c, "reason": r} for c, r in reasons.items() if r is not None]
        if not kept:
            why = "; ".join(f"{e['column']}: {e['reason']}" for e in excluded[1:])
            raise DatasetError(f"No column is left to be a feature once these are left out: {why}. Name the "
                               "features yourself with --features a,b (the reasons become warnings).")
    else:
        kept = chosen
        excluded += [{"column": c, "reason": "not among the chosen features"} for c in profiles if c not in chosen]
        warnings += [f"{c} kept as a feature although it looks like {reasons[c]}" for c in chosen if reasons[c]]
    check_feature_count(len(kept))
    entries = [_feature(c, profiles[c]) for c in kept]
    definition = _definition(name, title, spec_target, entries, prod_where, n)
    return Inference(name=name, definition=definition, kinds={e["name"]: e["kind"] for e in entries},
                     excluded=tuple(excluded), warnings=tuple(warnings), positive_note=found.positive_note, rows=n,
                     labelled_rows=labelled, unlabelled_rows=n - labelled,
                     positive_share=None if found.positive_share is None else round(found.positive_share, 6),
                     dev_rows=len(dev), prod_rows=prod_rows, task=spec_target.task, task_note=found.task_note,
                     fitting_tasks=found.fitting)


def check_feature_count(n: int) -> None:
    """Refuse a definition of more than `MAX_FEATURES` features (`DatasetError` saying how to choose)."""
    if n > MAX_FEATURES:
        raise DatasetError(f"The dataset would have {n:,} features; a dataset may have at most {MAX_FEATURES:,} "
                           "(the model server's inference log keeps one column per feature). Choose at most "
                           f"{MAX_FEATURES:,} with --features a,b,c (or the Data page's include column), or leave "
                           "columns out of the table.")


def _target_entry(target: Target) -> dict[str, Any]:
    """The [target] table: a binary target as it always was; another task without the binary
    fields (positive, negative and their names), which it does not use."""
    entry = target.to_dict()
    if target.task != "binary":
        for key in ("positive", "negative", "positive_name", "negative_name"):
            entry.pop(key, None)
    return entry


def _definition(name: str, title: str | None, target: Target, features: list[dict[str, Any]],
                prod_where: str | None, rows: int) -> dict[str, Any]:
    """The definition as plain data (TOML-ready: no None values)."""
    source = f"{name}.parquet"
    definition: dict[str, Any] = {
        "name": name, "title": title or name.replace("-", " ").replace("_", " ").capitalize(),
        "description": f"Added from a table of {rows:,} rows: predicts {predicts(target)}.",
        "row_noun": "row", "rows_noun": "rows",
        "experiment": f"{name}-workbench", "model_name": f"{name}-model",
        "target": _target_entry(target), "features": features, "sources": [{"file": source}],
        "dev": {"source": source, "where": "", "title": "dev"},
    }
    if prod_where is not None:
        expr = prod_where.strip()
        definition["dev"] = {"source": source, "where": f"not ({expr})", "title": f"rows where not ({expr})"}
        definition["prod"] = {"source": source, "where": expr, "title": f"rows where {expr}"}
    return definition
