"""A drift check on Spark: a parquet batch (a file or a folder of files, local or on a cluster's
file system) that may not fit in memory, with the same statistics, estimate and verdicts as the
local check (`check.check`, `stream.check_file`).

How each part is computed, and why so:

- Validation: every row is checked by the dataset's rules (`batches.validate_frame`, the same
  code as a local check) in Spark's Python workers (`mapInPandas`), one partition at a time; a
  batch with any problem is refused (`BatchError`: exit 2, nothing written), with the problems
  of the first partitions that broke a rule. The rules are Python (domains, kinds, labels): a
  second version in Spark SQL would be a second source of truth.
- Distributions: from Spark's own aggregations, in the JVM, without Python: one `agg` pass for
  the counts, missing values, sums and values outside the training range of every feature, one
  `groupBy(feature, key).count()` pass over the features stacked as (feature, key) pairs for the
  histograms (continuous: the reference grid's bin, computed with the same double arithmetic as
  `reference.grid_counts`; discrete: the training value, or "other"; categorical: the category
  as text). They fill the same `counts.ColumnCounts` a local check fills, so every statistic and
  verdict comes from the same code (`statistics.drift_from_counts`, `check.conclude`, `policy`).
  The driver holds one count per (feature, bin or category): bounded by the grid and the
  categories, not by the rows.
- The champion's outputs, the label-free estimate, the realised metrics, the prediction drift
  and the domain classifier: on a uniform sample of about `sample_rows` rows (1,000,000 by
  default) collected to the driver and computed by the local code. A batch of at most that many
  rows is taken whole, in file order, so its check gives the local check's figures; a larger
  one gets the estimate of its sample (the report says so: `spark.sampled_rows`), which keeps
  the driver's memory bounded as the batch grows. Its counts and drift statistics are exact.

The batch is not copied into `data/08_batches/` (it stays where it is; the report names its
path); the Monitoramento run is logged as for a local check.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import batches
from core.modeling.model_version import ModelVersion
from core.monitoring import check as checks
from core.monitoring import domain as domain_classifier
from core.monitoring import monitors, outputs, reference, statistics
from core.monitoring.counts import ColumnCounts
from core.monitoring.drift_report import DriftReport
from core.monitoring.reference import GRID_BINS, _span
from core.progress import ProgressFn, Stopwatch, report

SAMPLE_ROWS = 1_000_000  # rows (about) collected for the outputs, the estimate and the domain classifier
MAX_PROBLEMS = 10  # problems named when a batch is refused
OTHER = -1.0  # the key of a discrete value never seen in training


def check_spark(path: str, settings: Settings, *, model: ModelVersion, master: str | None = None,
                source: str = "cli", log: bool | str = True, domain: bool = True,
                sample_rows: int = SAMPLE_ROWS, on_progress: ProgressFn = None) -> DriftReport:
    """Check the parquet batch at `path` (a file, a folder or a glob) on a Spark session
    (`core.scoring.spark.session`: `master`, SPARK_MASTER, or Spark's configuration) against the
    training data and `model` (the champion, read once by the caller). See the module docstring.

    Raises `BatchError` for rows breaking the dataset's rules or an empty batch,
    `spark.SparkBatchError` for a batch Spark cannot read or lacking feature columns,
    `spark.SparkUnavailableError` without pyspark or Java. Nothing is written before the batch
    is found valid."""
    from core.scoring import spark as spark_scoring

    clock = Stopwatch()
    champ, settings = model, model.scoped(settings)
    report(on_progress, 0.0, "Starting Spark")
    session = spark_scoring.session(settings, master)
    df = spark_scoring._read_batch(session, settings, str(path))
    wanted = [c for c in (*settings.features, settings.target) if c in df.columns]
    df = df.select(*wanted)
    report(on_progress, 0.05, "Validating every row by the dataset's rules")
    total, n_labelled = _validate(df, settings, str(path))
    report(on_progress, 0.2, f"Counting {total:,} rows with Spark's aggregations")
    ref = reference.load_reference(settings)
    counted = count_features(df, ref, settings)
    report(on_progress, 0.5, "Sampling rows for the champion's outputs and the estimate")
    sample = _sample(df, settings, total, sample_rows)
    version, fitted = checks.champion_model(settings, champ)
    spec = settings.dataset
    out = outputs.model_outputs(fitted, sample, settings.features, spec.categorical_features, champ)
    mon = monitors.monitor_of(champ)
    mref = rows = None
    if mon.needs_rows:
        mref = mon.reference(settings, fitted, champ)
        rows = mon.rows(mref, sample, out)
    y = sample[settings.target].to_numpy(dtype="float64") if n_labelled and settings.target in sample else None
    dom_rows = None
    if domain:
        positions = domain_classifier.batch_positions(len(sample), settings.drift.domain_sample, settings.seed)
        dom_rows = sample.iloc[positions][list(settings.features)]
    batch = batches.Batch(frame=pd.DataFrame(), name=str(path), digest=_digest(str(path)), n_rows=total,
                          n_labelled=n_labelled, size_bytes=_size(str(path)), raw=None, suffix=".parquet")
    measured = checks.Measured(counted=counted, n_rows=total, proba=out,
                               labels=y if y is not None and np.isfinite(y).any() else None,
                               domain_rows=dom_rows, reference=mref, rows=rows)
    result = checks.conclude(batch, measured, settings, ref, champ, fitted, clock, source=source, store=False,
                             log=log, on_progress=on_progress)
    engine = {"engine": "spark", "master": session.sparkContext.master, "rows": total,
              "sampled_rows": int(len(sample)), "sampled": bool(len(sample) < total)}
    return dataclasses.replace(result, spark=engine)


# --------------------------------------------------------------------------- validation
def _validate(df: Any, settings: Settings, path: str) -> tuple[int, int]:
    """(rows, labelled rows) of the batch; BatchError when a row breaks the dataset's rules (the
    problems of the first partitions that did) or there is no row."""
    spec, target = settings.dataset, settings.target

    def check_partition(frames: Any) -> Any:  # runs in Spark's Python workers
        for raw in frames:
            frame, problems = batches.validate_frame(raw, spec)
            labelled = int(np.isfinite(frame[target]).sum()) if target in frame and not problems else 0
            yield pd.DataFrame({"rows": [len(raw)], "labelled": [labelled],
                                "problems": ["\n".join(problems[:MAX_PROBLEMS])]})

    parts = df.mapInPandas(check_partition, "rows long, labelled long, problems string").collect()
    problems: list[str] = []
    for part in parts:
        for p in (part["problems"] or "").split("\n"):
            if p and p not in problems and len(problems) < MAX_PROBLEMS:
                problems.append(p)
    total = sum(int(p["rows"]) for p in parts)
    if problems:
        raise batches.BatchError(problems, path, fix="Fix those rows (each partition's counts are shown), or check "
                                                     "the batch without --engine spark and with --drop-invalid")
    if total == 0:
        raise batches.BatchError(["the batch has no rows"], path)
    return total, sum(int(p["labelled"]) for p in parts)


# --------------------------------------------------------------------------- counting
def count_features(df: Any, ref: reference.TrainingReference, settings: Settings) -> dict[str, ColumnCounts]:
    """Every feature's `ColumnCounts` from two Spark aggregations (module docstring)."""
    from pyspark.sql import functions as F

    features = list(settings.features)
    kinds = {f: ref.columns[f].kind for f in features}
    value = {f: _value(F, f, kinds[f]) for f in features}
    aggs = []
    for i, f in enumerate(features):
        v, r = value[f], ref.columns[f]
        aggs += [F.count(v).alias(f"n{i}"), F.sum(F.when(v.isNull(), 1).otherwise(0)).alias(f"m{i}")]
        if kinds[f] != "categorical":
            lo, hi = _span(r.min, r.max)
            aggs += [F.sum(v).alias(f"t{i}"), F.sum(F.when(v < lo, F.lit(lo) - v)).alias(f"b{i}"),
                     F.sum(F.when(v > hi, v - F.lit(hi))).alias(f"a{i}"),
                     F.sum(F.when(v < r.min, 1).otherwise(0)).alias(f"lo{i}"),
                     F.sum(F.when(v > r.max, 1).otherwise(0)).alias(f"hi{i}")]
    totals = df.agg(*aggs).collect()[0].asDict()
    keyed = [F.struct(F.lit(i).alias("f"), _key(F, value[f], kinds[f], ref.columns[f]).alias("k"))
             for i, f in enumerate(features)]
    pairs = (df.select(F.explode(F.array(*keyed)).alias("p")).select("p.f", "p.k")
             .where(F.col("k").isNotNull()).groupBy("f", "k").count().collect())
    by_feature: dict[int, list[tuple[str, int]]] = {}
    for row in pairs:
        by_feature.setdefault(int(row["f"]), []).append((row["k"], int(row["count"])))
    counted = {}
    for i, f in enumerate(features):
        c = ColumnCounts(ref.columns[f], n=int(totals[f"n{i}"]), n_missing=int(totals[f"m{i}"] or 0))
        keys = by_feature.get(i, [])
        if kinds[f] == "categorical":
            c.categories = (pd.Series({k: n for k, n in keys}, dtype="int64") if keys
                            else pd.Series(dtype="int64"))
        else:
            _numeric_counts(c, keys, totals, i, kinds[f])
        counted[f] = c
    return counted


def _value(F: Any, name: str, kind: str) -> Any:
    """The column as a local check counts it: text for a categorical feature; else a double,
    null where missing (NaN too, as pandas counts it)."""
    col = F.col(f"`{name}`")
    if kind == "categorical":
        return col.cast("string")
    v = col.cast("double")
    return F.when(F.isnan(v), F.lit(None).cast("double")).otherwise(v)


def _key(F: Any, v: Any, kind: str, ref: Any) -> Any:
    """A feature's histogram key as text: the grid bin (continuous), the training value or OTHER
    (discrete), the category (categorical); null where the value is missing."""
    if kind == "categorical":
        return v
    if kind == "continuous":
        lo, hi = _span(ref.min, ref.max)
        scale = GRID_BINS / (hi - lo)
        shift = 1.0 - lo * scale
        # `reference.grid_counts`: clip(v * scale + shift, 0, bins + 0.5) truncated, at most
        # `bins`; a value above hi in the last slot
        f = F.least(F.greatest(v * F.lit(scale) + F.lit(shift), F.lit(0.0)), F.lit(GRID_BINS + 0.5))
        idx = F.least(f.cast("long"), F.lit(GRID_BINS))
        return F.when(v > F.lit(hi), F.lit(GRID_BINS + 1)).otherwise(idx).cast("string")
    known = [float(x) for x in ref.categories]
    return F.when(v.isNull(), F.lit(None)).when(v.isin(known), v).otherwise(F.lit(OTHER)).cast("string")


def _numeric_counts(c: ColumnCounts, keys: list[tuple[str, int]], totals: dict[str, Any], i: int,
                    kind: str) -> None:
    """Fill a numeric `ColumnCounts` from the aggregations' figures of feature `i`."""
    c.total = float(totals[f"t{i}"] or 0.0)
    c.outside = int(totals[f"lo{i}"] or 0) + int(totals[f"hi{i}"] or 0)
    if kind == "continuous":
        grid = np.zeros(GRID_BINS + 2, dtype=np.int64)
        for k, n in keys:
            grid[int(k)] += n
        c.grid = grid if c.n else None
        c.below, c.above = float(totals[f"b{i}"] or 0.0), float(totals[f"a{i}"] or 0.0)
        c.n_below, c.n_above = int(totals[f"lo{i}"] or 0), int(totals[f"hi{i}"] or 0)
        return
    cats = [float(x) for x in c.ref.categories]
    found = {float(k): n for k, n in keys}
    c.known = np.array([found.get(x, 0) for x in cats], dtype=np.int64)
    c.other = int(found.get(OTHER, 0)) if OTHER not in cats else int(c.n - c.known.sum())


# --------------------------------------------------------------------------- the sample
def _sample(df: Any, settings: Settings, total: int, rows: int) -> pd.DataFrame:
    """The validated rows the outputs are computed on: the whole batch in file order when it has
    at most `rows`; else a uniform Bernoulli sample of each row with probability rows / total
    (seed = settings.seed): about `rows` rows (within a few standard deviations, sqrt(rows)),
    every row equally likely (a `limit` after it would favour the first partitions)."""
    part = df if total <= rows else df.sample(withReplacement=False, fraction=rows / total, seed=settings.seed)
    # through Arrow: row by row, a million rows take half a minute more to reach pandas
    part.sparkSession.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    frame, problems = batches.validate_frame(part.toPandas(), settings.dataset)
    if problems:  # the whole batch passed `_validate`: not expected
        raise batches.BatchError(problems, "the batch's sample")
    return frame.reset_index(drop=True)


def _files(path: str) -> list[Path]:
    import glob

    local = path.removeprefix("file://")
    found = []
    for p in sorted(glob.glob(local)):
        found += sorted(Path(p).rglob("*.parquet")) if Path(p).is_dir() else [Path(p)]
    return found


def _digest(path: str) -> str:
    """A local batch's digest: sha256 over its files' names, sizes and modification times
    (reading every byte of a batch too large for memory twice would cost more than the check);
    empty for a path Spark reads from elsewhere."""
    files = _files(path)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest() if files else ""


def _size(path: str) -> int:
    return sum(os.path.getsize(f) for f in _files(path))
