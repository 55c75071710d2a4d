"""The training reference of the drift checks: a compact summary of every training column.

Continuous columns (numeric features with a range) are summarised by their cumulative shares on
a fixed 2,000-bin grid over the training range (`grid_counts`) and their PSI decile cuts;
discrete ones (numeric features with a list of allowed values in the dataset definition) by
their values' shares; categorical ones (text categories) by each training category's share of
the training rows and the share of missing values. Numeric summaries are computed on the
non-missing values; every column also keeps how many values were missing (`n_missing`).
`core/monitoring/statistics.py` compares any batch with it in one pass.

The reference is computed once from `base_train` and stored as JSON under
`data/09_monitoring/`; it is recomputed only when the training file's digest changes.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.config import Settings
from core.data.columns import as_text
from core.errors import NotPreparedError
from core.files import atomic_write, sha256_file

GRID_BINS = 2000
HIST_BINS = 40  # coarse histogram for charts (divides GRID_BINS)
REFERENCE_VERSION = 3  # 3: missing values and categorical features
CHUNK = 1 << 16


# --------------------------------------------------------------------------- reference
@dataclass(frozen=True)
class ColumnReference:
    """Summary of one reference column, enough to compare any batch against it.

    `n` counts the non-missing values, `n_missing` the missing ones. Numeric columns: `min` ..
    `std` and the shares are of the non-missing values. Categorical columns: `categories` are the
    training categories (most frequent first), `category_share` their shares of all training rows
    (so that they and `missing_share` sum to 1); `min` .. `std` are None.
    """

    kind: str  # "continuous", "discrete" or "categorical"
    n: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    psi_cuts: tuple[int, ...] = ()  # grid bins where PSI bins start
    psi_edges: tuple[float, ...] = ()  # the same cuts as values
    psi_share: tuple[float, ...] = ()
    grid_cdf: tuple[float, ...] = ()  # cumulative share at the right edge of each grid bin
    categories: tuple[Any, ...] = ()  # numbers (discrete) or text (categorical)
    category_share: tuple[float, ...] = ()
    n_missing: int = 0

    @property
    def missing_share(self) -> float:
        """The share of the reference rows whose value is missing (0..1)."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ColumnReference":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _span(lo: float, hi: float) -> tuple[float, float]:
    """The grid's range: the reference [min, max], widened to 1 when min == max."""
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def grid_counts(values: np.ndarray, lo: float, hi: float, bins: int = GRID_BINS) -> np.ndarray:
    """Counts of `values` on `bins` equal bins over [lo, hi], plus one slot each side:
    index 0 counts values below `lo`, index `bins + 1` values above `hi`.

    One pass in cache-sized chunks (as `np.histogram` does), a few ms per million values.
    """
    v = np.asarray(values, dtype="float64")
    scale = bins / (hi - lo)
    shift = 1.0 - lo * scale
    counts = np.zeros(bins + 2, dtype=np.int64)
    for start in range(0, len(v), CHUNK):
        f = v[start:start + CHUNK] * scale
        f += shift
        np.clip(f, 0.0, bins + 0.5, out=f)
        idx = f.astype(np.intp)
        np.minimum(idx, bins, out=idx)  # a value equal to hi belongs to the last bin
        counts += np.bincount(idx, minlength=bins + 2)[: bins + 2]
    above = int(np.count_nonzero(v > hi))
    counts[bins] -= above
    counts[bins + 1] += above
    return counts


def column_reference(values: np.ndarray, kind: str, psi_bins: int = 10) -> ColumnReference:
    """Reference summary of one column (finite doubles).

    Continuous columns: cumulative shares on the grid, and PSI bins cut at the grid boundaries
    nearest the reference deciles (so a batch's PSI shares come from the same single pass).
    """
    v = np.asarray(values, dtype="float64")
    if len(v) == 0:
        raise NotPreparedError("The reference data is empty: prepare the data again (Data page).")
    base = dict(kind=kind, n=int(len(v)), min=float(v.min()), max=float(v.max()),
                mean=float(v.mean()), std=float(v.std()))
    if kind == "discrete":
        cats, counts = np.unique(v, return_counts=True)
        return ColumnReference(**base, categories=tuple(float(c) for c in cats),
                               category_share=tuple(float(c) for c in counts / len(v)))
    lo, hi = _span(base["min"], base["max"])
    inside = grid_counts(v, lo, hi)[1:-1]
    cdf = np.cumsum(inside) / len(v)
    deciles = np.quantile(v, np.linspace(0, 1, psi_bins + 1)[1:-1])
    cuts = np.unique(np.clip(np.round((deciles - lo) / (hi - lo) * GRID_BINS), 1, GRID_BINS - 1).astype(int))
    share = np.diff(np.r_[0.0, cdf[cuts - 1], 1.0])
    return ColumnReference(**base, psi_cuts=tuple(int(c) for c in cuts),
                           psi_edges=tuple(float(lo + c * (hi - lo) / GRID_BINS) for c in cuts),
                           psi_share=tuple(float(x) for x in share),
                           grid_cdf=tuple(round(float(c), 9) for c in cdf))


@dataclass(frozen=True)
class TrainingReference:
    """Reference statistics of the training split, keyed by the file's digest."""

    train_digest: str
    n_rows: int
    columns: dict[str, ColumnReference]
    positive_rate: float | None
    version: int = REFERENCE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "train_digest": self.train_digest, "n_rows": self.n_rows,
                "positive_rate": self.positive_rate,
                "columns": {k: v.to_dict() for k, v in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainingReference":
        return cls(train_digest=d["train_digest"], n_rows=int(d["n_rows"]),
                   positive_rate=d.get("positive_rate"), version=int(d.get("version", 0)),
                   columns={k: ColumnReference.from_dict(v) for k, v in d["columns"].items()})


def categorical_reference(column: pd.Series) -> ColumnReference:
    """Reference summary of one categorical column (text, missing values allowed): each category's
    share of all rows, most frequent first (ties by name), and the missing values' count."""
    text = column if column.dtype == object else as_text(column)
    counts = text.value_counts(dropna=True)
    counts = counts.sort_index(key=lambda idx: idx.map(str)).sort_values(ascending=False, kind="stable")
    total = len(text)
    if total == 0:
        raise NotPreparedError("The reference data is empty: prepare the data again (Data page).")
    n = int(counts.sum())
    return ColumnReference(kind="categorical", n=n, min=None, max=None, mean=None, std=None,
                           categories=tuple(str(c) for c in counts.index),
                           category_share=tuple(float(c) / total for c in counts.to_numpy()),
                           n_missing=total - n)


def feature_reference(name: str, column: pd.Series, kind: str, psi_bins: int = 10) -> ColumnReference:
    """Reference summary of one training feature of any kind; numbers summarised on their
    non-missing values (`n_missing` counts the others)."""
    if kind == "categorical":
        return categorical_reference(column)
    v = column.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(v)
    n_missing = int(np.count_nonzero(missing))
    if n_missing:
        v = v[~missing]
        if len(v) == 0:
            raise NotPreparedError(f"{name}: every training value is missing, so there is nothing to compare "
                                   "batches with; fix the data (or leave the feature out) and prepare it again.")
    ref = column_reference(v, kind, psi_bins)
    return dataclasses.replace(ref, n_missing=n_missing) if n_missing else ref


def kind_of(spec: Any, feature: str) -> str:
    """'categorical' for a feature of text categories, 'discrete' for a numeric feature whose
    definition lists its allowed values, else 'continuous'."""
    f = spec.feature(feature)
    if f.kind == "categorical":
        return "categorical"
    return "discrete" if f.discrete else "continuous"


def build_reference(train: pd.DataFrame, settings: Settings, digest: str) -> TrainingReference:
    """Reference statistics of a training frame (not stored)."""
    cols = {f: feature_reference(f, train[f], kind_of(settings.dataset, f), settings.drift.psi_bins)
            for f in settings.features}
    rate = float(train[settings.target].mean()) if settings.target in train else None
    return TrainingReference(train_digest=digest, n_rows=len(train), columns=cols, positive_rate=rate)


def reference_path(settings: Settings) -> Path:
    """Where the training reference is stored."""
    return settings.monitoring_dir / "train_reference.json"


def load_reference(settings: Settings) -> TrainingReference:
    """The stored training reference; (re)computed only when `base_train`'s digest changed (or
    the stored one lacks a feature of the active feature set)."""
    train_path = settings.train_path
    if not train_path.exists():
        raise NotPreparedError(
            "No training data yet: prepare it first (Data page, or `python -m core prepare`)."
        )
    digest = sha256_file(train_path)
    path = reference_path(settings)
    if path.exists():
        try:
            stored = TrainingReference.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            stored = None  # unreadable or from an older layout: rebuilt below
        # a reference covers the features of the feature set it was built for: another set rebuilds it
        if (stored is not None and stored.train_digest == digest and stored.version == REFERENCE_VERSION
                and set(settings.features) <= set(stored.columns)):
            return stored
    ref = build_reference(pd.read_parquet(train_path), settings, digest)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(ref.to_dict())))
    return ref
