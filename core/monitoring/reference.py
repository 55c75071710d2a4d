"""The training reference of the drift checks: a compact summary of every training column.

Continuous columns (numeric features with a range) are summarised by their cumulative shares on
a fixed 2,000-bin grid over the training range (`grid_counts`) and their PSI bins (`psi_edges`:
deciles that respect repeated values, so a point mass never sits on a bin edge);
discrete ones (numeric features with a list of allowed values in the dataset definition) by
their values' shares; categorical ones (text categories) by each training category's share of
the training rows and the share of missing values. Numeric summaries are computed on the
non-missing values; every column also keeps how many values were missing (`n_missing`).
`core/monitoring/statistics.py` compares any batch with it in one pass.

The reference is computed once from `base_train` and stored as JSON under
`data/09_monitoring/`; it is recomputed only when the training file's digest changes. The digest
is kept with the file's size and modification time, so a check re-hashes the training file only
when one of those changed (`load_reference`).
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
REFERENCE_VERSION = 5  # 3: missing values and categorical features; 4: PSI bins on repeated values;
# 5: PSI shares by linear binning between the bins' middles
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
    psi_cuts: tuple[int, ...] = ()  # unused since version 4 (PSI bins were grid bins)
    psi_edges: tuple[float, ...] = ()  # PSI bin edges (values; see `psi_edges`)
    psi_share: tuple[float, ...] = ()  # the reference's share of each PSI bin (`psi_shares`)
    psi_nodes: tuple[float, ...] = ()  # each PSI bin's middle (`psi_nodes`; len(psi_edges) + 1)
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


def psi_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """PSI bin edges of a reference column that respect its repeated values.

    Decile bins cut at the quantiles put a value held by many rows (Kobe: 23 % of `lat` is the
    hoop's 34.0443, 23 % of `shot_distance` is 0) on a bin edge, where the slightest shift moves
    the whole mass into the next bin (PSI 0.93 for a `lat` shift of 0.01 standard deviation).
    Here bins are groups of whole distinct values: a bin ends after the value holding each decile,
    a value with at least 1/`bins` of the rows is a bin of its own, and each edge lies between
    two groups: half-way between their nearest values, or, next to a heavy value, half-way
    between it and the middle (weighted median) of the neighbouring group, so that neither side
    of the edge holds a mass close to it. Returns the edges, increasing (empty for a constant
    column); a value equal to an edge belongs to the bin above it (`np.searchsorted(...,
    side="right")`).
    """
    u, c = np.unique(np.asarray(values, dtype="float64"), return_counts=True)
    if len(u) < 2:
        return np.empty(0)
    share = c / c.sum()
    cdf = np.cumsum(share)
    heavy = share >= 1.0 / bins
    # a boundary after index i splits u[i] from u[i + 1]
    after = set(np.searchsorted(cdf, np.arange(1, bins) / bins - 1e-12).tolist())
    for i in np.flatnonzero(heavy).tolist():
        after.update((i - 1, i))
    cuts = sorted(b for b in after if 0 <= b < len(u) - 1)
    cuts = _merge_slivers(cuts, c, heavy, 0.5 / bins)
    starts = [0, *(b + 1 for b in cuts)]
    ends = [*cuts, len(u) - 1]

    def middle(g: int) -> float:  # the weighted median of group g
        lo, hi = starts[g], ends[g] + 1
        k = lo + int(np.searchsorted(np.cumsum(c[lo:hi]), c[lo:hi].sum() / 2))
        return float(u[min(k, hi - 1)])

    def single_heavy(g: int) -> bool:
        return starts[g] == ends[g] and bool(heavy[starts[g]])

    edges = []
    for g in range(len(cuts)):
        left_heavy, right_heavy = single_heavy(g), single_heavy(g + 1)
        if left_heavy == right_heavy:  # the gap between the two groups' nearest values
            edges.append((float(u[ends[g]]) + float(u[starts[g + 1]])) / 2)
            continue
        x = float(u[ends[g]] if left_heavy else u[starts[g + 1]])
        edge = (x + middle(g + 1 if left_heavy else g)) / 2
        # never on a value: the middle of the gap around it, on the side away from the heavy value
        k = int(np.searchsorted(u, edge))
        if k < len(u) and u[k] == edge:
            k = k if left_heavy else k - 1
            edge = (float(u[k]) + float(u[k + 1])) / 2 if 0 <= k < len(u) - 1 else edge
        edges.append(edge)
    return np.unique(np.asarray(edges))


def _merge_slivers(cuts: list[int], counts: np.ndarray, heavy: np.ndarray, least: float) -> list[int]:
    """Drop the decile boundary that leaves a group of less than `least` of the rows between it
    and a heavy value: the sliver joins its other neighbour, so the edge next to the heavy value
    lies away from it (Kobe's `lat`: 1 % of the rows between the 7th decile and the hoop)."""
    bounds = [-1, *cuts, len(counts) - 1]
    total = counts.sum()
    drop = set()
    for g in range(len(bounds) - 1):
        lo, hi = bounds[g] + 1, bounds[g + 1]
        if lo == hi and heavy[lo] or counts[lo:hi + 1].sum() / total >= least:
            continue
        left_heavy = g > 0 and bounds[g - 1] + 1 == bounds[g] and heavy[bounds[g]]
        right_heavy = g + 2 < len(bounds) and hi + 1 == bounds[g + 2] and heavy[hi + 1]
        if left_heavy and not right_heavy and g + 1 < len(bounds) - 1:
            drop.add(hi)  # joins the group above
        elif right_heavy and not left_heavy and g > 0:
            drop.add(bounds[g])  # joins the group below
    return [b for b in cuts if b not in drop]


def psi_nodes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The middle of each PSI bin: the median of the reference values in it (the lower one of an
    even count, so always a value; a heavy value's own bin has it as its middle)."""
    v = np.sort(np.asarray(values, dtype="float64"))
    bounds = np.searchsorted(v, np.asarray(edges, dtype="float64"), side="left")
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(v)]
    return np.asarray([v[a + (b - a - 1) // 2] for a, b in zip(starts, ends) if b > a])


def psi_shares(grid: np.ndarray, lo: float, hi: float, nodes: np.ndarray) -> np.ndarray:
    """The shares of the PSI bins from counts on the grid (`grid_counts`: `bins` + 2 slots), by
    linear binning between the bins' middles (`nodes`): a value between two middles counts for
    both bins, in proportion to how near it is to each (all of it to the first or last bin beyond
    the outer middles).

    Why not plain bins: a share moves from one bin to the next only when values cross an edge,
    so a point mass (23 % of Kobe's `shot_distance` is 0 ft) shifted past its bin's edge empties
    the bin at once, and the empty bin's term, 0.23 x ln(0.23 / 1e-4) = 1.8, is set by the floor
    of the shares rather than by the data: PSI jumped from 0.06 (+1 ft) to 2.49 (+2 ft). Shared
    between middles, a value's weight moves gradually with it, so PSI grows with the shift; on
    an unchanged distribution the shares equal the bins' (deciles) within the grid's resolution.
    Values are placed at their grid bin's centre (1/2,000 of the training range).
    """
    g = np.asarray(grid, dtype="float64")
    bins = len(g) - 2
    nodes = np.asarray(nodes, dtype="float64")
    m = len(nodes)
    total = g.sum()
    if m <= 1 or total == 0:
        return np.ones(max(m, 1))
    centres = lo + (np.arange(bins) + 0.5) * ((hi - lo) / bins)
    k = np.clip(np.searchsorted(nodes, centres, side="right") - 1, 0, m - 2)
    frac = np.clip((centres - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
    inside = g[1:-1]
    share = np.bincount(k, weights=inside * (1.0 - frac), minlength=m)
    share += np.bincount(k + 1, weights=inside * frac, minlength=m)
    share[0] += g[0]
    share[-1] += g[-1]
    return share / total


def column_reference(values: np.ndarray, kind: str, psi_bins: int = 10) -> ColumnReference:
    """Reference summary of one column (finite doubles).

    Continuous columns: cumulative shares on the grid (Wasserstein distance, KS statistic and the
    charts' histogram), and the PSI bins of `psi_edges`, their middles and the reference's share
    of each (`psi_shares`).
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
    grid = grid_counts(v, lo, hi)
    cdf = np.cumsum(grid[1:-1]) / len(v)
    edges = psi_edges(v, psi_bins)
    nodes = psi_nodes(v, edges)
    share = psi_shares(grid, lo, hi, nodes)
    return ColumnReference(**base, psi_edges=tuple(float(e) for e in edges),
                           psi_share=tuple(float(x) for x in share), psi_nodes=tuple(float(x) for x in nodes),
                           grid_cdf=tuple(round(float(c), 9) for c in cdf))


@dataclass(frozen=True)
class TrainingReference:
    """Reference statistics of the training split, keyed by the file's digest."""

    train_digest: str
    n_rows: int
    columns: dict[str, ColumnReference]
    positive_rate: float | None
    version: int = REFERENCE_VERSION
    # the training file's size and modification time when `train_digest` was taken: while both
    # stay the same the file is not hashed again
    train_size: int = 0
    train_mtime_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "train_digest": self.train_digest, "n_rows": self.n_rows,
                "positive_rate": self.positive_rate, "train_size": self.train_size,
                "train_mtime_ns": self.train_mtime_ns,
                "columns": {k: v.to_dict() for k, v in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainingReference":
        return cls(train_digest=d["train_digest"], n_rows=int(d["n_rows"]),
                   positive_rate=d.get("positive_rate"), version=int(d.get("version", 0)),
                   train_size=int(d.get("train_size", 0)), train_mtime_ns=int(d.get("train_mtime_ns", 0)),
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


def sample_path(settings: Settings, digest: str) -> Path:
    """Where the bounded sample of the training rows (for the domain classifier) is stored."""
    return settings.monitoring_dir / f"train_sample-{digest[:16]}.parquet"


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _read_stored(settings: Settings) -> TrainingReference | None:
    """The stored reference when it reads and covers the active feature set, else None."""
    path = reference_path(settings)
    if not path.exists():
        return None
    try:
        stored = TrainingReference.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable or from an older layout: rebuilt by `load_reference`
    # a reference covers the features of the feature set it was built for: another set rebuilds it
    if not (stored.version == REFERENCE_VERSION and set(settings.features) <= set(stored.columns)):
        return None
    return stored


def stored_reference(settings: Settings) -> TrainingReference | None:
    """The stored training reference when `load_reference` would return it as it is, with its
    training sample in place; None when a check would first (re)write either. Reads only: a
    check of a batch not validated yet asks it before anything is written (`stream.check_file`)."""
    train_path = settings.train_path
    if not train_path.exists():
        return None
    stored = _read_stored(settings)
    if stored is None or (stored.train_size, stored.train_mtime_ns) != _stamp(train_path):
        return None
    return stored if sample_path(settings, stored.train_digest).exists() else None


def load_reference(settings: Settings) -> TrainingReference:
    """The stored training reference; (re)computed only when `base_train`'s digest changed (or
    the stored one lacks a feature of the active feature set). The file is hashed only when its
    size or modification time differs from the stored reference's."""
    train_path = settings.train_path
    if not train_path.exists():
        raise NotPreparedError(
            "No training data yet: prepare it first (Data page, or `python -m core prepare`)."
        )
    size, mtime = _stamp(train_path)
    path = reference_path(settings)
    stored = _read_stored(settings)
    if stored is not None and (stored.train_size, stored.train_mtime_ns) == (size, mtime):
        return stored
    digest = sha256_file(train_path)
    if stored is not None and stored.train_digest == digest:  # touched, not changed
        ref = dataclasses.replace(stored, train_size=size, train_mtime_ns=mtime)
    else:
        train = pd.read_parquet(train_path)
        ref = dataclasses.replace(build_reference(train, settings, digest), train_size=size, train_mtime_ns=mtime)
        _write_sample(train, settings, digest)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(ref.to_dict())))
    return ref


def _write_sample(train: pd.DataFrame, settings: Settings, digest: str) -> Path:
    """Store up to `domain_sample` training rows (seeded), the domain classifier's training side."""
    k = min(settings.drift.domain_sample, len(train))
    rows = train.sample(n=k, random_state=settings.seed).sort_index() if k < len(train) else train
    out = sample_path(settings, digest)
    atomic_write(out, lambda tmp: rows.to_parquet(tmp, index=False))
    return out


def training_sample(settings: Settings, ref: TrainingReference, columns: tuple[str, ...]) -> pd.DataFrame:
    """A bounded sample of the training rows (`domain_sample` of them, stored with the reference:
    a check does not read the whole training file again)."""
    path = sample_path(settings, ref.train_digest)
    if not path.exists():
        _write_sample(pd.read_parquet(settings.train_path), settings, ref.train_digest)
    return pd.read_parquet(path, columns=list(columns))
