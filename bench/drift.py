"""Drift checks against Evidently, and the speed and memory of `python -m core drift`.

Run:  WORKBENCH_HOME=<a home with prepared Kobe data and a champion> .venv/bin/python bench/drift.py
      [--evidently /work/evidently-venv/bin/python] [--reps 3] [--no-cli]

Evidently (0.7, `DataDriftPreset()` with its defaults, and `ValueDrift(method="psi")` for the
continuous features) does not install beside this stack: it runs in its own virtual environment
(`python3.11 -m venv /work/evidently-venv; pip install evidently==0.7.23 'pandas<3' pyarrow`) as a
subprocess reading the same parquet files (training split as reference). Prints, in one run:

- per case, this project's verdict (features flagged, dataset drift and the rule that fired, the
  domain classifier's AUC with its interval) next to Evidently's, and the effect sizes side by
  side: dev halves, a 1,000,000-row dev resample, `lat` +0.01 sd, `shot_distance` +1/+2/+4 ft,
  the production file, and on the extended feature set's `action_type` (52 categories) an
  unshifted 300-row sample and a shift (20 % of the rows relabelled);
- the wall time, CPU time and peak memory (GNU time) of `python -m core drift --batch FILE --json`
  on 1,000,000 and 5,000,000 rows (and when its MLflow run, logged after the output by a
  background process, is in the store), and Evidently's `Report.run` and whole process on the
  same 1,000,000-row batch; the load average with every figure.
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

from core.config import Settings  # noqa: E402
from core.data import preparation  # noqa: E402
from core.modeling import registry  # noqa: E402
from core.monitoring import domain, policy, reference, run_log  # noqa: E402
from core.monitoring import statistics as drift_statistics  # noqa: E402

EVIDENTLY = "/work/evidently-venv/bin/python"
CATEGORICAL = "action_type"

# the Evidently side: one process, every case, the same parquet files
RUNNER = r'''
import json, sys, time
t_start = time.perf_counter()
import pandas as pd
from evidently import Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset
jobs = json.load(open(sys.argv[1]))
out = {"import_s": time.perf_counter() - t_start, "cases": {}}
refs = {}
for job in jobs:
    cols = job["columns"]
    key = (job["reference"], tuple(cols))
    if key not in refs:
        refs[key] = pd.read_parquet(job["reference"], columns=cols)
    ref = refs[key]
    t0 = time.perf_counter()
    cur = pd.read_parquet(job["current"], columns=cols)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
    t_run = time.perf_counter() - t0
    case = {"rows": len(cur), "read_s": t_read, "run_s": t_run, "columns": {}}
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("DriftedColumnsCount"):
            case["share"] = m["value"]["share"]
            case["dataset_drift"] = m["value"]["share"] >= cfg["drift_share"]
        elif cfg["type"].endswith("ValueDrift"):
            method, thr, value = cfg["method"], cfg["threshold"], float(m["value"])
            is_test = "p_value" in method or "test" in method.lower() or "K-S" in method or "chi" in method.lower()
            case["columns"][cfg["column"]] = {"method": method, "value": value,
                                              "drift": value < thr if is_test else value >= thr}
    if job["psi"]:
        snap = Report([ValueDrift(column=c, method="psi") for c in job["psi"]]).run(reference_data=ref, current_data=cur)
        for m in snap.dict()["metrics"]:
            case["columns"].setdefault(m["config"]["column"], {})["psi"] = float(m["value"])
    out["cases"][job["name"]] = case
out["total_s"] = time.perf_counter() - t_start
print(json.dumps(out))
'''


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def cases(s: Settings) -> dict[str, pd.DataFrame]:
    """The batches compared (feature columns of the default set, plus the target)."""
    train, test, prod = (preparation.load_split(s, k) for k in ("train", "test", "prod"))
    sd = train.std(numeric_only=True)
    rng = np.random.default_rng(0)
    out = {
        "dev half A": test.sample(frac=0.5, random_state=1),
        "dev half B": test.drop(test.sample(frac=0.5, random_state=1).index),
        "dev resample 1M": test.iloc[rng.integers(0, len(test), 1_000_000)].reset_index(drop=True),
        "lat +0.01 sd": test.assign(lat=test["lat"] + 0.01 * sd["lat"]),
        "production": prod,
    }
    for ft in (1, 2, 4):
        out[f"shot_distance +{ft} ft"] = test.assign(shot_distance=test["shot_distance"] + ft)
    return out


def categorical_cases(s: Settings) -> dict[str, pd.DataFrame]:
    """`action_type` (52 categories): an unshifted 300-row sample, and 20 % of the rows relabelled."""
    test = preparation.load_split(s, "test")
    rng = np.random.default_rng(0)
    moved = test[CATEGORICAL].where(rng.random(len(test)) >= 0.2, "Driving Layup Shot")
    return {f"{CATEGORICAL} 300 rows, unshifted": test[[CATEGORICAL]].sample(300, random_state=1),
            f"{CATEGORICAL} 20% relabelled": pd.DataFrame({CATEGORICAL: moved})}


def ours(s: Settings, ref, train: pd.DataFrame, batch: pd.DataFrame) -> dict:
    """This project's verdict on one batch (in-process: statistics, domain classifier, policy)."""
    t0 = time.perf_counter()
    stats = drift_statistics.feature_drift(batch, ref, s)
    dom = domain.domain_check(train, batch, s.features, s.drift, s.seed)
    drifted, rules = policy.dataset_drift(len(stats.drifted), len(stats.features), dom, s.drift)
    return {"stats": stats, "domain": dom, "dataset_drift": drifted, "rules": rules, "s": time.perf_counter() - t0}


def evidently(python: str, jobs: list[dict], tmp: Path) -> dict:
    path = tmp / "jobs.json"
    path.write_text(json.dumps(jobs))
    script = tmp / "runner.py"
    script.write_text(RUNNER)
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M", python, str(script), str(path)],
                         capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"Evidently failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout)
    result["wall_s"] = wall
    result["peak_mb"] = int(out.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) / 1024
    return result


def effect(f) -> str:
    if f.kind == "continuous":
        return f"W/σ {f.wasserstein:.3f} PSI {f.psi:.3f}"
    return f"JS {f.js:.3f} (beyond chance {f.js_excess:.3f})"


def print_case(name: str, mine: dict, theirs: dict) -> None:
    stats, dom = mine["stats"], mine["domain"]
    auc = "n/a" if dom is None else f"{dom.auc:.3f} [{dom.low:.3f}, {dom.high:.3f}]"
    flagged = [c for c, v in theirs["columns"].items() if v.get("drift")]
    print(f"\n## {name} ({theirs['rows']:,} rows)")
    print(f"  ours:      flagged {stats.drifted or '-'}; dataset drift {mine['dataset_drift']}"
          f"{' (' + '; '.join(mine['rules']) + ')' if mine['rules'] else ''}; domain AUC {auc}")
    print(f"  Evidently: flagged {flagged or '-'}; dataset drift {theirs['dataset_drift']} "
          f"(share {theirs['share']:.2f}); Report.run {theirs['run_s']:.2f} s")
    for col, f in stats.features.items():
        e = theirs["columns"].get(col, {})
        psi = f" PSI {e['psi']:.3f}" if "psi" in e else ""
        print(f"    {col:18s} ours {effect(f):38s} {'DRIFT' if f.drift else 'ok   '} | Evidently "
              f"{e.get('method', '?')} {e.get('value', float('nan')):.3f}{psi} {'DRIFT' if e.get('drift') else 'ok'}")


def cli_runs(path: Path, reps: int, env: dict, s: Settings) -> tuple[list[float], list[float], list[float], dict]:
    """`reps` whole CLI processes: wall time, peak RSS and CPU time (user + system: less sensitive
    to other jobs than the wall time); each waits for the previous check's MLflow run, logged by
    a background process after the output (`core.monitoring.run_log`), so runs do not overlap."""
    walls, peaks, cpus, result = [], [], [], {}
    for _ in range(reps):
        before = load()
        t0 = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M CPU %U %S", sys.executable, "-m", "core", "drift",
                              "--batch", str(path), "--json"], cwd=ROOT, capture_output=True, text=True,
                             timeout=900, env=env)
        walls.append(time.perf_counter() - t0)
        if out.returncode != 0:
            sys.exit(f"`python -m core drift` failed: {out.stderr[-2000:]}")
        figures = out.stderr.rsplit("PEAK_KB", 1)[1].split()
        peaks.append(int(figures[0]) / 1024)
        cpus.append(float(figures[2]) + float(figures[3]))
        result = json.loads(out.stdout)
        while run_log.queued(s):  # the run is logged by the drain process
            if time.perf_counter() - t0 > 300:
                sys.exit("the queued Monitoramento run was not logged within 300 s")
            time.sleep(0.1)
        logged = time.perf_counter() - t0
        print(f"    run: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, {peaks[-1]:.0f} MB peak ({before} before); "
              f"its MLflow run logged {logged:.1f} s after the start (mlflow_pending={result.get('mlflow_pending')})")
    return walls, peaks, cpus, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evidently", default=EVIDENTLY, help="python of Evidently's virtual environment")
    ap.add_argument("--reps", type=int, default=3, help="CLI runs per batch size")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI timings")
    args = ap.parse_args()
    s = Settings.from_env()
    if not preparation.is_prepared(s) or registry.champion(s) is None:
        sys.exit("Needs prepared data and a champion in WORKBENCH_HOME (Data and Train pages).")
    s = registry.champion(s).scoped(s)  # the dataset seen through the champion's feature set
    print(f"bench/drift.py {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {load()}")
    train = preparation.load_split(s, "train")
    ref = reference.load_reference(s)
    features = list(s.features)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ref_path = tmp / "reference.parquet"
        train[features].to_parquet(ref_path, index=False)
        cat_ref_path = tmp / "reference_cat.parquet"
        train[[CATEGORICAL]].to_parquet(cat_ref_path, index=False)
        batches, jobs = {}, []
        for name, frame in cases(s).items():
            path = tmp / f"{len(jobs)}.parquet"
            frame.to_parquet(path, index=False)
            batches[name] = (frame, path)
            jobs.append({"name": name, "reference": str(ref_path), "current": str(path), "columns": features,
                         "psi": [f for f in features if ref.columns[f].kind == "continuous"]})
        for name, frame in categorical_cases(s).items():
            path = tmp / f"{len(jobs)}.parquet"
            frame.to_parquet(path, index=False)
            batches[name] = (frame, path)
            jobs.append({"name": name, "reference": str(cat_ref_path), "current": str(path),
                         "columns": [CATEGORICAL], "psi": []})
        print(f"Evidently: {len(jobs)} cases in one process ({load()} before)")
        theirs = evidently(args.evidently, jobs, tmp)
        cat_ref = reference.categorical_reference(train[CATEGORICAL])
        for name, (frame, _) in batches.items():
            if list(frame.columns) == [CATEGORICAL]:
                f = drift_statistics.column_drift(CATEGORICAL, cat_ref, frame[CATEGORICAL], s.drift)
                e = theirs["cases"][name]["columns"][CATEGORICAL]
                print(f"\n## {name} ({len(frame):,} rows)\n    {CATEGORICAL:18s} ours {effect(f):38s} "
                      f"{'DRIFT' if f.drift else 'ok   '} | Evidently {e['method']} {e['value']:.3g} "
                      f"{'DRIFT' if e['drift'] else 'ok'}")
            else:
                print_case(name, ours(s, ref, train, frame), theirs["cases"][name])
        one_m = theirs["cases"]["dev resample 1M"]
        print(f"\nEvidently on the 1M dev resample: Report.run {one_m['run_s']:.2f} s (+ {one_m['read_s']:.2f} s "
              f"reading); its whole process ({len(jobs)} cases) {theirs['wall_s']:.1f} s, peak {theirs['peak_mb']:.0f} MB")
        if args.no_cli:
            return
        # MLflow's `set_tracking_uri` (called in this process) exports MLFLOW_TRACKING_URI: the CLI
        # is run as a person would run it, on the embedded store without that variable
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" or not s.embedded_tracking}
        sizes = {"1M dev resample": batches["dev resample 1M"][1]}
        prod = preparation.load_split(s, "prod")
        rng = np.random.default_rng(5)
        prod_1m = tmp / "prod_1m.parquet"
        prod.iloc[rng.integers(0, len(prod), 1_000_000)].to_parquet(prod_1m, index=False)
        sizes["1M production resample"] = prod_1m
        dev_5m = tmp / "dev_5m.parquet"
        test = preparation.load_split(s, "test")
        test.iloc[rng.integers(0, len(test), 5_000_000)].to_parquet(dev_5m, index=False)
        sizes["5M dev resample"] = dev_5m
        for label, path in sizes.items():
            print(f"\n`python -m core drift --batch <{label}> --json` ({path.stat().st_size / 1e6:.1f} MB parquet):")
            walls, peaks, cpus, result = cli_runs(path, args.reps, env, s)
            print(f"  median {statistics.median(walls):.2f} s wall (runs {', '.join(f'{w:.2f}' for w in walls)}), "
                  f"CPU {statistics.median(cpus):.2f} s, peak {max(peaks):.0f} MB; its own `seconds` {result['seconds']:.2f}; dataset_drift="
                  f"{result['dataset_drift']} ({'; '.join(result['dataset_drift_rules']) or 'no rule fired'}), "
                  f"adherence {result['adherence']}, alarm {result['alarm'] or 'none'}; {load()} after")


if __name__ == "__main__":
    main()
