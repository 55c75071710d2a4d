"""Benchmark: what the one input rule table (issue 13) costs, against the same work without it,
measured in the same run.

- served model, one row: `ServedModel.predict_proba` of the champion's pipeline on a one-row frame
  as the model server calls it, with the dataset's rule table (`rules=`, what every model logged
  now carries) and without it (models logged before): median over alternating rounds;
- a batch, 1,000,000 rows: what `read_batch` runs on a valid batch (`RuleTable.frame_problems`,
  column by column), the detailed numpy pass (`array_problems`) and the pandera schema itself
  (run only when something is wrong), against a bare `np.isfinite` pass over the same matrix
  (the least any check must do).

Run: `KOBE_DATA_DIR=... .venv/bin/python bench/rules.py` (WORKBENCH_HOME to reuse a home with a
champion). Prints the machine's load average before and after.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pandas as pd
from _home import bench_home

from core.data import preparation
from core.modeling import pyfunc_model, registry

CALLS = 2000
ROUNDS = 5
ROWS = 1_000_000


def per_call_ms(model: pyfunc_model.ServedModel, frame: pd.DataFrame, n: int) -> float:
    """Median milliseconds of `n` one-row predict_proba calls."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        model.predict_proba(frame)
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def timed(fn, reps: int = 5) -> float:
    """Median seconds of `reps` calls of `fn`."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    print(f"load average before: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    settings = bench_home()
    _, pipeline = registry.load_model(settings)
    rules = settings.dataset.rules
    test = preparation.load_split(settings, "test")
    row = test.loc[:0, list(settings.features)].astype("float64")
    plain = pyfunc_model.ServedModel(pipeline)
    checked = pyfunc_model.ServedModel(pipeline, rules=rules)
    with_rules, without = [], []
    for _ in range(ROUNDS):  # alternate, so both meet the same machine
        without.append(per_call_ms(plain, row, CALLS // ROUNDS))
        with_rules.append(per_call_ms(checked, row, CALLS // ROUNDS))
    a, b = statistics.median(without), statistics.median(with_rules)
    print(f"served model, one row: without rules {a:.4f} ms, with rules {b:.4f} ms "
          f"(+{(b - a) * 1000:.0f} µs, ratio {b / a:.2f}); engine: {checked.engine}")

    rng = np.random.default_rng(0)
    big = test.loc[:, list(settings.features)].astype("float64").sample(ROWS, replace=True, random_state=0)
    big = big.reset_index(drop=True)
    big["lat"] += rng.normal(0, 1e-4, ROWS)
    x = big.to_numpy()
    rules.schema  # built once, as read_batch's first call would
    t_bare = timed(lambda: np.isfinite(x).all(axis=1))
    t_numpy = timed(lambda: rules.array_problems(x))
    t_columns = timed(lambda: rules.frame_problems(big))  # what read_batch runs on a valid batch
    t_pandera = timed(lambda: rules.schema.validate(big, lazy=True))
    print(f"1,000,000 rows: bare isfinite {t_bare * 1000:.0f} ms; rule table on numpy (matrix) {t_numpy * 1000:.0f} ms "
          f"(ratio {t_numpy / t_bare:.1f}); frame_problems on a valid batch (column by column) "
          f"{t_columns * 1000:.0f} ms (ratio {t_columns / t_bare:.1f}); the pandera schema itself "
          f"{t_pandera * 1000:.0f} ms (ratio {t_pandera / t_bare:.1f}); problems found: {rules.frame_problems(big) or 'none'}")
    t0 = time.perf_counter()
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", "import pandera.pandas"], check=True)
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pandas"], check=True)
    t_pandas = time.perf_counter() - t0
    print(f"cold `import pandera.pandas` in a new process: {t_import:.2f} s (`import pandas` alone: {t_pandas:.2f} s)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
