"""Benchmark of the model server: single-shot latency, concurrent throughput, in-process limit.

Run: `.venv/bin/python bench/serve.py` (KOBE_DATA_DIR for the raw files; WORKBENCH_HOME to reuse
a home with a champion). Starts its own `mlflow models serve` on a free port and stops it.
Targets (issue 4): p50 <= 4 ms, p99 <= 10 ms through the project's client, >= 400 req/s with
8 concurrent clients, zero errors.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import requests

from _home import bench_home

from core import data, serving, tracking

SEQUENTIAL = 1000
THREADS = 8
SECONDS = 10.0


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def main() -> None:
    settings = bench_home()
    settings = settings.replace(serve_port=serving.free_port())
    prod = data.load_split(settings, "prod")
    rows = tracking.feature_frame(prod, settings.features).to_numpy().tolist()
    t0 = time.perf_counter()
    status = serving.start(settings)
    startup = time.perf_counter() - t0
    print(f"server: {status.model_uri} at {status.url}, ready in {startup:.1f} s (pid {status.pid})")
    try:
        client = serving.Client(status.url, settings.request_timeout_s, settings.features)
        for i in range(100):  # warm-up
            client.predict_rows([rows[i]])

        # 1) sequential single-row requests through the project's client (keep-alive session)
        lat: list[float] = []
        errors = 0
        for i in range(SEQUENTIAL):
            t = time.perf_counter()
            try:
                client.predict_rows([rows[i % len(rows)]])
            except serving.ServerError:
                errors += 1
            lat.append(time.perf_counter() - t)
        seq = percentiles(lat)

        # baseline in the same run: plain requests.post, a new connection per request
        import json
        plain: list[float] = []
        for i in range(300):
            body = json.dumps({"dataframe_split": {"columns": list(settings.features), "data": [rows[i]]}})
            t = time.perf_counter()
            requests.post(f"{status.url}/invocations", data=body,
                          headers={"Content-Type": "application/json"}, timeout=10).raise_for_status()
            plain.append(time.perf_counter() - t)
        base = percentiles(plain)

        # 2) throughput: 8 concurrent clients for 10 s
        counts = [0] * THREADS
        errs = [0] * THREADS
        stop_at = time.perf_counter() + SECONDS

        def worker(k: int) -> None:
            with serving.Client(status.url, settings.request_timeout_s, settings.features) as c:
                i = k
                while time.perf_counter() < stop_at:
                    try:
                        c.predict_rows([rows[i % len(rows)]])
                        counts[k] += 1
                    except serving.ServerError:
                        errs[k] += 1
                    i += THREADS

        t = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        rps = sum(counts) / elapsed
        conc_errors = sum(errs)
        client.close()
    finally:
        serving.stop(settings)

    # 3) the limit: in-process predict_proba of one row
    _, model = tracking.load_model(settings, status.model_version)
    frames = [tracking.feature_frame(prod.iloc[[i]], settings.features) for i in range(1000)]
    for f in frames[:50]:
        model.predict_proba(f)
    inproc: list[float] = []
    for f in frames:
        t = time.perf_counter()
        model.predict_proba(f)
        inproc.append(time.perf_counter() - t)
    lim = percentiles(inproc)

    print(f"\nsequential, {SEQUENTIAL} single-row requests through serving.Client (keep-alive session):")
    print(f"  p50 {seq['p50']:.2f} ms   p95 {seq['p95']:.2f} ms   p99 {seq['p99']:.2f} ms   errors {errors}")
    print(f"baseline, 300 plain requests.post (new connection each):")
    print(f"  p50 {base['p50']:.2f} ms   p95 {base['p95']:.2f} ms   p99 {base['p99']:.2f} ms"
          f"   -> client p50 is {base['p50'] / seq['p50']:.2f}x faster")
    print(f"throughput, {THREADS} concurrent clients for {elapsed:.1f} s:")
    print(f"  {rps:,.0f} requests/s ({sum(counts):,} requests, {conc_errors} errors)")
    print(f"limit, in-process predict_proba of one row (1000 calls):")
    print(f"  p50 {lim['p50']:.3f} ms   -> HTTP p50 is {seq['p50'] / lim['p50']:.1f}x the in-process time")
    checks = {
        "p50 <= 4 ms": seq["p50"] <= 4.0,
        "p99 <= 10 ms": seq["p99"] <= 10.0,
        ">= 400 req/s": rps >= 400,
        "zero errors": errors == 0 and conc_errors == 0,
    }
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print("\ntargets: " + ", ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in checks.items()))


if __name__ == "__main__":
    main()
