"""Benchmark of batch scoring, each figure against a stock baseline measured in the same run:

- in-process, 1,000,000 rows: `core.scoring.local.predict_in_process` (the registered pipeline,
  `mlflow.sklearn.load_model`) vs the stock pyfunc (`mlflow.pyfunc.load_model(...).predict`);
  target <= 0.5 s;
- over HTTP, 400,000 rows: the workbench's batch path (`local.predict_http`: parquet chunks sent in
  parallel by `core/serving/client.py` to the workbench's server, `server.start`, 2 workers) vs
  stock `mlflow models serve` (1 worker) with `requests` posting 50,000-row `dataframe_split`
  chunks one after another; target >= 200,000 rows/s.

Run: `.venv/bin/python bench/score.py` (KOBE_DATA_DIR for the raw files; WORKBENCH_HOME to reuse
a home with a champion). Starts its own servers on free ports and stops them. Every line prints
the 1-minute load average at that moment (a figure taken above ~1.5 on this 2-core machine is
"loaded", not a target met).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import requests
from _home import bench_home
from _stock import stock_model_uri, stock_server

from core.scoring import local
from core.serving import client
from core.serving import server as model_server

ROWS = 1_000_000
HTTP_ROWS = 400_000
REPEATS = 3
STOCK_CHUNK = 50_000


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def median_seconds(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def stock_http(url: str, frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """What a user's script does with the stock server: `dataframe_split` chunks through requests."""
    out = []
    with requests.Session() as session:
        for start in range(0, len(frame), STOCK_CHUNK):
            chunk = frame.iloc[start:start + STOCK_CHUNK].loc[:, list(features)].astype("float64")
            body = {"dataframe_split": json.loads(chunk.to_json(orient="split", index=False))}
            r = session.post(f"{url}/invocations", json=body, timeout=120)
            r.raise_for_status()
            out.append(np.asarray(r.json()["predictions"])[:, 1])
    return np.concatenate(out)


def main() -> None:
    import mlflow

    settings = bench_home().replace(serve_port=model_server.free_port())
    prod = pd.read_parquet(settings.prod_filtered_path)
    big = prod.sample(ROWS, replace=True, random_state=0).reset_index(drop=True)
    http_rows = big.head(HTTP_ROWS)
    version, model = local.load_champion(settings)
    steps = " + ".join(type(s).__name__ for _, s in getattr(model, "steps", [("", model)]))
    print(f"champion v{version} ({steps}); {ROWS:,} rows resampled from the {len(prod):,}-row production file; "
          f"{os.cpu_count()} cores; {load()}")

    # ---- in-process
    t_in, p_in = median_seconds(lambda: local.predict_in_process(model, big, settings.features))
    print(f"in-process, ours (pipeline): {t_in:.3f} s = {ROWS / t_in:,.0f} rows/s (median of {REPEATS}); {load()}")
    stock_uri = stock_model_uri(settings, model)
    stock_pyfunc = mlflow.pyfunc.load_model(stock_uri)
    t_stock_in, p_stock = median_seconds(lambda: np.asarray(stock_pyfunc.predict(
        big.loc[:, list(settings.features)].astype("float64")))[:, 1])  # the same frame conversion as ours
    print(f"in-process, stock mlflow.pyfunc predict: {t_stock_in:.3f} s = {ROWS / t_stock_in:,.0f} rows/s; "
          f"max |diff| {float(np.max(np.abs(p_stock - p_in))):.1e}; {load()}")

    # ---- over HTTP: stock first, then ours
    with stock_server(settings, stock_uri) as url:
        stock_http(url, http_rows.head(STOCK_CHUNK), settings.features)  # warm-up
        t_stock, p = median_seconds(lambda: stock_http(url, http_rows, settings.features))
        print(f"HTTP, stock mlflow models serve (1 worker) + requests, {STOCK_CHUNK:,}-row dataframe_split chunks: "
              f"{t_stock:.2f} s = {HTTP_ROWS / t_stock:,.0f} rows/s; max |diff| "
              f"{float(np.max(np.abs(p - p_in[:HTTP_ROWS]))):.1e}; {load()}")
    results = {}
    status = model_server.start(settings, workers=2)
    try:
        with client.Client(status.url, 60.0, settings.features) as c:
            c.predict_proba(http_rows.head(1000))  # warm-up
        for chunk, workers in ((25_000, 2), (50_000, 2), (local.CHUNK_ROWS, local.HTTP_WORKERS)):
            t, p = median_seconds(lambda: local.predict_http(http_rows, status.url, settings.features,
                                                               chunk_rows=chunk, workers=workers))
            results[(chunk, workers)] = t
            print(f"HTTP, ours (server.start, 2 workers; parquet chunks of {chunk:,} rows, {workers} at a time): "
                  f"{t:.2f} s = {HTTP_ROWS / t:,.0f} rows/s ({(HTTP_ROWS / t) / (HTTP_ROWS / t_stock):.1f}x stock); "
                  f"max |diff| {float(np.max(np.abs(p - p_in[:HTTP_ROWS]))):.1e}; {load()}")
    finally:
        model_server.stop(settings)
    best = min(results.values())
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"targets: in-process 1,000,000 rows <= 0.5 s: {'PASS' if t_in <= 0.5 else 'FAIL'} ({t_in:.3f} s); "
          f"HTTP >= 200,000 rows/s: {'PASS' if HTTP_ROWS / best >= 200_000 else 'FAIL'} (best {HTTP_ROWS / best:,.0f})")


if __name__ == "__main__":
    main()
