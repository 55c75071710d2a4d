"""Trends: each feature's drift statistic and the model's estimate, point by point, with their
thresholds, over the chunks of a check (`from_chunks`: `check.check(..., chunking=...)`) or over
the history of checks (`from_history`: `history.history`, one point per check). The Drift page
charts a `Trend` (`core.charts.trends`), the worst feature first.

The statistic of a feature is the one its verdict reads first: Wasserstein / σ for a continuous
feature (threshold `wasserstein`; PSI may fire too, the point is then flagged below the line),
the JS distance beyond chance for a discrete or categorical one (threshold `js`; the history
holds the plain JS distance, from the checks' MLflow metrics). The estimate is the task's
headline figure (`policy.TaskPolicy.headline`: binary F1, multiclass accuracy, regression RMSE):
realised where the chunk has labels, estimated without labels elsewhere; its line is where the
policy calls it degraded (`performance_drop` below the test figure, or `error_rise` above it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from core.config import DriftThresholds
from core.modeling import metrics
from core.monitoring import policy


@dataclass(frozen=True)
class Series:
    """One line of a trend: a feature's statistic (or the estimate) per point, its threshold
    (None when unknown), the points where it fired, and its worst value over its threshold."""

    name: str
    statistic: str
    values: tuple[float | None, ...]
    threshold: float | None
    flagged: tuple[bool, ...]
    above: bool = True  # the threshold is crossed upwards (an effect, an error); False: a score falling below
    kinds: tuple[str, ...] = ()  # per point (estimate): "realised" or "estimated"
    trusted: tuple[bool, ...] = ()  # per point (estimate): False where the estimate is not trustworthy

    @property
    def severity(self) -> tuple[int, float]:
        """(points flagged, how far the worst point went past its threshold, as a ratio)."""
        ratios = []
        for v in self.values:
            if v is None or not math.isfinite(v) or not self.threshold:
                continue
            ratios.append(v / self.threshold if self.above else self.threshold / max(v, 1e-12))
        return sum(self.flagged), max(ratios, default=0.0)


@dataclass(frozen=True)
class Trend:
    """Points in order (chunks or checks) with their labels, rows and dataset verdict; one
    `Series` per feature, worst first; the estimate's `Series` (None when not known)."""

    source: str  # "chunks" or "history"
    labels: tuple[str, ...]
    bounds: tuple[str, ...]  # each point's extent in words (hover)
    rows: tuple[int | None, ...]
    dataset_drift: tuple[bool, ...]
    features: tuple[Series, ...]
    estimate: Series | None

    @property
    def n_points(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _finite(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def feature_statistic(kind: str, t: DriftThresholds | Mapping[str, Any]) -> tuple[str, float]:
    """The statistic a trend shows for a feature of `kind`, and its threshold."""
    get = t.get if isinstance(t, Mapping) else lambda k: getattr(t, k)
    if kind == "continuous":
        return "Wasserstein / σ", float(get("wasserstein"))
    return "JS beyond chance", float(get("js"))


def estimate_limit(task: str, test: Mapping[str, float], t: DriftThresholds) -> tuple[str, float | None, bool]:
    """The task's headline figure, where the policy calls it degraded (None without a test
    figure), and whether degraded is above that line (errors) or below it (scores)."""
    p = policy.of(task)
    key = p.headline
    how = dict(p.rules).get(key, "drop")
    ref = _finite(test.get(key))
    if ref is None:
        return key, None, how == "rise"
    limit = p.limit(key, t)
    return key, (ref * (1 + limit) if how == "rise" else ref - limit), how == "rise"


def _ordered(series: list[Series]) -> tuple[Series, ...]:
    return tuple(sorted(series, key=lambda s: (-s.severity[0], -s.severity[1], s.name)))


def _unique(labels: Sequence[str]) -> tuple[str, ...]:
    """Labels made distinct (a chart's category axis would merge equal ones): ' (2)', ' (3)' added."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return tuple(out)


def from_chunks(chunks: Sequence[Any], task: str, test: Mapping[str, float], t: DriftThresholds) -> Trend:
    """The trend over a check's chunks (`chunks.Chunk`)."""
    names = list(chunks[0].features) if chunks else []
    series = []
    for name in names:
        kind = chunks[0].features[name].kind
        statistic, threshold = feature_statistic(kind, t)
        values = []
        for c in chunks:
            f = c.features[name]
            values.append(_finite(f.wasserstein if kind == "continuous" else
                                  (f.js_excess if f.js_excess is not None else f.js)))
        series.append(Series(name=name, statistic=statistic, values=tuple(values), threshold=threshold,
                             flagged=tuple(bool(c.features[name].drift) for c in chunks)))
    key, limit, rise = estimate_limit(task, test, t)
    values, kinds, trusted = [], [], []
    for c in chunks:
        real = None if c.realized is None else _finite(c.realized.get(key))
        values.append(real if real is not None else _finite(c.estimate.value(key)))
        kinds.append("realised" if real is not None else "estimated")
        trusted.append(real is not None or bool(c.estimate.trustworthy))
    estimate = Series(name=metrics.label(key), statistic=metrics.label(key), values=tuple(values), threshold=limit,
                      flagged=tuple(bool(c.verdict.get("degraded")) for c in chunks), above=rise, kinds=tuple(kinds),
                      trusted=tuple(trusted))
    return Trend(source="chunks", labels=_unique([c.label for c in chunks]),
                 bounds=tuple(_bounds(c) for c in chunks), rows=tuple(c.rows for c in chunks),
                 dataset_drift=tuple(c.dataset_drift for c in chunks), features=_ordered(series), estimate=estimate)


def _bounds(c: Any) -> str:
    if isinstance(c.start, str):
        return f"{c.start} to {c.end} (UTC), {c.rows:,} rows"
    when = f", {c.first_time} to {c.last_time}" if c.first_time else ""
    return f"rows {c.start:,} to {c.end - 1:,}{when}"


def from_history(h: pd.DataFrame, spec: Any, task: str, test: Mapping[str, float], t: DriftThresholds) -> Trend:
    """The trend over the history of checks (`history.history`: one row per check, oldest
    first; `effect_<feature>` the W/σ or JS distance). A point is flagged where its statistic
    was judged drifted (`drifted_<feature>`; where a run lacks it, where its statistic reaches
    the threshold)."""
    h = h.reset_index(drop=True)
    series = []
    for name in spec.features:
        col = f"effect_{name}"
        if col not in h:
            continue
        f = spec.feature(name)
        kind = "continuous" if f.numeric and not f.discrete else "discrete"
        statistic, threshold = feature_statistic(kind, t)
        statistic = "Wasserstein / σ" if kind == "continuous" else "JS distance"
        values = tuple(_finite(v) for v in h[col])
        judged = h[f"drifted_{name}"] if f"drifted_{name}" in h else pd.Series([None] * len(h))
        flagged = tuple(bool(j) if _finite(j) is not None else (v is not None and v >= threshold)
                        for v, j in zip(values, judged))
        series.append(Series(name=name, statistic=statistic, values=values, threshold=threshold, flagged=flagged))
    key, limit, rise = estimate_limit(task, test, t)
    values, kinds, trusted = [], [], []
    for _, row in h.iterrows():
        real = _finite(row.get(f"real_{key}"))
        values.append(real if real is not None else _finite(row.get(f"est_{key}")))
        kinds.append("realised" if real is not None else "estimated")
        trusted.append(real is not None or row.get("trustworthy") is not False)
    flagged = tuple(v is not None and limit is not None and (v >= limit if rise else v <= limit) and ok
                    for v, ok in zip(values, trusted))
    estimate = Series(name=metrics.label(key), statistic=metrics.label(key), values=tuple(values), threshold=limit,
                      flagged=flagged, above=rise, kinds=tuple(kinds), trusted=tuple(trusted))
    times = pd.to_datetime(h["time"], utc=True)
    return Trend(source="history", labels=_unique(list(times.dt.strftime("%Y-%m-%d %H:%M:%S"))),
                 bounds=tuple(f"{b} ({s})" for b, s in zip(h["batch"].astype(str), h.get("source", h["batch"]))),
                 rows=tuple(None if _finite(r) is None else int(r) for r in h.get("rows", [None] * len(h))),
                 dataset_drift=tuple(bool(x) for x in h["dataset_drift"]), features=_ordered(series),
                 estimate=estimate)


def check_log(settings: Any, model: Any, n: int, chunking: Any, on_progress: Any = None) -> Any:
    """The last `n` rows of the inference log checked in chunks (`chunks.Chunking`), neither
    stored nor logged to MLflow, without the domain classifier: a `DriftReport` whose `chunks`
    `from_chunks` charts (the Drift page's trend over the log). Raises `BatchError` when the log
    is empty or the rows cannot be split so."""
    from core.monitoring import check

    batch = check.inference_log_batch(model.scoped(settings), n)
    return check.check(batch, settings, model=model, source="inference_log", store=False, log=False, domain=False,
                       chunking=chunking, on_progress=on_progress)
