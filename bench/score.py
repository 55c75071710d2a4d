"""Benchmark of production scoring: 1,000,000 rows in-process and over HTTP in the same run.

Run: `.venv/bin/python bench/score.py` (KOBE_DATA_DIR for the raw files; WORKBENCH_HOME to reuse
a home with a champion). Starts its own `mlflow models serve` on a free port and stops it.
Targets (issue 5): in-process <= 1 s; over HTTP >= 150,000 rows/s with chunking.
Baseline in the same run: one request with the whole 6,426-row production file.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from _home import bench_home

from core.scoring import local
from core.serving import client
from core.serving import server as model_server

ROWS = 1_000_000
REPEATS = 3


def median_seconds(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main() -> None:
    settings = bench_home()
    settings = settings.replace(serve_port=model_server.free_port())
    prod = pd.read_parquet(settings.prod_filtered_path)
    raw_prod = pd.read_parquet(settings.raw_prod).loc[:, list(settings.features)].dropna()
    big = prod.sample(ROWS, replace=True, random_state=0).reset_index(drop=True)
    version, model = local.load_champion(settings)
    print(f"model v{version}; batch: {ROWS:,} rows resampled from the {len(prod):,}-row production file")

    t_in, p_in = median_seconds(lambda: local.predict_in_process(model, big, settings.features))
    status = model_server.start(settings, workers=1)
    try:
        with client.Client(status.url, 60.0, settings.features) as c:
            c.predict_proba(raw_prod.head(100))
            t_one, _ = median_seconds(lambda: c.predict_proba(raw_prod), repeats=5)
        results = {}
        for chunk, workers in ((10_000, 2), (25_000, 2), (50_000, 2)):
            t, p = median_seconds(lambda: local.predict_http(big, status.url, settings.features,
                                                               chunk_rows=chunk, workers=workers))
            results[(chunk, workers, "1 server worker")] = (t, float(np.max(np.abs(p - p_in))))
    finally:
        model_server.stop(settings)
    # the same with two uvicorn workers (the server's JSON encoding is the bottleneck)
    status = model_server.start(settings, workers=2)
    try:
        for chunk, workers in ((25_000, 2), (50_000, 3)):
            t, p = median_seconds(lambda: local.predict_http(big, status.url, settings.features,
                                                               chunk_rows=chunk, workers=workers))
            results[(chunk, workers, "2 server workers")] = (t, float(np.max(np.abs(p - p_in))))
    finally:
        model_server.stop(settings)

    print(f"\nin-process predict_proba, {ROWS:,} rows (median of {REPEATS}): {t_in:.3f} s "
          f"= {ROWS / t_in:,.0f} rows/s")
    print(f"baseline, one HTTP request with the whole {len(raw_prod):,}-row production file (median of 5): "
          f"{t_one * 1000:.1f} ms = {len(raw_prod) / t_one:,.0f} rows/s")
    print(f"HTTP in chunks, {ROWS:,} rows (median of {REPEATS}):")
    for (chunk, workers, server), (t, diff) in results.items():
        print(f"  {server}, chunk {chunk:>6,} rows, {workers} concurrent requests: {t:.2f} s = {ROWS / t:,.0f} rows/s "
              f"({t / t_in:.0f}x in-process; max |HTTP - in-process| = {diff:.1e})")
    best = min(t for t, _ in results.values())
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    print(f"\ntargets: in-process <= 1 s: {'PASS' if t_in <= 1 else 'FAIL'}, "
          f"HTTP >= 150,000 rows/s: {'PASS' if ROWS / best >= 150_000 else 'FAIL'} (best {ROWS / best:,.0f} rows/s)")


if __name__ == "__main__":
    main()
