"""Counting a batch's values against the training reference: what every drift statistic
(`core.monitoring.statistics`) is computed from.

One `ColumnCounts` per column, filled by `add` one chunk at a time. Counts of chunks add up, so a
batch too large for memory is counted record batch by record batch (`core.monitoring.stream`)
and gives the same statistics as the whole batch at once:

- continuous: counts on the reference's 2,000-bin grid (plus one slot below and one above the
  training range, from which the PSI bins' shares come too), the sums of the distances below and
  above it, and how many values lie below and above the training [min, max]
  (`core.data.profile.outside_range`, the count the Production verdict uses too);
- discrete: counts of each training value and of the other values, how many lie outside the
  training [min, max];
- categorical: counts of each category (text);
- every kind: the number of values, of missing values, and the sum of the values (the mean).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.columns import as_text
from core.data.profile import outside_range
from core.monitoring.reference import CHUNK, GRID_BINS, ColumnReference, _span, grid_counts

WHOLE = 1024  # discrete values that are whole numbers in [0, WHOLE) are counted by one bincount


@dataclass
class ColumnCounts:
    """The running counts of one batch column (see the module docstring); `add` a chunk at a time."""

    ref: ColumnReference = field(repr=False)
    n: int = 0  # non-missing values
    n_missing: int = 0
    total: float = 0.0  # sum of the non-missing values (numeric)
    grid: np.ndarray | None = field(default=None, repr=False)  # continuous
    below: float = 0.0  # continuous: sum of (min - v) over the values below the training range
    above: float = 0.0  # ... and of (v - max) over those above it
    known: np.ndarray | None = field(default=None, repr=False)  # discrete: counts of the training values
    other: int = 0  # discrete: values never seen in training
    outside: int = 0  # values outside the training [min, max] (`profile.outside_range`)
    n_below: int = 0  # continuous: values below the training min
    n_above: int = 0  # ... and above its max
    categories: pd.Series | None = field(default=None, repr=False)  # categorical: counts by category

    @property
    def rows(self) -> int:
        return self.n + self.n_missing

    def add(self, values: np.ndarray | pd.Series) -> "ColumnCounts":
        """Count one chunk (numeric: doubles, NaN where missing; categorical: text, NaN where
        missing); returns self."""
        if self.ref.kind == "categorical":
            self._add_categories(values if isinstance(values, pd.Series) else pd.Series(values))
            return self
        v = np.asarray(values, dtype="float64")
        missing = np.isnan(v)
        k = int(np.count_nonzero(missing))
        if k:
            self.n_missing += k
            v = v[~missing]
        if len(v) == 0:
            return self
        if self.ref.kind == "continuous":
            self._add_continuous(v)
        else:
            self._add_discrete(v)
        self.n += len(v)
        return self

    def _add_continuous(self, v: np.ndarray) -> None:
        ref = self.ref
        lo, hi = _span(ref.min, ref.max)
        counts = grid_counts(v, lo, hi)
        if counts[0]:
            self.below += float((lo - v[v < lo]).sum())
        if counts[-1]:
            self.above += float((v[v > hi] - hi).sum())
        self.grid = counts if self.grid is None else self.grid + counts
        low, high = outside_range(v, ref.min, ref.max)
        self.n_below += low
        self.n_above += high
        self.outside += low + high
        self.total += float(v.sum())

    def _add_discrete(self, v: np.ndarray) -> None:
        ref = self.ref
        cats = np.asarray(ref.categories, dtype="float64")
        full = np.zeros(WHOLE + 2, dtype=np.int64)
        fractional = 0
        for start in range(0, len(v), CHUNK):
            chunk = v[start:start + CHUNK]
            with np.errstate(invalid="ignore"):  # a huge value casts to garbage, counted as fractional
                iv = chunk.astype(np.intp)
            fractional += int(np.count_nonzero(iv != chunk))
            np.clip(iv, -1, WHOLE, out=iv)
            iv += 1
            full += np.bincount(iv, minlength=WHOLE + 2)
        whole_cats = bool(np.all((cats == np.round(cats)) & (cats >= 0) & (cats < WHOLE)))
        if whole_cats and fractional == 0 and full[0] == 0 and full[-1] == 0:
            inner = full[1:-1]
            known = inner[cats.astype(np.intp)]
            total = float(np.dot(np.arange(WHOLE), inner))
            lo, hi = int(np.ceil(ref.min)), int(np.floor(ref.max))
            outside = int(inner[:max(lo, 0)].sum() + inner[hi + 1:].sum())
        else:  # fractions, negative or large numbers: sort them
            vals, c = np.unique(v, return_counts=True)
            lookup = dict(zip(vals.tolist(), c.tolist()))
            known = np.array([lookup.get(x, 0) for x in cats.tolist()], dtype=np.int64)
            total = float(v.sum())
            outside = sum(outside_range(v, ref.min, ref.max))
        self.known = known if self.known is None else self.known + known
        self.other += int(len(v) - known.sum())
        self.outside += outside
        self.total += total

    def _add_categories(self, column: pd.Series) -> None:
        text = column if column.dtype == object else as_text(column)
        counts = text.value_counts(dropna=True)
        if not all(isinstance(c, str) for c in counts.index):  # an object column holding numbers
            counts = counts.groupby(counts.index.map(str)).sum()
        present = int(counts.sum())
        self.n += present
        self.n_missing += len(text) - present
        self.categories = counts if self.categories is None else self.categories.add(counts, fill_value=0)


def count(ref: ColumnReference, values: np.ndarray | pd.Series) -> ColumnCounts:
    """The counts of a whole column."""
    return ColumnCounts(ref).add(values)


def grid_total(c: ColumnCounts) -> np.ndarray:
    """The continuous counts on the grid (zeros before any value)."""
    return c.grid if c.grid is not None else np.zeros(GRID_BINS + 2, dtype=np.int64)
