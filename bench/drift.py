"""Benchmark of the drift check on a 1,000,000-row batch (production resampled with noise).

Run:  WORKBENCH_HOME=<a home with prepared data and a champion> .venv/bin/python bench/drift.py

Prints, in one run:
- per-feature statistics + verdict (`drift_statistics.feature_drift`, no file reading, scoring or domain
  classifier): median of 7, against a plain numpy PSI (reference-quantile bins) + scipy KS
  baseline measured on the same batch (median of 3);
- the pieces of a check (read + validate, scoring, domain classifier);
- the whole `python -m core drift --batch <file> --json` (wall time incl. start-up, median of 3)
  and its peak resident memory.
"""
from __future__ import annotations

import json
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

from core.config import Settings  # noqa: E402
from core.data import batches, preparation
from core.modeling import model_io, registry
from core.monitoring import check, reference
from core.monitoring import statistics as drift_statistics

N = 1_000_000


def make_batch(settings: Settings, seed: int = 0) -> pd.DataFrame:
    """Production shots resampled to N rows with small noise, kept inside each feature's domain."""
    prod = preparation.load_split(settings, "prod")
    rng = np.random.default_rng(seed)
    b = prod.iloc[rng.integers(0, len(prod), N)][list(settings.features)].reset_index(drop=True)
    b["lat"] += rng.normal(0, 0.002, N)
    b["lon"] += rng.normal(0, 0.002, N)
    b["minutes_remaining"] = np.clip(b["minutes_remaining"] + rng.integers(-1, 2, N), 0, 11)
    b["shot_distance"] = np.clip(b["shot_distance"] + rng.integers(-1, 2, N), 0, None)
    return b.astype("float64")


def baseline(batch: pd.DataFrame, train: pd.DataFrame, features: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Plain numpy PSI on reference deciles + scipy two-sample KS, per feature."""
    from scipy import stats

    out = {}
    for f in features:
        ref, cur = train[f].to_numpy(), batch[f].to_numpy()
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
        r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
        c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
        r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
        out[f] = (float(np.sum((c - r) * np.log(c / r))), float(stats.ks_2samp(ref, cur).pvalue))
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    s = Settings.from_env()
    if not preparation.is_prepared(s) or registry.champion(s) is None:
        sys.exit("Needs prepared data and a champion in WORKBENCH_HOME (Data and Train pages).")
    train = preparation.load_split(s, "train")
    batch = make_batch(s)
    ref = reference.load_reference(s)
    print(f"batch: {len(batch):,} rows (production resampled with noise); training reference: {ref.n_rows:,} rows")

    ours, stats = timed(lambda: drift_statistics.feature_drift(batch, ref, s), 7)
    base, base_result = timed(lambda: baseline(batch, train, s.features), 3)
    print(f"per-feature statistics + verdict: median {ours * 1000:.1f} ms (7 runs)")
    print(f"baseline numpy PSI + scipy KS:    median {base * 1000:.1f} ms (3 runs); ratio baseline/ours {base / ours:.1f}x")
    print(f"verdict: dataset_drift={stats.dataset_drift}, drifted={stats.drifted}")
    for f, v in stats.features.items():
        effect = f"PSI {v.psi:.3f} W/σ {v.wasserstein:.3f}" if v.psi is not None else f"JS {v.js:.3f}"
        print(f"  {f:18s} {effect:28s} p {v.p_value:.1e}  baseline PSI {base_result[f][0]:.3f} KS p {base_result[f][1]:.1e}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prod_1m.parquet"
        batch.to_parquet(path, index=False)
        size_mb = path.stat().st_size / 1e6
        t_read, b = timed(lambda: batches.read_batch(path, s), 3)
        version, model = check.champion_model(s)
        t_score, _ = timed(lambda: model_io.predict_proba(model, b.frame, s.features), 3)
        t_dom, auc = timed(lambda: drift_statistics.domain_auc(train, b.frame, s.features, s.drift), 3)
        print(f"read + validate {size_mb:.1f} MB parquet: median {t_read * 1000:.0f} ms; scoring (model v{version}): "
              f"{t_score * 1000:.0f} ms; domain classifier: {t_dom * 1000:.0f} ms (AUC {auc:.3f})")

        walls, peaks = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            # GNU time reports the command's own peak RSS (getrusage of children would also count
            # the pages a fork shares with this 1M-row parent before exec)
            out = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M", sys.executable, "-m", "core", "drift",
                                  "--batch", str(path), "--json"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=600)
            walls.append(time.perf_counter() - t0)
            if out.returncode != 0:
                sys.exit(f"`python -m core drift` failed: {out.stderr}")
            peaks.append(int(out.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) / 1024)
        result = json.loads(out.stdout)
        print(f"`python -m core drift --batch <1M rows> --json`: wall median {statistics.median(walls):.2f} s "
              f"(runs {', '.join(f'{w:.2f}' for w in walls)}), peak RSS {max(peaks):.0f} MB (GNU time, max of 3); "
              f"its own `seconds` {result['seconds']:.2f}; dataset_drift={result['dataset_drift']}, "
              f"trustworthy={result['estimated_performance']['trustworthy']}")


if __name__ == "__main__":
    main()
