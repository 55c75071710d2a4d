"""Metrics per segment: for whom does the model work worse?

`cut` splits one feature's values into segments, every row in exactly one of them:

- a feature whose domain is a list (categorical, binary, listed numbers): one segment per value,
  the `max_categories` most frequent kept and the rest pooled as one "(other)" segment;
- any other numeric feature: quantile bins of the values at hand, named as intervals
  ("[12.5, 30)", the last one closed: "[30, 84]");
- missing values: a "(missing)" segment of their own.

`segments` measures the task's metrics (`TaskKind.metrics`: binary at the version's threshold)
on the whole and on every segment of every feature, with each segment's gap to the whole on the
criterion (segment minus whole), and ranks them worst first by the criterion (its direction from
the task kind). A segment under `min_rows` rows is marked `too_small` and never ranked among the
worst (it comes after the judged ones). The result is a `SegmentReport` whose `to_dict()` is the
command line's JSON (`python -m core segments`); `core.monitoring.segment_sources` gathers the
rows (the test split or a labelled batch) and the champion's outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.modeling.tasks import TaskKind

MAX_CATEGORIES = 10   # categories kept per feature; the rest are pooled as "(other)"
BINS = 5              # quantile bins per numeric feature (quintiles)
MIN_ROWS = 30         # a segment with fewer rows is too small to judge
OTHER, MISSING = "(other)", "(missing)"
# what a segment is: one category, a quantile bin, the pooled rare categories, the missing values
CATEGORY, INTERVAL, POOLED, ABSENT = "category", "interval", "other", "missing"


@dataclass(frozen=True)
class Cut:
    """One feature cut into segments: `codes[i]` is row i's segment, a position in `names`."""

    codes: np.ndarray
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    pooled: int = 0  # how many categories "(other)" pools


def _number(value: float, decimals: int) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1e9 or decimals > 12:
        return f"{value:.{max(decimals, 6)}g}"
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def interval_names(edges: np.ndarray) -> tuple[str, ...]:
    """Names of the bins between `edges` (increasing): "[a, b)" each, the last "[a, b]"; with as
    many decimals as the closest two edges need (so that "[-118.1, -118]" reads "[-118.26,
    -118.17]"): no two edges read the same, and none is rounded by more than 5 % of that gap
    (4.5 is not written 4 beside 1 and 8)."""
    gap = float(np.min(np.diff(edges))) if len(edges) > 1 else 0.0
    start = int(np.clip(np.ceil(-np.log10(gap)), 0, 12)) if gap > 0 else 0
    for decimals in range(start, 18):
        text = [_number(e, decimals) for e in edges]
        if len(set(text)) == len(text) and np.max(np.abs(np.round(edges, decimals) - edges)) <= 0.05 * gap:
            break
    last = len(edges) - 2
    return tuple(f"[{text[i]}, {text[i + 1]}{']' if i == last else ')'}" for i in range(len(edges) - 1))


def _categories(values: pd.Series, feature: Any, max_categories: int) -> Cut:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = np.argsort(-counts, kind="stable")  # most frequent first; ties in order of appearance
    kept = order[:max_categories]
    new = np.full(len(uniques) + 1, -1, dtype=np.int64)  # old code -> segment (last slot: missing)
    new[kept] = np.arange(len(kept))
    names = [feature.value_label(uniques[i]) if feature is not None else str(uniques[i]) for i in kept]
    kinds = [CATEGORY] * len(kept)
    pooled = len(uniques) - len(kept)
    if pooled:
        new[order[max_categories:]] = len(names)
        names.append(OTHER)
        kinds.append(POOLED)
    if (codes < 0).any():
        new[-1] = len(names)
        names.append(MISSING)
        kinds.append(ABSENT)
    return Cut(codes=new[codes], names=tuple(names), kinds=tuple(kinds), pooled=pooled)


def _bins(values: pd.Series, bins: int) -> Cut:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = np.isfinite(x)
    names: list[str] = []
    codes = np.zeros(len(x), dtype=np.int64)
    if present.any():
        edges = np.unique(np.quantile(x[present], np.linspace(0, 1, bins + 1)))
        if len(edges) == 1:  # one value: one closed interval
            edges = np.array([edges[0], edges[0]])
            names = [f"[{_number(edges[0], 6)}, {_number(edges[0], 6)}]"]  # 6 decimals at most
        else:
            names = list(interval_names(edges))
        # [e_i, e_i+1): a value on an inner edge belongs to the bin it opens; the maximum to the last
        codes[present] = np.searchsorted(edges[1:-1], x[present], side="right")
    kinds = [INTERVAL] * len(names)
    if not present.all():
        codes[~present] = len(names)
        names.append(MISSING)
        kinds.append(ABSENT)
    return Cut(codes=codes, names=tuple(names), kinds=tuple(kinds))


def _drop_empty(c: Cut) -> Cut:
    counts = np.bincount(c.codes, minlength=len(c.names))
    if counts.all():
        return c
    keep = np.flatnonzero(counts)
    new = np.full(len(c.names), -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    return Cut(codes=new[c.codes], names=tuple(c.names[i] for i in keep), kinds=tuple(c.kinds[i] for i in keep),
               pooled=c.pooled)


def cut(values: pd.Series, feature: Any = None, *, max_categories: int = MAX_CATEGORIES, bins: int = BINS) -> Cut:
    """The segments of one feature's values (see the module docstring): categories when
    `feature` (a `core.dataset.Feature`) lists its values or the values are text, quantile bins
    otherwise. Every row is in exactly one segment; no segment is empty."""
    if max_categories < 1 or bins < 1:
        raise ValueError("max_categories and bins must be at least 1")
    values = pd.Series(values).reset_index(drop=True)
    listed = feature is not None and (feature.discrete or not feature.numeric)
    text = feature is None and not pd.api.types.is_numeric_dtype(values)
    c = _categories(values, feature, max_categories) if listed or text else _bins(values, bins)
    return _drop_empty(c)


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class Segment:
    """One segment of one feature: its rows, the task's metrics on them and the gap to the whole
    on the criterion (segment minus whole; `worse` says whether that is worse)."""

    feature: str
    segment: str
    kind: str
    rows: int
    share: float
    metrics: dict[str, float]
    gap: float | None
    worse: bool
    too_small: bool
    pooled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "segment": self.segment, "rows": self.rows,
                "metrics": {k: _clean(v) for k, v in self.metrics.items()}, "gap": _clean(self.gap),
                "kind": self.kind, "share": self.share, "worse": self.worse, "too_small": self.too_small,
                "pooled_categories": self.pooled}


@dataclass(frozen=True)
class SegmentReport:
    """The whole and every segment, worst first (see the module docstring)."""

    task: str
    criterion: str
    lower_is_better: bool
    rows: int
    overall: dict[str, float]
    segments: tuple[Segment, ...]
    min_rows: int
    max_categories: int
    bins: int
    threshold: float | None = None
    source: str = ""
    model_version: str | None = None
    unlabelled_rows: int = 0
    features: tuple[str, ...] = field(default=())

    def worst(self, n: int = 10) -> list[Segment]:
        """The `n` worst segments big enough to judge that are worse than the whole."""
        return [s for s in self.segments if not s.too_small and s.worse][:n]

    def table(self, segments: list[Segment] | None = None, feature_titles: dict[str, str] | None = None,
              metric_labels: dict[str, str] | None = None) -> pd.DataFrame:
        """Segments as rows (all of them by default): feature, segment, rows, the criterion, the
        gap, and the task's other metrics."""
        from core.modeling.metrics import label

        titles = feature_titles or {}
        rows = []
        for s in self.segments if segments is None else segments:
            rows.append({"feature": titles.get(s.feature, s.feature), "segment": s.segment, "rows": s.rows,
                         label(self.criterion): s.metrics.get(self.criterion), "gap": s.gap,
                         "too small": s.too_small,
                         **{label(k): v for k, v in s.metrics.items() if k != self.criterion}})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"overall": {k: _clean(v) for k, v in self.overall.items()},
                "segments": [s.to_dict() for s in self.segments],
                "task": self.task, "criterion": self.criterion, "lower_is_better": self.lower_is_better,
                "rows": self.rows, "unlabelled_rows": self.unlabelled_rows, "threshold": self.threshold,
                "min_rows": self.min_rows, "max_categories": self.max_categories, "bins": self.bins,
                "source": self.source, "model_version": self.model_version, "features": list(self.features),
                "judged": sum(not s.too_small for s in self.segments),
                "too_small": sum(s.too_small for s in self.segments)}


def _rank_key(s: Segment, criterion: str, lower: bool) -> tuple:
    value = s.metrics.get(criterion)
    known = value is not None and math.isfinite(value)
    badness = (value if lower else -value) if known else 0.0
    return (s.too_small, not known, -badness, -s.rows, s.feature, s.segment)


def segments(frame: pd.DataFrame, labels: np.ndarray, outputs: np.ndarray, kind: TaskKind, *,
             features: tuple[str, ...], spec: Any = None, threshold: float | None = None,
             criterion: str | None = None, max_categories: int = MAX_CATEGORIES, bins: int = BINS,
             min_rows: int = MIN_ROWS, source: str = "", model_version: str | None = None) -> SegmentReport:
    """The task's metrics on the whole and per segment of each of `features` (columns of
    `frame`), worst first by `criterion` (default the task kind's).

    `labels` are the model's labels (binary 1/0, multiclass the class positions, regression the
    values; NaN: unlabelled, left out and counted); `outputs` the model's outputs in the task's
    shape (`core.monitoring.outputs`); `spec` the dataset definition (how each feature is cut
    and its values named); `threshold` a binary version's decision threshold.
    """
    criterion = criterion or kind.criterion
    kind.check_criterion(criterion)
    y = np.asarray(labels, dtype="float64")
    out = np.asarray(outputs, dtype="float64")
    if len(y) != len(frame) or len(out) != len(frame):
        raise ValueError(f"{len(frame)} rows, {len(y)} labels and {len(out)} outputs: they must match")
    known = np.isfinite(y)
    unlabelled = int((~known).sum())
    if unlabelled:
        frame, y, out = frame.loc[known].reset_index(drop=True), y[known], out[known]
    if len(y) == 0:
        raise ValueError("no labelled rows: metrics per segment need the actual outcomes")
    lower = criterion in kind.lower_is_better
    if out.ndim == 1:
        # rows in score order (no metric depends on the rows' order): ROC-AUC's sort by (segment,
        # score) per feature then meets sorted scores (numpy's stable sort: one linear pass)
        order = np.argsort(out, kind="stable")
        frame, y, out = frame.loc[:, list(features)].iloc[order].reset_index(drop=True), y[order], out[order]
    if kind.metrics_by_group is not None:  # the same figures as `kind.metrics`, without its checks per call
        overall = kind.metrics_by_group(y, out, threshold, np.zeros(len(y), dtype=np.int64), 1)[0]
    else:
        overall = kind.metrics(y, out, threshold)
    whole = overall.get(criterion, float("nan"))
    found: list[Segment] = []
    for f in features:
        feature = spec.feature(f) if spec is not None else None
        c = cut(frame[f], feature, max_categories=max_categories, bins=bins)
        counts = np.bincount(c.codes, minlength=len(c.names))
        if kind.metrics_by_group is not None:  # every segment in one pass (numpy sums per segment)
            per = kind.metrics_by_group(y, out, threshold, c.codes, len(c.names))
        else:
            per = [kind.metrics(y[c.codes == i], out[c.codes == i], threshold) for i in range(len(c.names))]
        for i, name in enumerate(c.names):
            m, n = per[i], int(counts[i])
            value = m.get(criterion, float("nan"))
            gap = value - whole if math.isfinite(value) and math.isfinite(whole) else None
            worse = gap is not None and (gap > 0 if lower else gap < 0)
            found.append(Segment(feature=f, segment=name, kind=c.kinds[i], rows=n,
                                 share=round(n / len(y), 6), metrics=m, gap=gap, worse=worse,
                                 too_small=bool(n < min_rows),
                                 pooled=c.pooled if c.kinds[i] == POOLED else 0))
    found.sort(key=lambda s: _rank_key(s, criterion, lower))
    return SegmentReport(task=kind.name, criterion=criterion, lower_is_better=lower, rows=len(y), overall=overall,
                         segments=tuple(found), min_rows=min_rows, max_categories=max_categories, bins=bins,
                         threshold=threshold, source=source, model_version=model_version,
                         unlabelled_rows=unlabelled, features=tuple(features))
