"""A check over time: a batch (or the inference log) split into chunks, each judged by the one
policy as a whole batch is (`check.check(..., chunking=...)`, `drift --chunk-size K` or
`--chunk-period 15m|1h|1d`), as NannyML's `chunk_size` / `chunk_period` do.

- `Chunking`: how to split: `size` rows after rows, in the batch's order (the last chunk may be
  shorter), or `period` by when each row happened (`Batch.times`: the inference log's request
  times, or the time column the dataset definition names, `DatasetSpec.time_column`); a period
  without rows has no chunk;
- `judge`: each chunk's per-feature drift (`statistics`, with its small-sample rules: the
  p-value must agree on a small chunk), the task's label-free estimate (or realised figures on
  labelled rows), the dataset verdict and the recommendation (`policy`). The domain classifier
  is not run per chunk (a forest per chunk would cost more than the check): a chunk's dataset
  drift is the share-of-features rule;
- `Chunk`: one chunk's result; `summary()` is its object in the CLI's `chunks` list.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.data.batches import BatchError
from core.monitoring import policy, statistics
from core.monitoring.drift_report import Estimate, FeatureDrift

PERIOD_RULE = "a whole number of minutes, hours or days such as 15m, 1h or 1d"
_PERIOD = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_UNITS = {"m": "min", "h": "h", "d": "D"}  # pandas' frequency aliases
MAX_CHUNKS = 10_000  # a check is refused beyond this many chunks (a chart of them says nothing anyway)


def period_frequency(text: str) -> str | None:
    """The pandas frequency of a period such as '15m', '1h' or '1d' ('15min', '1h', '1D'); None
    when it is not `PERIOD_RULE` (0, a sign, a fraction, another unit)."""
    found = _PERIOD.fullmatch(str(text).strip())
    return None if found is None else f"{found.group(1)}{_UNITS[found.group(2)]}"


@dataclass(frozen=True)
class Chunking:
    """How a check is split: `size` rows, or a `period` (text such as '1h'); exactly one."""

    size: int | None = None
    period: str | None = None

    def __post_init__(self) -> None:
        if (self.size is None) == (self.period is None):
            raise ValueError("give a chunk size or a chunk period, not both")
        if self.size is not None and self.size < 1:
            raise ValueError(f"a chunk size is a whole number of rows from 1, not {self.size}")
        if self.period is not None and period_frequency(self.period) is None:
            raise ValueError(f"a chunk period is {PERIOD_RULE}, not {self.period!r}")

    def text(self) -> str:
        return f"{self.size:,} rows" if self.size is not None else f"periods of {self.period}"


@dataclass(frozen=True)
class Chunk:
    """One chunk's check: its bounds (`start` and `end`: row positions, end excluded, for chunks
    by size; the period's times in ISO 8601, end excluded, for chunks by period), rows, the
    features' drift, the estimate (and realised figures when labelled) and the policy's verdict."""

    start: Any
    end: Any
    rows: int
    dataset_drift: bool
    features: dict[str, FeatureDrift]
    estimate: Estimate
    realized: dict[str, float] | None
    verdict: dict[str, Any]
    dataset_drift_rules: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # the task's figures (`policy.TaskPolicy.keys`)
    first_time: str | None = None  # when its first and last rows happened (chunks by size, when known)
    last_time: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [k for k, f in self.features.items() if f.drift]

    @property
    def alarm(self) -> list[str]:
        return list(self.verdict.get("alarm", ()))

    @property
    def label(self) -> str:
        """The chunk in a few words, e.g. 'rows 0-499' or '2026-12-07 10:00'."""
        if isinstance(self.start, str):
            return self.start.replace("T", " ")[:16].removesuffix(" 00:00")
        return f"rows {self.start:,}-{self.end - 1:,}"

    def estimate_summary(self) -> dict[str, Any]:
        est = self.estimate
        return {**{k: est.value(k) for k in self.keys if est.value(k) is not None}, "method": est.method,
                "trustworthy": est.trustworthy, "reasons": list(est.reasons)}

    def feature_rows(self) -> list[dict[str, Any]]:
        """One display row per feature, worst first (`drift_report.effect_ratio`): the Drift
        page's details of a chunk."""
        from core.monitoring.drift_report import effect_ratio

        ranked = sorted(self.features.values(),
                        key=lambda f: (not f.drift, -effect_ratio(f, self.thresholds)[0], f.name))
        return [{"feature": f.name, "drift": f.drift, "rule": f.rule, "PSI": f.psi, "Wasserstein / σ": f.wasserstein,
                 "JS beyond chance": f.js_excess, "p-value (info only)": f.p_value,
                 "outside training range": f.out_of_range, "mean (training)": f.mean_ref,
                 "mean (chunk)": f.mean_batch} for f in ranked]

    def summary(self) -> dict[str, Any]:
        """The chunk's object in the CLI's `chunks` list."""
        d = {"start": self.start, "end": self.end, "rows": self.rows, "dataset_drift": self.dataset_drift,
             "drifted": self.drifted, "features": {k: f.summary() for k, f in self.features.items()},
             "estimate": self.estimate_summary(), "realized": self.realized,
             "dataset_drift_rules": list(self.dataset_drift_rules), "alarm": self.alarm,
             "recommendation": self.verdict.get("recommendation", "")}
        if self.first_time is not None:
            d.update(first_time=self.first_time, last_time=self.last_time)
        return d


# --------------------------------------------------------------------------- splitting
def _iso(t: pd.Timestamp) -> str:
    return t.isoformat()


def times_of(times: pd.Series | None, what: str) -> pd.Series:
    """A batch's times as UTC datetimes; `BatchError` (exit 2) when there are none or some do
    not read as a time. Times without a zone are taken as UTC."""
    if times is None:
        raise BatchError([f"{what}: no time column, so it cannot be split by period"], what,
                         fix="Use --chunk-size K (rows) instead, or name the column that says when each row "
                             "happened as `time_column` in the dataset definition (dataset.toml) and include it "
                             "in the file")
    parsed = pd.to_datetime(times, utc=True, errors="coerce", format="ISO8601")  # vectorised
    retry = parsed.isna() & times.notna().to_numpy()
    if retry.any():  # other layouts ("12/07/2026 10:00"), value by value: 10x slower, only where needed
        parsed[retry] = pd.to_datetime(times[retry], utc=True, errors="coerce", format="mixed")
    bad = int(parsed.isna().sum())
    if bad:
        raise BatchError([f"{times.name or 'time'}: {bad:,} value(s) are empty or not a date/time, so the batch "
                          "cannot be split by period"], what,
                         fix="Fill or drop those rows, or split by rows with --chunk-size K")
    return parsed.reset_index(drop=True)


def split(n_rows: int, chunking: Chunking, times: pd.Series | None,
          what: str = "batch") -> list[tuple[Any, Any, np.ndarray]]:
    """The chunks of `n_rows` rows: (start, end, row positions), in order (see `Chunk`).
    By period, `times` (one per row) decide; a period without rows has no chunk."""
    if chunking.size is not None:
        k = chunking.size
        if -(-n_rows // k) > MAX_CHUNKS:
            raise BatchError([f"--chunk-size {k:,}: {n_rows:,} rows make more than {MAX_CHUNKS:,} chunks"], what,
                             fix=f"Use chunks of at least {-(-n_rows // MAX_CHUNKS):,} rows")
        return [(a, min(a + k, n_rows), np.arange(a, min(a + k, n_rows))) for a in range(0, n_rows, k)]
    t = times_of(times, what)
    freq = period_frequency(chunking.period or "")
    step = pd.Timedelta(freq).value
    ns = t.dt.floor(freq).dt.tz_localize(None).to_numpy().astype("int64")  # numpy, not Timestamp objects
    if len(ns) and (ns.max() - ns.min()) // step + 1 > MAX_CHUNKS * 100:
        raise BatchError([f"--chunk-period {chunking.period}: the rows span more than {MAX_CHUNKS * 100:,} periods"],
                         what, fix="Use a longer period")
    starts, codes = np.unique(ns, return_inverse=True)
    order = np.argsort(codes, kind="stable")  # each period's rows in the batch's order
    cuts = np.cumsum(np.bincount(codes, minlength=len(starts)))[:-1]
    found = [(_iso(pd.Timestamp(int(a), tz="UTC")), _iso(pd.Timestamp(int(a) + step, tz="UTC")), pos)
             for a, pos in zip(starts, np.split(order, cuts))]
    if len(found) > MAX_CHUNKS:
        raise BatchError([f"--chunk-period {chunking.period}: more than {MAX_CHUNKS:,} periods hold rows"], what,
                         fix="Use a longer period")
    return found


# --------------------------------------------------------------------------- judging
def judge(frame: pd.DataFrame, out: np.ndarray, labels: np.ndarray | None, rows: np.ndarray | None,
          times: pd.Series | None, chunking: Chunking, *, settings: Settings, ref: Any, mon: Any, mref: Any,
          champ: Any, what: str = "batch") -> tuple[Chunk, ...]:
    """Each chunk of a scored batch judged as a whole batch is (see the module docstring).

    `frame`: the batch's features; `out`: the model's outputs (`core.monitoring.outputs`);
    `labels`: NaN where missing (None without labels); `rows`: the estimate's per-row figures
    (regression), sliced like the rest; `times`: when each row happened (None when unknown);
    `mon`, `mref`: the task's monitor and its reference (`monitors.monitor_of`)."""
    parsed = None
    if times is not None and chunking.size is not None:
        try:
            parsed = times_of(times, what)
        except BatchError:
            parsed = None  # bounds by rows need no times: they are only shown when all read
    found = []
    out = np.asarray(out)
    for start, end, pos in split(len(frame), chunking, times, what):
        part = frame.iloc[pos]
        y = None
        if labels is not None:
            y = labels[pos]
            y = y if np.isfinite(y).any() else None  # a chunk without labelled rows is judged without labels
        counted = statistics.count_features(part, ref, settings.features)
        stats = statistics.drift_from_counts(counted, len(part), settings)
        parts = mon.measure(mref, out[pos], y, None if rows is None else rows[pos], champ, settings, ref)
        v = policy.batch_verdict(stats, parts, None, settings, mon.task)
        first = last = None
        if parsed is not None and len(pos):
            first, last = _iso(parsed.iloc[pos[0]]), _iso(parsed.iloc[pos[-1]])
        found.append(Chunk(start=start, end=end, rows=len(pos), dataset_drift=v.dataset_drift,
                           features=stats.features, estimate=v.estimate, realized=parts.realized,
                           verdict=v.verdict.to_dict(), dataset_drift_rules=v.rules,
                           keys=policy.of(mon.task).keys, first_time=first, last_time=last,
                           thresholds=dataclasses.asdict(settings.drift)))
    return tuple(found)
