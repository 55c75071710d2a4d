"""`drift --engine spark` against the local check, as a user runs them (issue 32, item 4).

Builds a Kobe home with a champion (bench/_home.py), then a 1,000,000-row batch (one parquet
file) and a 20,000,000-row one (a folder of 20 files of 1,000,000 rows), rows drawn with
replacement from the production split (3-point shots: a real shift). Runs, each as a whole CLI
process (`python -m core drift --batch ... --json --no-domain`, the MLflow run queued):

- 1M rows: the local check (record batches, `core/monitoring/stream.py`) and the Spark check
  (`--engine spark`, `local[*]`), whose verdicts and statistics are compared;
- 20M rows: the Spark check (and the local one with `--local-20m`, which reads the folder's files
  one by one: not a single batch for it, so it is skipped by default).

Peak memory: the resident set of the CLI process and, for Spark, of its JVM (the driver and, in
local mode, the executors), sampled every 0.1 s with psutil over the process tree.

Run: KOBE_DATA_DIR=... .venv/bin/python bench/spark_drift.py [--rows 1000000] [--big 20000000] [--reps 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from one_door import make_home  # noqa: E402  (a Kobe home with a champion, built by bench/_home.py)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def write_rows(prod: pd.DataFrame, path: Path, rows: int, seed: int) -> None:
    prod.sample(rows, replace=True, random_state=seed).reset_index(drop=True).to_parquet(path, index=False)


def timed(home: Path, *words: str) -> tuple[float, dict, dict[str, float]]:
    """(wall seconds, the JSON output, peak RSS in MB of the CLI process and of its children)."""
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", *words, "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"cli": 0.0, "children": 0.0}
    done = threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak["cli"] = max(peak["cli"], p.memory_info().rss / 1e6)
                kids = sum(c.memory_info().rss for c in p.children(recursive=True) if c.is_running()) / 1e6
                peak["children"] = max(peak["children"], kids)
            except psutil.Error:
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=3600)
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{words}: exit {proc.returncode}\n{out[-2000:]}\n{err[-3000:]}")
    return seconds, json.loads(out), peak


def compare(local: dict, spark: dict) -> str:
    worst = 0.0
    for f, mine in local["features"].items():
        for k in ("psi", "wasserstein", "js", "p_value", "mean_batch"):
            a, b = mine.get(k), spark["features"][f].get(k)
            if isinstance(a, float) and isinstance(b, float) and np.isfinite(a):
                worst = max(worst, abs(a - b) / max(abs(a), 1e-12))
    same = (local["dataset_drift"] == spark["dataset_drift"]
            and {f for f, v in local["features"].items() if v["drift"]}
            == {f for f, v in spark["features"].items() if v["drift"]})
    return (f"same verdicts: {same} (dataset drift {local['dataset_drift']} / {spark['dataset_drift']}; drifted "
            f"{sorted(f for f, v in spark['features'].items() if v['drift'])}); largest relative difference of a "
            f"statistic {worst:.1e}; estimate local {local['estimated_performance'].get('roc_auc')} / spark "
            f"{spark['estimated_performance'].get('roc_auc')} (ROC-AUC)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=20_000_000)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--local-big", action="store_true", help="also the local check of the big batch (one file)")
    args = ap.parse_args()
    print(f"start: {load()}", flush=True)
    home, prod_path = make_home()
    prod = pd.read_parquet(prod_path)
    tmp = Path(tempfile.mkdtemp(prefix="bench-spark-drift-"))
    small = tmp / "batch-1m.parquet"
    write_rows(prod, small, args.rows, 0)
    big = tmp / "batch-20m"
    big.mkdir()
    per_file = 1_000_000
    for i in range(max(args.big // per_file, 1)):
        write_rows(prod, big / f"part-{i:03d}.parquet", min(per_file, args.big), i + 1)
    print(f"batches: {args.rows:,} rows ({small.stat().st_size / 1e6:.0f} MB), {args.big:,} rows in "
          f"{len(list(big.glob('*.parquet')))} files ({sum(f.stat().st_size for f in big.glob('*.parquet')) / 1e6:.0f} MB)",
          flush=True)
    rows = []
    for label, words in (("local, 1M", ("drift", "--batch", str(small), "--no-domain")),
                         ("spark, 1M", ("drift", "--engine", "spark", "--batch", str(small), "--no-domain")),
                         ("spark, 20M", ("drift", "--engine", "spark", "--batch", str(big), "--no-domain"))):
        runs = []
        for _ in range(args.reps):
            before = load()
            seconds, out, peak = timed(home, *words)
            runs.append((seconds, out, peak))
            print(f"{label}: {seconds:.1f} s; peak RSS CLI {peak['cli']:.0f} MB, its children (Spark's JVM) "
                  f"{peak['children']:.0f} MB; {before} before", flush=True)
        rows.append((label, median(r[0] for r in runs), runs[-1][1], max(r[2]["cli"] for r in runs),
                     max(r[2]["children"] for r in runs)))
    if args.local_big:
        big_file = tmp / "batch-20m.parquet"
        pd.concat([pd.read_parquet(f) for f in sorted(big.glob("*.parquet"))]).to_parquet(big_file, index=False)
        seconds, out, peak = timed(home, "drift", "--batch", str(big_file), "--no-domain")
        rows.append(("local, 20M (one file)", seconds, out, peak["cli"], peak["children"]))
    print(f"\n1M rows, local vs spark: {compare(rows[0][2], rows[1][2])}")
    print(f"20M rows on spark: dataset drift {rows[2][2]['dataset_drift']}, sampled "
          f"{rows[2][2]['spark']['sampled_rows']:,} of {rows[2][2]['spark']['rows']:,} rows for the estimate")
    print("\n| check | rows | wall (median) | peak RSS, CLI process | peak RSS, its children (JVM) |")
    print("|---|---|---|---|---|")
    for label, seconds, out, cli, kids in rows:
        print(f"| {label} | {out['batch']['n_rows']:,} | {seconds:.1f} s | {cli:.0f} MB | {kids:.0f} MB |")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
