"""Benchmark: inferring a dataset definition (`core.data.infer.infer`) from a 100,000-row,
30-column table (the goal: well under 2 s), against the least any inference must do (one
`nunique` per column), measured in the same run.

The table: 10 continuous and 5 whole-number columns, 5 categorical ones, 3 binary ones, a
boolean, an identifier, a text identifier, a constant, text dates, an almost empty column, a leak
and the target (100 rows unlabelled).

Run: `.venv/bin/python bench/infer.py [--rows 100000] [--reps 5]`. Prints medians and the ratio.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data.infer import infer  # noqa: E402


def table(rows: int, seed: int = 1) -> pd.DataFrame:
    """The synthetic table described in the module docstring (31 columns with the target)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {f"num{i}": rng.normal(size=rows) for i in range(10)}
    cols |= {f"int{i}": rng.integers(0, 50, rows) for i in range(5)}
    cols |= {f"cat{i}": rng.choice(["a", "b", "c", "d"], rows) for i in range(5)}
    cols |= {f"bin{i}": rng.integers(0, 2, rows) for i in range(3)}
    y = (rng.random(rows) < 0.25).astype(float)
    cols |= {"flag": rng.random(rows) < 0.3, "id": np.arange(rows), "code": [f"u{i:08d}" for i in range(rows)],
             "const": 1, "when": pd.date_range("2020-01-01", periods=rows, freq="min").astype(str),
             "empty": np.where(rng.random(rows) < 0.97, np.nan, 1.0), "leak": y * 3 + rng.normal(0, 0.01, rows)}
    y[:100] = np.nan
    return pd.DataFrame({**cols, "y": y})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    frame = table(args.rows)
    print(f"{args.rows:,} rows x {frame.shape[1]} columns; load average before: {os.getloadavg()[0]:.2f}")
    infer(frame, "bench", "y")  # imports and caches warmed up
    full, floor = [], []
    for _ in range(args.reps):
        t = time.perf_counter()
        result = infer(frame, "bench", "y", prod_where="int0 > 40")
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in frame.columns:
            frame[c].nunique()
        floor.append(time.perf_counter() - t)
    a, b = statistics.median(full), statistics.median(floor)
    print(f"infer: median {a:.3f} s ({len(result.kinds)} features, {len(result.excluded)} left out)")
    print(f"one nunique per column: median {b:.3f} s; ratio {a / b:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
