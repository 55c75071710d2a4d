"""Bring-your-own-dataset benchmark: from a file to a registered champion, as a user meets it.

A synthetic 100,000-row, 30-column file (24 numeric columns, 5 categorical ones with 4 to 60
categories, a binary target from a logistic model of some of them; 2 % missing values in two
columns) is written as CSV. Then, each a whole `python -m core` process:

(a) core: `dataset add FILE` → `prepare` → `train` (default budget), wall time of the three and
    each one's peak memory (ru_maxrss of the child);
(b) baseline, the same file glued by hand: pandas read, PyCaret `setup` with its own categorical
    handling (one-hot / its default encoder, imputation) and `compare_models` on lr, dt and
    lightgbm (10-fold CV, PyCaret's defaults), the best logged to MLflow with a signature and
    registered; one Python process.

Alternated, median of --reps; the machine's load average before each run is printed.

    .venv/bin/python bench/byod.py [--reps 3] [--rows 100000]
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
PY = sys.executable


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    """24 numeric + 5 categorical features and a two-valued target ("yes"/"no")."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    logit = np.full(rows, -0.8)
    for i in range(24):
        x = rng.normal(size=rows) * (1 + i % 3)
        data[f"num_{i:02d}"] = np.round(x, 4)
        if i < 8:
            logit += 0.25 * x / (1 + i % 3)
    for j, k in enumerate((4, 8, 12, 30, 60)):
        cats = np.array([f"c{j}_{v:02d}" for v in range(k)])
        codes = rng.integers(0, k, size=rows)
        data[f"cat_{j}"] = cats[codes]
        logit += rng.normal(scale=0.6, size=k)[codes]
    frame = pd.DataFrame(data)
    frame["target"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    for col in ("num_03", "cat_1"):
        frame.loc[rng.random(rows) < 0.02, col] = np.nan
    return frame


# runs one command and prints its own child's peak RSS (KiB) last on stderr: a per-command peak
WRAP = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one command."""
    t0 = time.perf_counter()
    done = subprocess.run([PY, "-c", WRAP, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = int(done.stderr.strip().splitlines()[-1].split()[1])
    return seconds, peak / 1024, done.stdout


BASELINE = r'''
import sys, time, mlflow, pandas as pd
from mlflow.models import infer_signature
from pycaret.classification import ClassificationExperiment
path, home = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
df = pd.read_csv(path)
exp = ClassificationExperiment()
exp.setup(data=df, target="target", session_id=42, verbose=False, html=False, log_experiment=False,
          system_log=False, n_jobs=1)
best = exp.compare_models(include=["lr", "dt", "lightgbm"], sort="AUC", verbose=False)
final = exp.finalize_model(best)
x = df.drop(columns=["target"]).head(5)
with mlflow.start_run(run_name="baseline"):
    info = mlflow.sklearn.log_model(final, name="model", signature=infer_signature(x, final.predict_proba(x)),
                                    input_example=x, registered_model_name="baseline-model",
                                    serialization_format="cloudpickle")
print(exp.pull().iloc[0].to_json())
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-byod-"))
    path = work / "synthetic.csv"
    synthetic(args.rows).to_csv(path, index=False)
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows x 30 columns)")
    core_s, base_s, peaks, base_peaks, champs = [], [], [], [], []
    for rep in range(args.reps):
        print(f"rep {rep + 1}: load average {os.getloadavg()}")
        home = work / f"core-{rep}"
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
        env["WORKBENCH_HOME"] = str(home)
        total, peak = 0.0, 0.0
        out = ""
        for cmd in (["dataset", "add", str(path), "--name", "synthetic", "--target", "target"],
                    ["--dataset", "synthetic", "prepare"], ["--dataset", "synthetic", "train"]):
            s, p, out = run([PY, "-m", "core", *cmd, "--json"], env)
            print(f"  core {cmd[0] if cmd[0] != '--dataset' else cmd[2]}: {s:.1f} s")
            total += s
            peak = max(peak, p)
        champ = json.loads(out)["champion"]
        champs.append(champ)
        core_s.append(total)
        peaks.append(peak)
        print(f"  core total {total:.1f} s, champion {champ['name']} test log loss "
              f"{champ['test']['log_loss']:.4f} ROC-AUC {champ['test']['roc_auc']:.4f}")
        print(f"  load average {os.getloadavg()}")
        bhome = work / f"base-{rep}"
        bhome.mkdir()
        s, p, out = run([PY, "-c", BASELINE, str(path), str(bhome)], dict(os.environ))
        base_s.append(s)
        base_peaks.append(p)
        print(f"  baseline (PyCaret compare_models lr/dt/lightgbm + MLflow by hand): {s:.1f} s; best {out.strip()[:200]}")
    med, bmed = statistics.median(core_s), statistics.median(base_s)
    print(json.dumps({"rows": args.rows, "reps": args.reps, "core_seconds": core_s, "baseline_seconds": base_s,
                      "core_median_s": round(med, 1), "baseline_median_s": round(bmed, 1),
                      "ratio_core_to_baseline": round(med / bmed, 2), "core_peak_mib_max": round(max(peaks)),
                      "load_after": os.getloadavg(), "champions": champs}, indent=1))


if __name__ == "__main__":
    main()
