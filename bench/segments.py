"""Metrics per segment on 1,000,000 rows: `core.monitoring.segments` and `python -m core segments`.

Run:  KOBE_DATA_DIR=/work/shared/data/kobe .venv/bin/python bench/segments.py [--rows 1000000] [--reps 5]
      [--cli-reps 3]   (WORKBENCH_HOME: a home with prepared Kobe data and a champion, else a
      throwaway one with a logistic regression, bench/_home.py)

A labelled batch of `--rows` rows is drawn (with replacement) from the prepared Kobe data, with
every column of the extended feature set. Printed, in one run, with the load average beside each
figure:

- `segments.segments` on the champion's outputs (scored once, outside the timing), the default
  feature set (6 features: 4 numeric in quintiles, `period` by value, `playoffs`), median of
  `--reps`; the same on the extended feature set (10 features, `action_type`'s 57 categories
  pooled beyond 10);
- baselines measured in the same run: scikit-learn's metrics (`TaskKind.metrics`) once on the
  whole batch, and once per segment on a boolean mask of its rows (the same cuts: what
  `segments` did before `core.modeling.group_metrics`);
- the whole command, `python -m core segments --batch FILE --json` (read + validate the parquet
  file, load and score with the champion, judge), wall median of `--cli-reps`, and its own `seconds`.
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
sys.path.insert(0, str(ROOT / "bench"))

from _home import bench_home  # noqa: E402

from core.data import preparation  # noqa: E402
from core.modeling import registry  # noqa: E402
from core.monitoring import segments as seg  # noqa: E402
from core.monitoring.champion import champion_model  # noqa: E402
from core.monitoring.outputs import model_outputs  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(fn, reps: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def by_masks(frame: pd.DataFrame, y: np.ndarray, out: np.ndarray, kind, features, spec, threshold) -> int:
    """scikit-learn's metrics on each segment's rows (one boolean mask per segment, the same cuts)."""
    n = 0
    for f in features:
        c = seg.cut(frame[f], spec.feature(f))
        for i in range(len(c.names)):
            mask = c.codes == i
            kind.metrics(y[mask], out[mask], threshold)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cli-reps", type=int, default=3)
    args = ap.parse_args()
    print(f"start: {load()}")
    s = bench_home()
    model = registry.champion(s)
    scoped = model.scoped(s)
    spec = s.dataset
    ext_spec = spec.with_feature_set("extended")
    extended = ext_spec.features
    pool = pd.concat([preparation.load_split(s, "train"), preparation.load_split(s, "test")], ignore_index=True)
    rng = np.random.default_rng(0)
    batch = pool.iloc[rng.integers(0, len(pool), args.rows)].reset_index(drop=True)
    batch = batch[[*extended, s.target]]
    _, fitted = champion_model(scoped, model)
    out = model_outputs(fitted, batch, scoped.features, spec.categorical_features, model)
    y = batch[s.target].to_numpy(dtype="float64")
    kind, threshold = model.kind, model.decision_threshold
    print(f"batch: {len(batch):,} rows drawn from {len(pool):,} prepared Kobe rows; champion v{model.version} "
          f"({model.model or 'lr'}), threshold {threshold:.3f}; {load()}")

    def judge(features, on):
        return lambda: seg.segments(batch, y, out, kind, features=features, spec=on, threshold=threshold)

    t_def, runs_def, r_def = timed(judge(scoped.features, scoped.dataset), args.reps)
    print(f"segments, default set ({len(scoped.features)} features, {len(r_def.segments)} segments): "
          f"median {t_def:.3f} s ({', '.join(f'{t:.3f}' for t in runs_def)}); {load()}")
    t_ext, runs_ext, r_ext = timed(judge(extended, ext_spec), args.reps)
    print(f"segments, extended set ({len(extended)} features, {len(r_ext.segments)} segments): "
          f"median {t_ext:.3f} s ({', '.join(f'{t:.3f}' for t in runs_ext)}); {load()}")
    t_whole, _, _ = timed(lambda: kind.metrics(y, out, threshold), args.reps)
    print(f"baseline: scikit-learn's metrics once on the whole batch: median {t_whole:.3f} s; segments (default "
          f"set, {len(r_def.segments)} segments) / that = {t_def / t_whole:.2f}; {load()}")
    t_mask, runs_mask, n = timed(lambda: by_masks(batch, y, out, kind, scoped.features, spec, threshold),
                                 max(1, args.reps // 2))
    print(f"baseline: scikit-learn's metrics per segment, one boolean mask each ({n} segments, default set): "
          f"median {t_mask:.3f} s "
          f"({', '.join(f'{t:.3f}' for t in runs_mask)}); ratio ours / masks {t_def / t_mask:.2f}; {load()}")
    worst = r_def.worst(3)
    print("worst (default set): " + "; ".join(f"{w.feature} {w.segment} ({w.rows:,} rows, log loss "
                                              f"{w.metrics['log_loss']:.4f}, gap {w.gap:+.4f})" for w in worst))

    with tempfile.TemporaryDirectory(prefix="segments-bench-") as tmp:
        path = Path(tmp) / "batch.parquet"
        batch.to_parquet(path, index=False)
        env = {**os.environ, "WORKBENCH_HOME": str(s.home)}
        cmd = [sys.executable, "-m", "core", "segments", "--batch", str(path), "--json"]
        walls, own = [], []
        for _ in range(args.cli_reps):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if done.returncode != 0:
                print(done.stdout, done.stderr)
                raise SystemExit(done.returncode)
            result = json.loads(done.stdout)
            own.append(result["seconds"])
        size = path.stat().st_size / 1e6
        print(f"`python -m core segments --batch <{len(batch):,} rows, {size:.1f} MB> --json`: "
              f"wall median {statistics.median(walls):.2f} s ({', '.join(f'{t:.2f}' for t in walls)}), its own "
              f"seconds median {statistics.median(own):.2f}; {len(result['segments'])} segments; first: "
              f"{result['segments'][0]['feature']} {result['segments'][0]['segment']}; {load()}")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
