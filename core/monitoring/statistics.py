"""Drift statistics of a batch against the training reference, and the dataset-level verdict.

Every statistic, its definition and its threshold (`core.config.DriftThresholds`; the report
prints them too, `DEFINITIONS`):

- continuous features (numbers with a range) and the prediction:
  - PSI, the population stability index sum((b - r) * ln(b / r)) over the reference's PSI bins
    (`reference.psi_edges`: deciles cut between distinct values, a value held by a tenth of the
    rows a bin of its own, so a point mass never sits on an edge), each value shared between the
    two nearest bins' middles in proportion to its distance (`reference.psi_shares`: linear
    binning, so a point mass that moves shifts its weight gradually instead of emptying its bin
    at once), shares floored at 1e-4; drift from `psi` (0.2). Natural logarithm, as the PSI's
    0.1 / 0.2 rules of thumb assume.
  - Wasserstein distance divided by the reference standard deviation (the mean absolute shift,
    in standard deviations); drift from `wasserstein` (0.1, Evidently's default).
- discrete features (numbers with a list of allowed values) and categorical ones (text): the
  Jensen-Shannon distance sqrt(JSD), JSD in natural-log units (as `scipy.spatial.distance.
  jensenshannon` and Evidently, whose 0.1 threshold this is; between 0 and sqrt(ln 2) = 0.833),
  over the training values, the values never seen in training and (categorical) the missing
  values. Two samples of one distribution over k values differ by chance: their expected JSD is
  about (k - 1) / 8 * (1 / n_batch + 1 / n_reference) (the chi-square approximation of the JSD):
  with nothing changed, 300 rows of Kobe's `action_type` (52 categories) are 0.12 apart, 1,246
  rows of mlc_churn's `state` (51) about 0.1. The verdict therefore uses `js_excess` =
  sqrt(max(JSD - that expectation, 0)), the distance beyond chance; drift from `js` (0.1). On
  large batches the two are equal.
- missing values: numeric statistics use the non-missing values; the missing / present splits
  of training and batch are compared by their JS distance (`missing_js`, same threshold).

Small batches: an effect size measured on a few hundred rows is mostly noise (W/σ about 0.1
between two samples of 126 and 502 rows of one distribution). A statistic therefore fires only
when its effect size reaches its threshold *and* chance does not explain the difference: the KS
(continuous) or chi-square (discrete, categorical, missing share) p-value is below
`significance` (0.05). On a large batch the p-value falls below any level for differences far
too small to matter, so there the effect size alone decides (as Evidently's large-sample rule);
the p-value never flags anything on its own. Dataset drift (`core.monitoring.policy`): at least
`dataset_share` of the features drift, or the domain classifier (`core.monitoring.domain`) tells
batch rows from training rows (its AUC's lower 95 % bound reaches `domain_auc`).

Counting (`core.monitoring.counts`) is apart from the statistics, so a batch read in record
batches (`core.monitoring.stream`) gets the same figures as a batch read at once.

Speed: a batch's values are counted once on a fixed 2,000-bin grid spanning the training range
(`grid_counts`), which gives the Wasserstein distance (to within one bin width; the parts outside
the training range are exact) and the KS statistic and the PSI bins' shares (each grid bin at its
centre). No sort of the batch is needed.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from core.config import DriftThresholds, Settings
from core.monitoring.counts import ColumnCounts, count, grid_total
from core.monitoring.drift_report import DriftStats, FeatureDrift
from core.monitoring.reference import (
    GRID_BINS,
    HIST_BINS,
    ColumnReference,
    TrainingReference,
    _span,
    psi_shares,
)

EPS = 1e-4  # floor of a bin's share in PSI (an empty bin would make it infinite)
MAX_NEW_CATEGORIES = 20  # new categories named in a result (all of them count in the shares)


# --------------------------------------------------------------------------- statistics


def psi(ref_share: np.ndarray, batch_share: np.ndarray, eps: float = EPS) -> float:
    """Population stability index of two share vectors (floored at `eps`)."""
    r = np.maximum(np.asarray(ref_share, dtype="float64"), eps)
    b = np.maximum(np.asarray(batch_share, dtype="float64"), eps)
    return float(np.sum((b - r) * np.log(b / r)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance of two share vectors, natural logarithm (between 0 and
    sqrt(ln 2) = 0.833), as `scipy.spatial.distance.jensenshannon` (written out here: importing
    scipy.spatial costs more than the sum on a handful of shares)."""
    p = np.asarray(p, dtype="float64")
    q = np.asarray(q, dtype="float64")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max(0.5 * kl_p + 0.5 * kl_q, 0.0)))


def js_chance(k: int, n: int, n_ref: int) -> float:
    """The Jensen-Shannon divergence (JSD, natural log) two samples of `n` and `n_ref` rows from
    one distribution over `k` values show on average: (k - 1) / 8 * (1 / n + 1 / n_ref).

    For close share vectors JSD ~ 1/8 * sum((p - q)^2 / m), whose sampling distribution is
    chi-square with k - 1 degrees of freedom scaled by 1/n + 1/n_ref.
    """
    if k < 2 or n <= 0:
        return 0.0
    return (k - 1) / 8.0 * (1.0 / n + (1.0 / n_ref if n_ref > 0 else 0.0))


def js_excess(js: float, k: int, n: int, n_ref: int) -> float:
    """The JS distance beyond chance: sqrt(max(js^2 - js_chance(k, n, n_ref), 0))."""
    return float(np.sqrt(max(js * js - js_chance(k, n, n_ref), 0.0)))


def _chi2_p(ref_share: np.ndarray, n_ref: int, batch_counts: np.ndarray) -> float:
    """Chi-square test of homogeneity of the reference and batch counts (p-value)."""
    table = np.vstack([np.asarray(ref_share) * n_ref, batch_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(special.chdtrc(table.shape[1] - 1, stat))


def _ks_p(d: float, n_ref: int, n: int) -> float:
    """Asymptotic two-sample Kolmogorov-Smirnov p-value (Stephens' small-sample correction)."""
    en = np.sqrt(n_ref * n / (n_ref + n))
    return float(special.kolmogorov((en + 0.12 + 0.11 / en) * d))


def _continuous(name: str, ref: ColumnReference, c: ColumnCounts, t: DriftThresholds) -> FeatureDrift:
    n = c.n
    lo, hi = _span(ref.min, ref.max)
    counts = grid_total(c)
    n_below, n_above = int(counts[0]), int(counts[-1])
    tail = (c.below + c.above) / n
    g = (n_below + np.cumsum(counts[1:-1])) / n
    diff = np.abs(np.asarray(ref.grid_cdf) - g)
    wd = float(diff.sum() * (hi - lo) / GRID_BINS + tail)
    d_ks = max(float(diff.max()), n_below / n, n_above / n)
    value_psi = psi(np.asarray(ref.psi_share), psi_shares(counts, lo, hi, np.asarray(ref.psi_nodes)))
    wd_norm = wd / ref.std if ref.std > 0 else wd
    p_value = _ks_p(d_ks, ref.n, n)
    fired = [name for name, value, limit in (("psi", value_psi, t.psi), ("wasserstein", wd_norm, t.wasserstein))
             if value >= limit and p_value < t.significance]
    step = GRID_BINS // HIST_BINS
    ref_hist = np.diff(np.r_[0.0, np.asarray(ref.grid_cdf)[step - 1::step]])
    batch_hist = np.add.reduceat(counts[1:-1], np.arange(0, GRID_BINS, step)) / n
    return FeatureDrift(
        name=name, kind="continuous", psi=value_psi, wasserstein=wd_norm, js=None,
        p_value=p_value, test="ks", out_of_range=c.outside / n,  # the Production verdict's count
        mean_ref=ref.mean, mean_batch=c.total / n, drift=bool(fired), rule=",".join(fired),
        bins=tuple(float(x) for x in np.linspace(lo, hi, HIST_BINS + 1)),
        ref_share=tuple(round(float(x), 6) for x in ref_hist),
        batch_share=tuple(round(float(x), 6) for x in batch_hist),
        batch_outside=(c.n_below / n, c.n_above / n),
    )


def _discrete(name: str, ref: ColumnReference, c: ColumnCounts, t: DriftThresholds) -> FeatureDrift:
    n = c.n
    counts = c.known
    ref_share = np.append(np.asarray(ref.category_share), 0.0)
    batch_counts = np.append(counts, c.other)
    value_js = js_distance(ref_share, batch_counts / n)
    excess = js_excess(value_js, int(np.count_nonzero(ref_share)), n, ref.n)
    p_value = _chi2_p(ref_share, ref.n, batch_counts)
    fired = excess >= t.js and p_value < t.significance
    return FeatureDrift(
        name=name, kind="discrete", psi=None, wasserstein=None, js=value_js, js_excess=excess,
        p_value=p_value, test="chi2", out_of_range=c.outside / n,
        mean_ref=ref.mean, mean_batch=c.total / n, drift=bool(fired), rule="js" if fired else "",
        bins=tuple(float(x) for x in ref.categories), ref_share=tuple(float(x) for x in ref.category_share),
        batch_share=tuple(round(float(x), 6) for x in counts / n),
        batch_outside=(float(c.other) / n, 0.0),
    )


def _unmeasured(name: str, ref: ColumnReference) -> FeatureDrift:
    """A numeric column of a batch whose values are all missing: nothing to compare but the
    missing share (the caller adds it)."""
    if ref.kind == "discrete":
        bins, ref_share = tuple(float(c) for c in ref.categories), tuple(ref.category_share)
    else:
        lo, hi = _span(ref.min, ref.max)
        step = GRID_BINS // HIST_BINS
        bins = tuple(float(x) for x in np.linspace(lo, hi, HIST_BINS + 1))
        ref_share = tuple(round(float(x), 6) for x in np.diff(np.r_[0.0, np.asarray(ref.grid_cdf)[step - 1::step]]))
    return FeatureDrift(
        name=name, kind=ref.kind, psi=None, wasserstein=None, js=None, p_value=float("nan"),
        test="chi2" if ref.kind == "discrete" else "ks", out_of_range=0.0, mean_ref=ref.mean, mean_batch=None,
        drift=False, bins=bins, ref_share=ref_share, batch_share=tuple(0.0 for _ in ref_share),
    )


def _missing_js(ref_share: float, batch_share: float) -> float | None:
    """JS distance of the missing / present splits of training and batch (None: nothing missing)."""
    if not (ref_share or batch_share):
        return None
    return js_distance(np.array([1.0 - ref_share, ref_share]), np.array([1.0 - batch_share, batch_share]))


def _numeric_drift(name: str, ref: ColumnReference, c: ColumnCounts, t: DriftThresholds,
                   nullable: bool) -> FeatureDrift:
    if c.n == 0:
        result = _unmeasured(name, ref)
    else:
        result = _discrete(name, ref, c, t) if ref.kind == "discrete" else _continuous(name, ref, c, t)
    n_missing, total = c.n_missing, c.rows
    if not (n_missing or ref.n_missing or nullable):
        return result  # the numbers alone, as without missing values
    share = n_missing / total if total else 0.0
    mjs = _missing_js(ref.missing_share, share)
    kept = c.n / total if total else 0.0  # shares of the batch rows, not of its values
    missing_excess = None if mjs is None else js_excess(mjs, 2, total, ref.n + ref.n_missing)
    n_ref = ref.n + ref.n_missing
    missing_fired = bool(missing_excess is not None and missing_excess >= t.js and _chi2_p(
        np.array([1.0 - ref.missing_share, ref.missing_share]), n_ref,
        np.array([total - n_missing, n_missing])) < t.significance)
    return dataclasses.replace(
        result, missing_ref=ref.missing_share, missing_batch=share, missing_js=mjs, nullable=nullable,
        out_of_range=result.out_of_range * kept,
        batch_outside=(result.batch_outside[0] * kept, result.batch_outside[1] * kept),
        drift=bool(result.drift or missing_fired),
        rule=",".join(r for r in (result.rule, "missing" if missing_fired else "") if r),
    )


def _categorical(name: str, ref: ColumnReference, c: ColumnCounts, t: DriftThresholds,
                 nullable: bool) -> FeatureDrift:
    """JS distance of the category shares over the training categories, the batch's new
    categories (one bin: the distance is the same as with one bin each) and the missing values."""
    counts = c.categories if c.categories is not None else pd.Series(dtype="int64")
    counts = counts.astype("int64")
    total, n_missing = c.rows, c.n_missing
    cats = list(ref.categories)
    known = counts.reindex(cats, fill_value=0).to_numpy(dtype=np.int64) if cats else np.zeros(0, np.int64)
    new = counts[~counts.index.isin(cats)]
    new = new.sort_index(key=lambda idx: idx.map(str)).sort_values(ascending=False, kind="stable")
    n_new = int(new.sum())
    ref_vec = np.r_[np.asarray(ref.category_share, dtype="float64"), 0.0, ref.missing_share]
    batch_counts = np.r_[known, n_new, n_missing]
    value_js = js_distance(ref_vec, batch_counts / total)
    excess = js_excess(value_js, int(np.count_nonzero(ref_vec)), total, ref.n + ref.n_missing)
    p_value = _chi2_p(ref_vec, ref.n + ref.n_missing, batch_counts)
    fired = excess >= t.js and p_value < t.significance
    named = new.head(MAX_NEW_CATEGORIES)
    return FeatureDrift(
        name=name, kind="categorical", psi=None, wasserstein=None, js=value_js, js_excess=excess,
        p_value=p_value, test="chi2", out_of_range=n_new / total,
        mean_ref=None, mean_batch=None, drift=bool(fired), rule="js" if fired else "",
        bins=tuple(cats), ref_share=tuple(round(float(x), 6) for x in ref.category_share),
        batch_share=tuple(round(float(x), 6) for x in known / total),
        batch_outside=(n_new / total, 0.0), missing_ref=ref.missing_share, missing_batch=n_missing / total,
        new_categories=tuple(str(c) for c in named.index),
        new_share=tuple(round(float(c) / total, 6) for c in named.to_numpy()),
        n_new_categories=int(len(new)), nullable=nullable,
    )


def column_drift(name: str, ref: ColumnReference, values: np.ndarray | pd.Series, t: DriftThresholds,
                 nullable: bool = False) -> FeatureDrift:
    """Drift of one batch column against its reference.

    Numeric columns: doubles, NaN where missing (statistics on the other values); categorical
    ones: text, NaN where missing. `nullable` (the definition allows missing values) reports the
    missing shares even when none is missing.
    """
    return counted_drift(name, ref, count(ref, values), t, nullable)


def counted_drift(name: str, ref: ColumnReference, c: ColumnCounts, t: DriftThresholds,
                  nullable: bool = False) -> FeatureDrift:
    """Drift of one column from its counts (`counts.ColumnCounts`, of one or many chunks)."""
    if c.rows == 0:
        from core.data.batch_files import BatchError

        raise BatchError([f"{name}: there are no rows to compare with the training data (0 rows)"])
    if ref.kind == "categorical":
        return _categorical(name, ref, c, t, nullable)
    return _numeric_drift(name, ref, c, t, nullable)


def _column(batch: pd.DataFrame, name: str, kind: str) -> np.ndarray | pd.Series:
    """A batch column as `column_drift` takes it: text for a categorical one, else doubles (NaN
    where missing; no copy for a column of doubles)."""
    col = batch[name]
    if kind == "categorical":
        return col
    if isinstance(col.dtype, np.dtype):
        return col.to_numpy(dtype="float64")
    return col.to_numpy(dtype="float64", na_value=np.nan)  # nullable extension types (pd.NA)


# the domain classifier lives in its own module; its names stay importable from here
from core.monitoring.domain import domain_auc, domain_check  # noqa: E402,F401


def count_features(batch: pd.DataFrame, ref: TrainingReference, features: tuple[str, ...],
                   into: dict[str, ColumnCounts] | None = None) -> dict[str, ColumnCounts]:
    """Count every feature of a validated batch (or of one chunk of it, added to `into`)."""
    into = {f: ColumnCounts(ref.columns[f]) for f in features} if into is None else into
    for f in features:
        into[f].add(_column(batch, f, ref.columns[f].kind))
    return into


def drift_from_counts(counted: dict[str, ColumnCounts], n_rows: int, settings: Settings) -> DriftStats:
    """Every feature's drift from its counts and the share-of-features verdict: dataset drift when
    at least `dataset_share` of the features drift (the domain classifier's vote is the policy's)."""
    t = settings.drift
    spec = settings.dataset
    feats = {f: counted_drift(f, c.ref, c, t, nullable=bool(spec.feature(f).nullable)) for f, c in counted.items()}
    share = sum(v.drift for v in feats.values()) / len(feats)
    return DriftStats(features=feats, n_rows=n_rows, share_drifted=share,
                      dataset_drift=bool(share >= t.dataset_share), thresholds=t)


def feature_drift(batch: pd.DataFrame, ref: TrainingReference, settings: Settings) -> DriftStats:
    """Drift of every feature of a validated batch (`count_features`, `drift_from_counts`)."""
    return drift_from_counts(count_features(batch, ref, settings.features), len(batch), settings)


def label_drift(y: np.ndarray, ref_rate: float, n_ref: int, t: DriftThresholds) -> dict[str, Any]:
    """Drift of the labelled rows' positive rate against the training rate (JS distance)."""
    y = np.asarray(y, dtype="float64")
    rate = float(y.mean())
    ref_share = np.array([1 - ref_rate, ref_rate])
    counts = np.array([len(y) - y.sum(), y.sum()])
    value_js = js_distance(ref_share, counts / len(y))
    excess = js_excess(value_js, 2, len(y), n_ref)
    p_value = _chi2_p(ref_share, n_ref, counts)
    return {"positive_rate_ref": ref_rate, "positive_rate_batch": rate, "js": value_js, "js_excess": excess,
            "p_value": p_value, "n_labelled": int(len(y)), "drift": bool(excess >= t.js and p_value < t.significance)}
