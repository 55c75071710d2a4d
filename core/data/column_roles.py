"""Which columns of a table can be features: the family of a column's values, and the rules that
leave one out (unsupported values, almost all missing, constants, dates, identifiers, free text,
and single columns that give the label away), each with a reason in words.

Used by `core.data.infer` to propose a dataset definition. The thresholds are the constants below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.columns import as_text

# --- what leaves a column out (each a reason in `Inference.excluded`) ---------------------
MISSING_MAX = 0.95  # more missing than this share of the rows: "almost all missing"
ID_MIN_ROWS = 50  # identifiers and free text are only told apart from categories above this many values
ID_DISTINCT_SHARE = 0.95  # text or whole numbers distinct on at least this share of the rows: an identifier...
ID_SPAN = 2.0  # ... whole numbers only when they run in sequence: sorted, or max - min + 1 <= this x distinct
FREE_TEXT_SHARE = 0.5  # text distinct on more than this share of the rows: free text ...
MAX_CATEGORIES = 1000  # ... and so is text with more distinct values than this
LONG_TEXT_CHARS = 30  # text this long on average, with spaces in most values, reads as prose
DATE_SHARE = 0.9  # text of which this share (of a sample) parses as dates: a date column
DATE_SAMPLE = 500  # distinct values looked at to recognise dates
# --- leaks: one column alone predicting the label near perfectly --------------------------
LEAK_AUC = 0.99  # cross-validated ROC-AUC of the column alone (binned, see `leak_auc`), at or above: a leak
# (multiclass: the mean of each class's one-vs-rest ROC-AUC; regression: `LEAK_R2` below)
LEAK_R2 = 0.99  # cross-validated R^2 of the column alone predicting the target's ranks, at or above: a leak
LEAK_SAMPLE = 20_000  # labelled rows used (a random sample when there are more)
LEAK_FOLDS = 3  # stratified folds
LEAK_BINS = 64  # numbers are cut into this many quantile bins, each scored by its positive rate in training folds
LEAK_MIN_ROWS = 50  # fewer labelled rows: no leak check (a small table separates by chance)
SEED = 0

_DATE = re.compile(
    r"\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{2,4}|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2}|[AaPp][Mm])?)?\s*")


@dataclass(frozen=True)
class ColumnProfile:
    """One column seen once: its family, its values as the rules read them, and its distinct values."""

    family: str  # "number", "bool", "text", "datetime", "duration" or "other"
    values: pd.Series  # numbers as float64, booleans and text as object text (NaN where missing)
    missing: int
    uniques: np.ndarray  # the distinct values that are not missing

    @property
    def distinct(self) -> int:
        return len(self.uniques)


def show_value(value: Any) -> str:
    """A value as messages show it: text quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value)


def plain_value(value: Any) -> Any:
    """A target value as a plain Python value: whole numbers as int, text as stripped str."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return int(number) if number.is_integer() else number
    return str(value).strip()


# --------------------------------------------------------------------------- profiles
def profile(column: pd.Series) -> ColumnProfile:
    """The column's family (from its dtype, or for object columns from its values), its values as
    the rules read them, its missing count and distinct values."""
    dtype = column.dtype
    missing = int(column.isna().sum())
    if pd.api.types.is_bool_dtype(dtype):
        family = "bool"
    elif pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        family = "datetime"
    elif pd.api.types.is_timedelta64_dtype(dtype):
        family = "duration"
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        family = "number"
    elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):  # object too
        found = pd.api.types.infer_dtype(column, skipna=True)
        family = {"string": "text", "boolean": "bool", "integer": "number", "floating": "number",
                  "mixed-integer-float": "number", "decimal": "number", "empty": "number", "datetime": "datetime",
                  "datetime64": "datetime", "date": "datetime", "time": "datetime", "timedelta": "duration",
                  "mixed": "text", "mixed-integer": "text", "categorical": "text"}.get(found, "other")
        if found.startswith("mixed") and not column.dropna().map(_scalar).all():
            family = "other"  # lists, dicts, bytes among the values
    else:
        family = "other"
    if family == "number":
        values = pd.Series(pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan),
                           index=column.index)
    elif family in ("bool", "text"):
        values = as_text(column)
    else:
        values = column
    try:
        uniques = pd.unique(values.to_numpy())
    except TypeError:  # lists, dicts: not hashable
        return ColumnProfile("other", column, missing, np.array([], dtype=object))
    return ColumnProfile(family, values, missing, uniques[~pd.isna(uniques)])


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, np.generic))


def _looks_like_dates(uniques: np.ndarray) -> bool:
    present = pd.Series(uniques[:DATE_SAMPLE], dtype=object)
    if present.empty:
        return False
    shaped = present[present.map(lambda v: bool(_DATE.fullmatch(v)))]
    if len(shaped) < DATE_SHARE * len(present):
        return False
    parsed = pd.to_datetime(shaped, errors="coerce", format="mixed")
    return bool(parsed.notna().sum() >= DATE_SHARE * len(present))


def _is_prose(uniques: np.ndarray) -> bool:
    sample = pd.Series(uniques[:1000], dtype=object)
    return bool(len(sample)) and sample.str.len().mean() >= LONG_TEXT_CHARS and sample.str.contains(" ").mean() >= 0.5


def exclusion_reason(p: ColumnProfile, n_rows: int) -> str | None:
    """Why a column should not be a feature (any rule but leaks), or None."""
    present = n_rows - p.missing
    if p.family == "other":
        return "values of an unsupported type (lists, objects, bytes): only numbers, text and booleans are features"
    if p.family == "duration":
        return "a duration (timedelta) column: convert it to a number (e.g. seconds) to use it"
    if n_rows and p.missing > MISSING_MAX * n_rows:
        return f"almost all missing ({p.missing / n_rows:.1%} of rows)"
    if p.distinct <= 1:
        shown = "" if p.distinct == 0 else f" ({show_value(plain_value(p.uniques[0]))})"
        return f"constant: every row with a value holds the same one{shown}"
    if p.family == "datetime":
        return "dates / timestamps: derive numbers from them (e.g. the month) to use them"
    if p.family == "text" and _looks_like_dates(p.uniques):
        return "dates / timestamps (text that parses as dates): derive numbers from them to use them"
    share = p.distinct / present
    if p.family == "text":
        prose = _is_prose(p.uniques)
        if share >= ID_DISTINCT_SHARE and present > ID_MIN_ROWS and not prose:
            return f"an identifier: distinct on {share:.1%} of rows"
        if p.distinct > MAX_CATEGORIES or (share > FREE_TEXT_SHARE and (present > ID_MIN_ROWS or prose)):
            return (f"free text: {p.distinct:,} distinct values ({share:.1%} of rows, "
                    f"{pd.Series(p.uniques[:1000], dtype=object).str.len().mean():.0f} characters on average)")
    if p.family == "number" and share >= ID_DISTINCT_SHARE and present > ID_MIN_ROWS:
        v = p.values.dropna().to_numpy()
        if (v == np.round(v)).all():
            in_sequence = bool((np.diff(v) > 0).all()) or (v.max() - v.min() + 1) <= ID_SPAN * p.distinct
            if in_sequence:
                return f"an identifier: whole numbers in sequence, distinct on {share:.1%} of rows"
    return None


# --------------------------------------------------------------------------- leaks
def _codes(p: ColumnProfile, rows: np.ndarray) -> np.ndarray:
    """The column on `rows` as small integer codes: categories as they are, numbers in at most
    LEAK_BINS quantile bins (a value of its own where missing)."""
    if p.family != "number":
        return pd.factorize(p.values.to_numpy()[rows], use_na_sentinel=False)[0]
    x = p.values.to_numpy()[rows]
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(len(x), dtype=np.int64)
    edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, LEAK_BINS + 1)[1:-1]))
    return np.where(finite, np.searchsorted(edges, np.where(finite, x, 0.0), side="right") + 1, 0)


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of a score taking few distinct values (ties count one half), from counts per value."""
    values, at = np.unique(score, return_inverse=True)
    pos = np.bincount(at, weights=labels, minlength=len(values))
    neg = np.bincount(at, minlength=len(values)) - pos
    below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))  # negatives scored lower than each value
    return float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))


def _folds(labels: np.ndarray, k: int) -> np.ndarray:
    """A stratified fold number (0..k-1) for each row, shuffled with SEED (classes in label order)."""
    rng = np.random.default_rng(SEED)
    fold = np.empty(len(labels), dtype=np.int64)
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % k
    return fold


def leak_auc(p: ColumnProfile, labels: np.ndarray, rows: np.ndarray) -> float | None:
    """Cross-validated ROC-AUC of the column alone on the labelled rows `rows` (None: not checked):
    each code (category or bin) scored by its positive rate in the training folds. `labels` are
    the model's labels (1.0, 0.0, NaN where unlabelled)."""
    y = labels[rows].astype(np.int64)
    k = min(LEAK_FOLDS, int(np.bincount(y, minlength=2).min()))
    if k < 2 or p.family not in ("number", "bool", "text"):
        return None
    x = _codes(p, rows)
    size = int(x.max()) + 1
    fold = _folds(y, k)
    aucs = []
    for i in range(k):
        train, test = fold != i, fold == i
        counts = np.bincount(x[train], minlength=size)
        hits = np.bincount(x[train], weights=y[train], minlength=size)
        rate = np.where(counts > 0, hits / np.maximum(counts, 1), y[train].mean())  # unseen: the overall rate
        aucs.append(_auc(y[test], rate[x[test]]))
    return float(np.mean(aucs))


def _code_scores(total: np.ndarray, seen: np.ndarray, fallback: float, ordered: bool) -> np.ndarray:
    """Each code's mean score in the training folds (`total` / `seen`); a code no training row
    holds takes, for ordered codes (number bins; code 0 the missing values), the nearest bin's
    score, else `fallback` (so a few rows spread over many bins still show a column that
    separates the target)."""
    score = np.where(seen > 0, total / np.maximum(seen, 1), fallback)
    known = np.flatnonzero(seen[1:] > 0) + 1
    if ordered and len(known) and len(known) < len(seen) - 1:
        codes = np.arange(1, len(seen))
        at = np.clip(np.searchsorted(known, codes), 0, len(known) - 1)
        left, right = known[np.clip(at - 1, 0, len(known) - 1)], known[at]
        nearest = np.where(np.abs(codes - left) <= np.abs(right - codes), left, right)
        score[1:] = np.where(seen[1:] > 0, score[1:], score[nearest])
    return score


def leak_auc_multiclass(p: ColumnProfile, labels: np.ndarray, rows: np.ndarray) -> float | None:
    """`leak_auc` for a multiclass label (the class positions 0..k-1, NaN where unlabelled): in
    each fold, each code scored by each class's rate in the training folds; the mean over classes
    of the one-vs-rest ROC-AUC, averaged over the folds (None: not checked). A number bin no
    training row holds is scored as its nearest bin (`_code_scores`)."""
    y = labels[rows].astype(np.int64)
    present = np.flatnonzero(np.bincount(y))
    if len(present) < 2 or p.family not in ("number", "bool", "text"):
        return None
    x = _codes(p, rows)
    size, ordered = int(x.max()) + 1, p.family == "number"
    k = LEAK_FOLDS  # a class with fewer rows than folds is scored in the folds that hold it
    fold = _folds(y, k)
    aucs = []
    for i in range(k):
        train, test = fold != i, fold == i
        seen = np.bincount(x[train], minlength=size)
        per_class = []
        for c in present:
            hit = (y == c).astype(np.float64)
            rate = _code_scores(np.bincount(x[train], weights=hit[train], minlength=size), seen, hit[train].mean(),
                                ordered)
            if 0 < hit[test].sum() < test.sum():
                per_class.append(_auc(hit[test], rate[x[test]]))
        if per_class:
            aucs.append(float(np.mean(per_class)))
    return float(np.mean(aucs)) if aucs else None


def leak_r2(p: ColumnProfile, labels: np.ndarray, rows: np.ndarray) -> float | None:
    """For a regression label (the numbers, NaN where unlabelled): the cross-validated R^2 of the
    column alone predicting the target's ranks, each code (category or bin) scored by the mean
    rank in the training folds (ranks: one scale whatever the target's skew; None: not checked)."""
    y = labels[rows]
    if len(np.unique(y)) < 2 or p.family not in ("number", "bool", "text"):
        return None
    ranks = pd.Series(y).rank(pct=True).to_numpy()
    x = _codes(p, rows)
    size, ordered = int(x.max()) + 1, p.family == "number"
    fold = np.random.default_rng(SEED).permutation(len(y)) % LEAK_FOLDS
    predicted = np.empty(len(y))
    for i in range(LEAK_FOLDS):
        train, test = fold != i, fold == i
        seen = np.bincount(x[train], minlength=size)
        total = np.bincount(x[train], weights=ranks[train], minlength=size)
        predicted[test] = _code_scores(total, seen, ranks[train].mean(), ordered)[x[test]]
    spread = float(((ranks - ranks.mean()) ** 2).sum())
    return 1.0 - float(((ranks - predicted) ** 2).sum()) / spread if spread > 0 else None


def leak_rows(labels: np.ndarray) -> np.ndarray | None:
    """The labelled rows the leak check looks at (at most LEAK_SAMPLE, drawn with SEED), or None
    when there are fewer than LEAK_MIN_ROWS."""
    labelled = np.flatnonzero(~np.isnan(labels))
    if len(labelled) < LEAK_MIN_ROWS:
        return None
    if len(labelled) <= LEAK_SAMPLE:
        return labelled
    return np.sort(np.random.default_rng(SEED).choice(labelled, LEAK_SAMPLE, replace=False))


def leak_reason(p: ColumnProfile, labels: np.ndarray, rows: np.ndarray, task: str = "binary") -> str | None:
    """The reason "a leak: ..." when the column alone predicts the label near perfectly: for a
    binary label (1.0, 0.0, NaN) ROC-AUC >= LEAK_AUC; multiclass (class positions) the mean
    one-vs-rest ROC-AUC >= LEAK_AUC; regression (numbers) R^2 on the target's ranks >= LEAK_R2."""
    score, limit, measure = _LEAK_MEASURES[task]
    value = score(p, labels, rows)
    if value is None or value < limit:
        return None
    return f"a leak: alone it predicts the target with {measure} {value:.3f} (a copy or a consequence of the label?)"


# the leak measure of each task kind: (score, threshold, its name in the reason)
_LEAK_MEASURES = {
    "binary": (leak_auc, LEAK_AUC, "ROC-AUC"),
    "multiclass": (leak_auc_multiclass, LEAK_AUC, "one-vs-rest ROC-AUC (mean over classes)"),
    "regression": (leak_r2, LEAK_R2, "R² (on its ranks)"),
}
