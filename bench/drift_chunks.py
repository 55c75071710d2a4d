"""What chunking costs: `python -m core drift --batch FILE` on one batch, whole and in chunks.

Run:  KOBE_DATA_DIR=/work/shared/data/kobe .venv/bin/python bench/drift_chunks.py [--rows 1000000] [--reps 3]
      [--home DIR]

The batch: `--rows` rows drawn from Kobe's test and production splits (a quarter production: a
shift), with a `game_date` spread over 100 days (the definition's `time_column`), as parquet.
Without `--home` a home is made with tests/conftest.py's logistic-regression champion. Every
variant runs as a whole CLI process with `--no-domain`, taking turns, `--reps` times (a first
untimed run builds the caches); the median wall time, CPU time (user + system) and peak memory
(GNU time), the ratio to the whole check read at once (`--drop-invalid` reads the file in memory,
as every chunked check does; without it a parquet file is streamed in record batches, shown too),
and the load average before each run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "whole, streamed (baseline of the CLI)": [],
    "whole, read at once (the ratio's base)": ["--drop-invalid"],
    "--chunk-size 100000 (10 chunks)": ["--chunk-size", "100000"],
    "--chunk-size 10000 (100 chunks)": ["--chunk-size", "10000"],
    "--chunk-size 1000 (1,000 chunks)": ["--chunk-size", "1000"],
    "--chunk-period 1d (100 chunks)": ["--chunk-period", "1d"],
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def make_batch(home: Path, rows: int, path: Path) -> None:
    from core.config import Settings
    from core.data import preparation

    s = Settings.from_env({"WORKBENCH_HOME": str(home)})
    test, prod = preparation.load_split(s, "test"), preparation.load_split(s, "prod")
    rng = np.random.default_rng(0)
    n_prod = rows // 4
    frame = pd.concat([test.iloc[rng.integers(0, len(test), rows - n_prod)],
                       prod.iloc[rng.integers(0, len(prod), n_prod)]], ignore_index=True)
    days = pd.Timestamp("2001-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 100, rows)), unit="D")
    frame.drop(columns=[s.target]).assign(game_date=days.strftime("%Y-%m-%d")).to_parquet(path, index=False)


def run(path: Path, extra: list[str], env: dict) -> tuple[float, float, float, dict]:
    """One whole CLI process: wall s, CPU s, peak MB and its JSON; waits for its queued MLflow run."""
    from core.config import Settings
    from core.monitoring import run_log

    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M CPU %U %S", sys.executable, "-m", "core", "drift",
                          "--batch", str(path), "--no-domain", *extra, "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=1800, env=env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"drift {' '.join(extra)} failed: {out.stderr[-2000:]}")
    figures = out.stderr.rsplit("PEAK_KB", 1)[1].split()
    s = Settings.from_env({"WORKBENCH_HOME": env["WORKBENCH_HOME"]})
    while run_log.queued(s) and time.perf_counter() - t0 < 300:
        time.sleep(0.1)
    return wall, float(figures[2]) + float(figures[3]), int(figures[0]) / 1024, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    if args.home is None:
        from tests.conftest import make_champion_home

        args.home = Path(tempfile.mkdtemp(prefix="bench-chunks-"))
        make_champion_home(args.home)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(args.home)
    path = Path(tempfile.mkdtemp(prefix="bench-chunks-batch-")) / "dated.parquet"
    make_batch(args.home, args.rows, path)
    print(f"batch: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB; load {load()} (1/5 min)")
    run(path, ["--drop-invalid"], env)  # caches (training reference, model reference, model)
    found: dict[str, list[tuple[float, float, float, str]]] = {k: [] for k in VARIANTS}
    chunks: dict[str, tuple[int, int]] = {}
    for rep in range(args.reps):
        for name, extra in VARIANTS.items():
            before = load()
            wall, cpu, peak, out = run(path, extra, env)
            found[name].append((wall, cpu, peak, before))
            if "chunks" in out:
                chunks[name] = (len(out["chunks"]), sum(c["dataset_drift"] for c in out["chunks"]))
            print(f"  rep {rep + 1} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MB (load {before})")
    base = statistics.median(w for w, _, _, _ in found["whole, read at once (the ratio's base)"])
    print(f"\n| variant | wall s (median of {args.reps}) | ratio | CPU s | peak MB | chunks (with dataset drift) "
          "| load before runs |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in found.items():
        wall = statistics.median(r[0] for r in runs)
        n, drifted = chunks.get(name, (0, 0))
        print(f"| {name} | {wall:.2f} | {wall / base:.2f} | {statistics.median(r[1] for r in runs):.2f} "
              f"| {statistics.median(r[2] for r in runs):.0f} | {f'{n} ({drifted})' if n else '–'} "
              f"| {', '.join(r[3] for r in runs)} |")
    print(f"load at the end: {load()}")


if __name__ == "__main__":
    main()
