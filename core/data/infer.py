"""Inferring a dataset definition from a table: "bring your own dataset".

`infer(frame, name, target)` looks at every column of an analyst's table and proposes the
definition `core.catalog.from_dict` accepts (the same shape as `datasets/NAME/dataset.toml`):
the target with its positive class (the minority one unless chosen), a kind and a domain for each
feature, and the columns left out with the reason for each (identifiers, constants, dates, free
text, almost empty columns, and single columns that give the label away). The result is an
`Inference`; `core.data.dataset_store.add` saves it.
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
    `positive_note` says in words which class is positive and why.
    """

    name: str
    definition: dict[str, Any]
    kinds: dict[str, str]
    excluded: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]
    positive_note: str
    rows: int
    labelled_rows: int
    unlabelled_rows: int
    positive_share: float
    dev_rows: int
    prod_rows: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "definition": copy.deepcopy(self.definition), "kinds": dict(self.kinds),
                "excluded": [dict(e) for e in self.excluded], "warnings": list(self.warnings),
                "positive_note": self.positive_note, "rows": self.rows, "labelled_rows": self.labelled_rows,
                "unlabelled_rows": self.unlabelled_rows, "positive_share": self.positive_share,
                "dev_rows": self.dev_rows, "prod_rows": self.prod_rows}


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


def _text(value: Any) -> str:
    """A value as the text the definition and the model see ("1" for 1.0, "True" for True)."""
    return str(plain_value(value))


# --------------------------------------------------------------------------- target
def _target(frame: pd.DataFrame, column: str, positive: Any) -> tuple[Target, str, np.ndarray, float]:
    """The target (two values, the positive one chosen), the sentence saying so, the labels
    (1.0, 0.0, NaN where unlabelled) and the positive share of the labelled rows."""
    if column not in frame.columns:
        raise DatasetError(f"There is no column {column!r} to predict; the columns are: "
                           f"{', '.join(map(str, frame.columns))}. Give one of them as --target.")
    raw = frame[column]
    p = profile(raw)
    if p.family not in ("number", "bool", "text"):
        raise DatasetError(f"The target {column!r} holds {p.family} values; it must hold two classes as numbers, "
                           "text or booleans (e.g. 0/1 or yes/no).")
    seen = raw.value_counts(dropna=True)  # counted first, then read as plain values (cheap on many rows)
    seen = seen[seen > 0]  # a category dtype also counts its unused categories
    plain = pd.Series(seen.to_numpy(), index=[plain_value(v) for v in seen.index], dtype="int64")
    counts = plain[[v != "" for v in plain.index]].groupby(level=0, sort=False).sum()  # blank text: no label
    if len(counts) != 2:
        shown = ", ".join(f"{show_value(v)} ({n:,} rows)" for v, n in counts.head(5).items())
        raise DatasetError(f"The target {column!r} must hold exactly two classes among the rows that have a label; "
                           f"it holds {len(counts):,}{': ' + shown if shown else ''}"
                           f"{', ...' if len(counts) > 5 else ''}. Choose a two-valued column as --target, or "
                           "recode this one to two classes.")
    first, later = sorted(counts.index, key=_sort_key)
    n = int(counts.sum())
    if positive is None:
        balanced = counts[first] == counts[later]
        chosen = later if balanced or counts[later] < counts[first] else first  # the minority; on a tie the later
        how = "the classes are balanced; the later value taken" if balanced else "the minority"
        note = (f"positive class: {show_value(chosen)} ({how}, {counts[chosen] / n:.1%} of labelled rows); "
                "use --positive to choose")
    else:
        matches = [v for v in counts.index if v == plain_value(positive) or _text(v) == str(positive).strip()]
        if not matches:
            raise DatasetError(f"--positive {str(positive)!r} is not a value of the target {column!r}; its values are "
                               f"{' and '.join(show_value(v) for v in sorted(counts.index, key=_sort_key))}.")
        chosen = matches[0]
        note = f"positive class: {show_value(chosen)} (as chosen, {counts[chosen] / n:.1%} of labelled rows)"
    negative = later if chosen == first else first
    target = Target(column=column, positive=chosen, negative=negative, positive_name=_text(chosen),
                    negative_name=_text(negative))
    labels, bad = target.encode(raw)
    if bad:  # cannot happen when encode and this reading agree; refuse rather than save a wrong file
        raise DatasetError(f"The target {column!r} holds {bad:,} values that read as neither {show_value(chosen)} "
                           f"nor {show_value(negative)}; recode it to two classes.")
    return target, note, labels, float(counts[chosen] / n)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, float(value)) if isinstance(value, (int, float)) else (1, str(value))


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
def _split(frame: pd.DataFrame, expr: str | None, labels: np.ndarray) -> tuple[np.ndarray, int | None]:
    """(the dev rows' positions, the number of production rows) of the `prod_where` query; refuses
    a query that fails or that leaves either side empty (or the dev side without both classes)."""
    if expr is None:
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
    dev_labels = labels[dev.to_numpy()]
    if len(np.unique(dev_labels[~np.isnan(dev_labels)])) < 2:
        raise DatasetError(f"The rows left for training by --prod-where {expr!r} do not hold both classes of "
                           "labelled rows; set fewer rows apart as production.")
    return dev.to_numpy(), len(prod)


# --------------------------------------------------------------------------- infer
def infer(frame: pd.DataFrame, name: str, target: str, positive: Any = None,
          features: Sequence[str] | None = None, prod_where: str | None = None,
          title: str | None = None) -> Inference:
    """A dataset definition inferred from `frame` (see the module docstring and the thresholds above).

    `positive` (a value of the target, or its text) picks the positive class, else the minority one;
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
    spec_target, note, labels, share = _target(frame, target, positive)
    dev, prod_rows = _split(frame, prod_where, labels)
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
            reasons[c] = leak_reason(profiles[c], labels, rows)
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
                     excluded=tuple(excluded), warnings=tuple(warnings), positive_note=note, rows=n,
                     labelled_rows=labelled, unlabelled_rows=n - labelled,
                     positive_share=round(share, 6), dev_rows=len(dev), prod_rows=prod_rows)


def check_feature_count(n: int) -> None:
    """Refuse a definition of more than `MAX_FEATURES` features (`DatasetError` saying how to choose)."""
    if n > MAX_FEATURES:
        raise DatasetError(f"The dataset would have {n:,} features; a dataset may have at most {MAX_FEATURES:,} "
                           "(the model server's inference log keeps one column per feature). Choose at most "
                           f"{MAX_FEATURES:,} with --features a,b,c (or the Data page's include column), or leave "
                           "columns out of the table.")


def _definition(name: str, title: str | None, target: Target, features: list[dict[str, Any]],
                prod_where: str | None, rows: int) -> dict[str, Any]:
    """The definition as plain data (TOML-ready: no None values)."""
    source = f"{name}.parquet"
    definition: dict[str, Any] = {
        "name": name, "title": title or name.replace("-", " ").replace("_", " ").capitalize(),
        "description": f"Added from a table of {rows:,} rows: predicts {target.column} = {target.positive_name}.",
        "row_noun": "row", "rows_noun": "rows",
        "experiment": f"{name}-workbench", "model_name": f"{name}-model",
        "target": target.to_dict(), "features": features, "sources": [{"file": source}],
        "dev": {"source": source, "where": "", "title": "dev"},
    }
    if prod_where is not None:
        expr = prod_where.strip()
        definition["dev"] = {"source": source, "where": f"not ({expr})", "title": f"rows where not ({expr})"}
        definition["prod"] = {"source": source, "where": expr, "title": f"rows where {expr}"}
    return definition
