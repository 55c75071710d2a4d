"""How much of a 90 % interval's held-out coverage is the luck of one split (issue 34).

The workbench measures its interval's coverage on one test split; on a small dataset that split
holds a few dozen rows, and a binomial share of 0.9 over n rows varies by sqrt(0.09 / n) (0.03
for Boston's 102 test rows, 0.044 for mpg's 47). This script repeats the workbench's interval
(`core.modeling.intervals.conformal_halfwidth` on 3-fold out-of-fold residuals, as `train` does
with its default 3 folds) around a LightGBM regressor with its default settings over `--splits`
random 80/20 splits of each dataset, and prints the mean, minimum and maximum held-out coverage.

Run: .venv/bin/python bench/interval_coverage.py [--splits 20] [--folds 3] [--datasets boston,mpg]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from task_data import DATASETS, frame  # noqa: E402


def coverage(name: str, splits: int, folds: int, level: float = 0.9) -> list[float]:
    """The held-out coverage of the `level` interval on each of `splits` random splits of `name`."""
    from lightgbm import LGBMRegressor
    from sklearn.model_selection import KFold, cross_val_predict, train_test_split

    from core.modeling import intervals

    df = frame(name)
    target = DATASETS[name]["target"]
    x, y = df.drop(columns=[target]), df[target].to_numpy(dtype=float)
    for col in x.columns:
        if not np.issubdtype(x[col].dtype, np.number):
            x[col] = x[col].astype("category")
    out = []
    for seed in range(splits):
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)
        model = LGBMRegressor(verbose=-1, random_state=0)
        oof = cross_val_predict(model, x_train, y_train, cv=KFold(folds, shuffle=True, random_state=0))
        half = intervals.conformal_halfwidth(y_train, oof, level)
        out.append(float(np.mean(np.abs(y_test - model.fit(x_train, y_train).predict(x_test)) <= half)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--datasets", default="boston,mpg")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(f"load {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    for name in args.datasets.split(","):
        covs = coverage(name, args.splits, args.folds)
        print(f"{name}: 90 % interval, {args.folds}-fold residuals, {args.splits} random splits: mean held-out "
              f"coverage {np.mean(covs):.3f} (min {min(covs):.3f}, max {max(covs):.3f})")


if __name__ == "__main__":
    main()
