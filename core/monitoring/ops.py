"""Operations monitoring: what the model server answered over a window of time, read from the
inference log that its capture writes (`core/serving/capture.py`, `core/serving/inference_log.py`).

`stats` returns an `OpsStats`: requests per minute, the server's p50/p99 latency (over every
request, and apart by request size: `latency_by_rows`, since one 5,000-row batch would otherwise
be the p99 of a window of single rows), outcomes
(refusals by kind) over time, the share of logged rows outside the training domain (a number
outside the training range or a category training never saw), the model versions served, the
sources (the workbench's own clients by name, any other `X-Workbench-Source` value pooled as
`other`: `core.serving.metrics.source_label`) and the capture's own health (rows written, write failures, drops). `python -m core serve stats`
prints it, the Serve page renders it, `core/serving/metrics.py` exports the same counters.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.config import Settings
from core.errors import WorkbenchError
from core.serving.metrics import source_label

WINDOW_RULE = "a number followed by m (minutes), h (hours) or d (days), e.g. 15m, 2h, 7d; or all"
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_MIN = {"m": 1.0, "h": 60.0, "d": 1440.0}
BUCKETS = 60  # points of the over-time series at most
OK = "ok"
# request sizes whose latency is reported apart, as (label, fewest rows, most rows or None): a
# single row (the Serve page, `predict`, an application's one-off), small batches, large batches.
# A request refused before its rows were read counts 0 rows and is in none of them.
SIZES = (("1", 1, 1), ("2-100", 2, 100), ("101-10000", 101, 10_000), ("10001+", 10_001, None))


class WindowError(WorkbenchError, ValueError):
    """A window that is not a duration."""


def parse_window(text: str) -> float | None:
    """`text` ("15m", "2h", "7d", "all") as minutes (None for all), or WindowError."""
    if str(text).strip().lower() == "all":
        return None
    found = _WINDOW.match(str(text).lower())
    minutes = float(found.group(1)) * _UNIT_MIN[found.group(2)] if found else 0.0
    if not found or not 0 < minutes <= 3650 * 1440:
        raise WindowError(f"The window must be {WINDOW_RULE}, not {text!r}.")
    return minutes


@dataclass(frozen=True)
class OpsStats:
    """The server's traffic over a window (see the module docstring); `per_bucket` is the
    series over time (`bucket_minutes` each)."""

    window_minutes: float | None
    since: str | None
    until: str
    n_requests: int  # requests to /invocations (the log's `calls`), refused ones included
    requests_per_minute: float
    p50_ms: float | None
    p99_ms: float | None
    outcomes: dict[str, int]
    refused_share: float
    rows_sent: int  # rows in those requests
    rows_logged: int  # rows written to the log (`requests` table: at most `capture_rows` per request)
    outside_training_share: float | None  # of the logged rows (None without training data or rows)
    outside_by_feature: dict[str, float]
    versions: list[dict[str, Any]]
    sources: dict[str, int]
    bucket_minutes: float
    per_bucket: list[dict[str, Any]] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)
    # p50/p99 by request size (`SIZES`, every size listed, None without requests of it), and the
    # single-row requests' figures on their own (what one row costs, whatever batches were sent)
    latency_by_rows: list[dict[str, Any]] = field(default_factory=list)
    single_row_p50_ms: float | None = None
    single_row_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quantile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def latency_by_rows(calls: pd.DataFrame) -> list[dict[str, Any]]:
    """The p50/p99 latency of `calls` (`inference_log.read_calls`' frame) apart by request size:
    one entry per `SIZES` row, `n_requests` 0 and None quantiles for a size nobody sent."""
    rows = calls["n_rows"].to_numpy(dtype="int64") if len(calls) else np.array([], dtype="int64")
    lat = calls["latency_ms"].to_numpy(dtype="float64") if len(calls) else np.array([])
    out = []
    for label, low, high in SIZES:
        mine = (rows >= low) & (rows <= (high if high is not None else np.iinfo("int64").max))
        out.append({"rows": label, "min_rows": low, "max_rows": high, "n_requests": int(mine.sum()),
                    "p50_ms": _quantile(lat[mine], 50), "p99_ms": _quantile(lat[mine], 99)})
    return out


def _bucket_minutes(window_minutes: float | None, first: pd.Timestamp | None, until: pd.Timestamp) -> float:
    span = window_minutes if window_minutes is not None else (
        max((until - first).total_seconds() / 60.0, 1.0) if first is not None else 60.0)
    return float(max(1.0, np.ceil(span / BUCKETS)))


def outside_training(rows: pd.DataFrame, ranges: Mapping[str, tuple[float, float]],
                     categories: Mapping[str, frozenset[str]] | None = None) -> tuple[float | None, dict[str, float]]:
    """(the share of `rows` with any feature outside the training domain, the share per feature)."""
    from core.data import profile

    if rows.empty or not (ranges or categories):
        return None, {}
    ranges = {k: v for k, v in ranges.items() if k in rows.columns}
    cats = {k: v for k, v in (categories or {}).items() if k in rows.columns}
    by_feature = profile.share_out_of_range(rows, ranges, cats)
    outside = np.zeros(len(rows), dtype=bool)
    for name, (low, high) in ranges.items():
        col = pd.to_numeric(rows[name], errors="coerce")
        outside |= ((col < low) | (col > high)).to_numpy(dtype=bool)
    for name, seen in cats.items():
        col = rows[name]
        outside |= (col.notna() & ~col.astype("string").isin(list(seen))).to_numpy(dtype=bool)
    return round(float(outside.mean()), 4), {k: round(v, 4) for k, v in by_feature.items()}


def summarise(calls: pd.DataFrame, rows: pd.DataFrame, window_minutes: float | None, until: datetime,
              ranges: Mapping[str, tuple[float, float]] | None = None,
              categories: Mapping[str, frozenset[str]] | None = None,
              capture: Mapping[str, Any] | None = None) -> OpsStats:
    """`OpsStats` of the requests `calls` and logged rows `rows` (as `inference_log.read_calls`
    and `read_rows` give them) of the window ending at `until`."""
    end = pd.Timestamp(until).tz_convert("UTC") if pd.Timestamp(until).tzinfo else pd.Timestamp(until, tz="UTC")
    first = calls["timestamp"].min() if len(calls) else None
    bucket = _bucket_minutes(window_minutes, first, end)
    start = end - pd.Timedelta(minutes=window_minutes) if window_minutes is not None else first
    span_min = window_minutes if window_minutes is not None else (
        max((end - first).total_seconds() / 60.0, 1.0) if first is not None else 1.0)
    n = int(len(calls))
    lat = calls["latency_ms"].to_numpy(dtype="float64") if n else np.array([])
    outcomes = {str(k): int(v) for k, v in calls["outcome"].value_counts().sort_index().items()} if n else {}
    refused = sum(v for k, v in outcomes.items() if k != OK)
    versions = []
    if n:
        for version, g in calls.groupby(calls["model_version"].fillna("unknown").astype(str), sort=False):
            versions.append({"model_version": version, "n_requests": int(len(g)),
                             "first": g["timestamp"].min().isoformat(), "last": g["timestamp"].max().isoformat()})
        versions.sort(key=lambda v: v["first"])
    per_bucket = []
    if n and start is not None:
        edges = ((calls["timestamp"] - start) / pd.Timedelta(minutes=bucket)).astype("float64")
        index = np.clip(np.floor(edges.to_numpy()), 0, None).astype(int)
        frame = calls.assign(_b=index)
        for b, g in frame.groupby("_b"):
            lat_b = g["latency_ms"].to_numpy(dtype="float64")
            single_b = g["n_rows"].to_numpy(dtype="int64") == 1
            kinds = g["outcome"].value_counts()
            per_bucket.append({
                "start": (start + pd.Timedelta(minutes=bucket * int(b))).isoformat(),
                "requests": int(len(g)), "requests_per_minute": round(len(g) / bucket, 3),
                "refused": int(len(g) - int(kinds.get(OK, 0))),
                "outcomes": {str(k): int(v) for k, v in kinds.items()},
                "p50_ms": _quantile(lat_b, 50), "p99_ms": _quantile(lat_b, 99),
                "single_row_p50_ms": _quantile(lat_b[single_b], 50),
                "single_row_p99_ms": _quantile(lat_b[single_b], 99)})
    share, by_feature = outside_training(rows, ranges or {}, categories)
    by_size = latency_by_rows(calls)
    return OpsStats(
        window_minutes=window_minutes, since=None if start is None else pd.Timestamp(start).isoformat(),
        until=end.isoformat(), n_requests=n, requests_per_minute=round(n / span_min, 3),
        p50_ms=_quantile(lat, 50), p99_ms=_quantile(lat, 99), outcomes=outcomes,
        refused_share=round(refused / n, 4) if n else 0.0,
        rows_sent=int(calls["n_rows"].sum()) if n else 0, rows_logged=int(len(rows)),
        outside_training_share=share, outside_by_feature=by_feature, versions=versions,
        sources=({str(k): int(v) for k, v in calls["source"].astype(str).map(source_label).value_counts().items()}
                 if n else {}),
        bucket_minutes=bucket, per_bucket=per_bucket, capture=dict(capture or {}),
        latency_by_rows=by_size, single_row_p50_ms=by_size[0]["p50_ms"], single_row_p99_ms=by_size[0]["p99_ms"])


def training_domain(settings: Settings) -> tuple[dict[str, tuple[float, float]], dict[str, frozenset[str]]]:
    """The training split's ranges and categories (empty when the data is not prepared)."""
    from core.data import profile

    if not settings.train_path.exists():
        return {}, {}
    train = pd.read_parquet(settings.train_path, columns=list(settings.features))
    categorical = tuple(settings.dataset.categorical_features)
    return (profile.training_ranges(train, settings.features, categorical),
            profile.training_categories(train, categorical))


def capture_health(settings: Settings) -> dict[str, Any]:
    """The running server's capture counters (its workers' status files) and whether it is on."""
    from core.serving.capture import read_health
    from core.serving.server import capture_dir

    return {"enabled": bool(settings.capture), **read_health(capture_dir(settings))}


def stats(settings: Settings, window_minutes: float | None = 60.0, now: datetime | None = None,
          domain: tuple[Mapping[str, tuple[float, float]], Mapping[str, frozenset[str]]] | None = None) -> OpsStats:
    """The server's traffic over the last `window_minutes` (None: everything in the log).
    `domain` (ranges, categories) defaults to the training split's (`training_domain`)."""
    from core.serving import inference_log

    until = now or datetime.now(timezone.utc)
    since = None if window_minutes is None else until - timedelta(minutes=float(window_minutes))
    calls = inference_log.read_calls(settings, since)
    rows = inference_log.read_rows(settings, since) if since is not None else inference_log.read_last(settings, 10**9)
    ranges, categories = domain if domain is not None else training_domain(settings)
    return summarise(calls, rows, window_minutes, until, ranges, categories, capture_health(settings))


def window_batch(settings: Settings, window_minutes: float | None) -> Any:
    """The rows the server logged over the last `window_minutes` (None: all) as a drift batch
    (`core.monitoring.check.check` checks it like an upload and keeps it in the drift history);
    BatchError when the window holds none."""
    from core.data.batches import BatchError, from_frame
    from core.serving import inference_log

    since = None if window_minutes is None else datetime.now(timezone.utc) - timedelta(minutes=float(window_minutes))
    rows = inference_log.read_rows(settings, since)
    label = "all" if window_minutes is None else f"last {window_minutes:g} min"
    if rows.empty:
        raise BatchError([f"inference log: no row was logged in the window ({label}; a refused request logs none)"],
                         "the inference log",
                         fix="Choose a longer window, or send requests to the model server first")
    return from_frame(rows.loc[:, list(settings.features)], settings,
                      f"inference log ({label}, {len(rows):,} rows)")
