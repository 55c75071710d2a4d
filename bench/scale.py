"""Benchmark: scoring a large production batch on Spark `local[2]` vs in-process pandas in chunks.

Rows are resampled (with replacement, fixed seed) from the prepared production batch and written
as parquet files of 1,000,000 rows. The champion is a logistic regression registered in a
throwaway home (embedded store). For each size both engines score the same files in the same
run and write their output as parquet:

- in-process: `pyarrow` reads record batches of `--chunk` rows, `model_io.predict_proba`, a
  `ParquetWriter` appends the scored chunk; P(made) and labels are kept for the metrics
  (`core.metrics.from_proba`), as the in-process apply path computes them;
- Spark: `core.spark_scoring.score_spark` on `local[2]` (mlflow spark_udf, partitioned parquet,
  metrics from Spark aggregates). The session is started once, before the timings; its start-up
  time is printed separately.

Wall time (median of `--repeats`) and peak resident memory (sampled every 0.1 s: this process,
plus for Spark its JVM and Python workers) of each, the ratio Spark / in-process, and the disk
used by input and outputs.

    .venv/bin/python bench/scale.py                  # sizes 100k, 1M, 10M
    .venv/bin/python bench/scale.py --sizes 1000000 --repeats 3
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from core import tracking
from core.config import Settings  # noqa: E402
from core.data import preparation
from core.modeling import metrics, model_io, promotion, registry
from core.scoring import spark as spark_scoring

FILE_ROWS = 1_000_000


class PeakRss:
    """Peak resident memory (bytes) of this process and, optionally, its children, while active."""

    def __init__(self, children: bool) -> None:
        self.children = children
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        procs = [me, *(me.children(recursive=True) if self.children else [])]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.1)

    def __enter__(self) -> "PeakRss":
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def dir_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def champion_home(root: Path) -> Settings:
    """A throwaway home with the prepared data and a registered LR champion."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = str(root)
    s = Settings.from_env(env)
    preparation.prepare(s)
    train = preparation.load_split(s, "train")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        model_io.feature_frame(train, s.features), train[s.target])
    exp = tracking.use(s)
    with mlflow.start_run(run_name="bench-model", experiment_id=exp):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules)
    promotion.promote(s, registry.register(s, info.model_uri))
    return s


def make_batch(settings: Settings, rows: int, folder: Path, seed: int = 7) -> Path:
    """`rows` rows resampled from the production batch, as parquet files of FILE_ROWS rows."""
    prod = preparation.load_split(settings, "prod")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    done, i = 0, 0
    while done < rows:
        n = min(FILE_ROWS, rows - done)
        part = prod.iloc[rng.integers(0, len(prod), n)].reset_index(drop=True)
        part.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
        done, i = done + n, i + 1
    return folder


def score_in_process(settings: Settings, folder: Path, out: Path, chunk: int) -> dict[str, float]:
    """Chunked pandas scoring: read, predict_proba, append to one output parquet; metrics at the end."""
    champ = registry.require_champion(settings)
    threshold = champ.decision_threshold
    _, model = registry.load_model(settings, champ)
    probas, labels = [], []
    writer = None
    try:
        for path in sorted(folder.glob("*.parquet")):
            for rb in pq.ParquetFile(path).iter_batches(batch_size=chunk):
                df = rb.to_pandas()
                p = model_io.predict_proba(model, df, settings.features)
                scored = df.assign(proba_made=p, pred_made=(p >= threshold).astype("int32"))
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
                probas.append(p)
                labels.append(df[settings.target].to_numpy())
    finally:
        if writer is not None:
            writer.close()
    return metrics.from_proba(np.concatenate(labels), np.concatenate(probas), threshold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per engine and size (median)")
    parser.add_argument("--chunk", type=int, default=250_000, help="in-process chunk size in rows")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="kobe-bench-scale-"))
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"load average {psutil.getloadavg()[0]:.1f}; folder {tmp}")
    try:
        settings = champion_home(tmp / "home")
        t0 = time.perf_counter()
        with PeakRss(children=True) as rss:
            spark = spark_scoring.session(settings, master=args.master)
        print(f"Spark session start ({args.master}): {time.perf_counter() - t0:.1f} s, "
              f"tree RSS {rss.peak / 2**20:.0f} MiB")
        rows_out = []
        for size in args.sizes:
            folder = make_batch(settings, size, tmp / f"batch-{size}")
            results: dict[str, dict] = {}
            for engine in ("in-process", "spark"):
                times, peaks, mets, out_mb = [], [], None, 0.0
                for rep in range(args.repeats):
                    if engine == "in-process":
                        out = tmp / f"inproc-{size}-{rep}.parquet"
                        with PeakRss(children=False) as rss:
                            t = time.perf_counter()
                            mets = score_in_process(settings, folder, out, args.chunk)
                            times.append(time.perf_counter() - t)
                    else:
                        with PeakRss(children=True) as rss:
                            t = time.perf_counter()
                            res = spark_scoring.score_spark(settings, str(folder / "*.parquet"), master=args.master, model=registry.require_champion(settings))
                            times.append(time.perf_counter() - t)
                        out, mets = Path(res.output), res.metrics
                        assert res.rows == size
                    peaks.append(rss.peak)
                    out_mb = dir_mb(out)
                results[engine] = {"s": statistics.median(times), "rss": max(peaks), "metrics": mets,
                                   "out_mb": out_mb}
            diff = max(abs(results["spark"]["metrics"][k] - results["in-process"]["metrics"][k])
                       for k in results["spark"]["metrics"]
                       if not np.isnan(results["spark"]["metrics"][k]))
            ratio = results["spark"]["s"] / results["in-process"]["s"]
            line = (f"{size:>11,d} rows | input {dir_mb(folder):7.1f} MB | "
                    f"in-process {results['in-process']['s']:7.2f} s, peak {results['in-process']['rss'] / 2**20:6.0f} MiB, "
                    f"out {results['in-process']['out_mb']:6.1f} MB | "
                    f"spark {results['spark']['s']:7.2f} s, peak {results['spark']['rss'] / 2**20:6.0f} MiB (tree), "
                    f"out {results['spark']['out_mb']:6.1f} MB | spark/in-process {ratio:5.2f}x | "
                    f"max metric diff {diff:.1e}")
            print(line, flush=True)
            rows_out.append(line)
            shutil.rmtree(folder)
            for p in tmp.glob("inproc-*"):
                p.unlink()
        spark.stop()
        print(f"{args.repeats} timed run(s) per engine and size (median); in-process chunk {args.chunk:,d} rows; "
              f"load average at the end {psutil.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
