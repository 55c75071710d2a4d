"""Served single row with and without an explanation (issue 31): p50 and p99 of one-row requests
with `{"params": {"explain": true}}` and without, in the same run, for linear, decision-tree and
LightGBM champions of a multiclass and a regression dataset (target: p50 <= 25 ms with the
explanation for the tree and linear champions).

Run: `.venv/bin/python bench/explain.py [--requests 300] [--rounds 3]`. Builds throwaway homes
(tests/task_homes.py: tiny numeric datasets, a logistic regression / ridge champion), then logs
a decision tree and a LightGBM on the same training split and makes each champion in turn,
served as `python -m core serve` does (`server.start`: gunicorn workers, the capture on). Per
round and model: `--requests` plain then explained one-row `dataframe_split` JSON requests over
one kept-alive `http.client` connection (after a warm-up). Every figure is printed with the
1-minute load average; above 1.5 on this 2-core machine a figure is "loaded" and no target is
claimed met.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.task_serve import LOADED, load, pct, single_rows  # noqa: E402
from core.data import preparation  # noqa: E402
from core.modeling import model_io  # noqa: E402
from core.serving import server  # noqa: E402
from tests.task_homes import make_task_home  # noqa: E402


def champion(home, name: str):
    """`home`'s champion replaced by a `name` model ("dt", "lightgbm") on the same training split
    (LightGBM single-threaded, as training makes it: `core/modeling/tuning.py` n_jobs=1)."""
    import mlflow
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from core import tracking
    from core.modeling import preprocess, promotion, registry
    from core.modeling.model_version import CLASSES_TAG, INTERVAL_TAG, TASK_TAG

    s, task = home.settings, home.task["task"]
    estimators = {("dt", "multiclass"): DecisionTreeClassifier(max_depth=6),
                  ("dt", "regression"): DecisionTreeRegressor(max_depth=8),
                  ("lightgbm", "multiclass"): LGBMClassifier(n_estimators=100, num_leaves=15, n_jobs=1, verbosity=-1),
                  ("lightgbm", "regression"): LGBMRegressor(n_estimators=150, num_leaves=31, n_jobs=1, verbosity=-1)}
    train = preparation.load_split(s, "train")
    x = model_io.feature_frame(train, s.features, s.dataset.categorical_features)
    model = Pipeline([*preprocess.preprocessor(s.dataset, 0), ("model", estimators[name, task])]).fit(x, train[s.target])
    tags = {TASK_TAG: task, **({CLASSES_TAG: json.dumps(home.task["classes"])} if task == "multiclass"
                               else {INTERVAL_TAG: json.dumps(home.task["interval"])})}
    with mlflow.start_run(run_name=f"{task}-{name}", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules,
                                  categorical=s.dataset.categorical_features, task=home.task)
    promotion.promote(s, registry.register(s, info.model_uri, tags=tags))


def global_times(home: Path) -> None:
    """`--global HOME`: the time to explain the whole test split of HOME's active dataset (prepared)
    per model family, as training explains a sample of it (`fitting.global_explanations`); the
    permutation fallback (k nearest neighbours) on FALLBACK_ROWS rows, its time per row said."""
    import time

    from lightgbm import LGBMClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    from core.config import Settings
    from core.modeling import explanations, preprocess
    from core.modeling.fitting import FALLBACK_ROWS

    s = Settings.from_env({**os.environ, "WORKBENCH_HOME": str(home)})
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    features = list(s.features)
    x, xt = (model_io.feature_frame(f, s.features, s.dataset.categorical_features) for f in (train, test))
    families = {"lr": LogisticRegression(max_iter=1000), "dt": DecisionTreeClassifier(max_depth=6, min_samples_leaf=50),
                "lightgbm": LGBMClassifier(n_estimators=120, num_leaves=8, n_jobs=1, verbosity=-1),
                "rf": RandomForestClassifier(n_estimators=200, max_depth=8, min_samples_leaf=50, n_jobs=1),
                "knn": KNeighborsClassifier(n_neighbors=50)}
    print(f"{s.dataset.name}: {len(train):,} training rows, {len(test):,} test rows, {len(features)} features; "
          f"load {load():.2f}")
    for name, est in families.items():
        model = Pipeline([*preprocess.preprocessor(s.dataset, 0), ("model", est)]).fit(x, train[s.target])
        t0 = time.perf_counter()
        ex = explanations.explainer(model, x, s.dataset.task, features)
        rows = xt.iloc[:FALLBACK_ROWS] if ex.kind == "fallback" else xt
        t1 = time.perf_counter()
        expl = ex.explain(rows)
        t2 = time.perf_counter()
        print(f"{name:9s} {ex.kind:9s} built {1000 * (t1 - t0):8.1f} ms; {len(rows):6,} rows in {t2 - t1:7.2f} s "
              f"({1e6 * (t2 - t1) / len(rows):9.1f} µs a row), scale {expl.scale}; load {load():.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--global", dest="global_home", type=Path, default=None,
                    help="instead: time global explanations of the test split of this home's dataset per model family")
    ap.add_argument("--requests", type=int, default=300, help="one-row requests per model, kind and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tasks", default="multiclass,regression")
    ap.add_argument("--models", default="linear,dt,lightgbm")
    args = ap.parse_args()
    if args.global_home is not None:
        global_times(args.global_home)
        return
    root = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    results = []
    for task in args.tasks.split(","):
        home = make_task_home(root / task, task)
        for name in args.models.split(","):
            if name != "linear":
                champion(home, name)
            s = home.settings.replace(serve_port=server.free_port())
            st = server.start(s)
            try:
                test = preparation.load_split(s, "test")
                x = model_io.feature_frame(test, s.features)
                row = {f: (int(v) if float(v).is_integer() else float(v)) for f, v in x.iloc[0].items()}
                split = {"columns": list(row), "data": [list(row.values())]}
                plain = json.dumps({"dataframe_split": split})
                explained = json.dumps({"dataframe_split": split, "params": {"explain": True}})
                lat = {"plain": [], "explain": []}
                loads = []
                for _ in range(args.rounds):
                    loads.append(load())
                    lat["plain"] += single_rows(st.port, plain, args.requests, warm=20)
                    lat["explain"] += single_rows(st.port, explained, args.requests, warm=20)
                loads.append(load())
            finally:
                server.stop(s)
            results.append((task, name, lat, loads))
            print(f"{task} {name}: plain p50 {pct(lat['plain'], 0.5):.2f} ms, explain p50 "
                  f"{pct(lat['explain'], 0.5):.2f} ms; load {load():.2f}", flush=True)
    print(f"\n{args.rounds} rounds x {args.requests} one-row requests per model and kind (http.client, kept alive)")
    print(f"{'':24s}{'plain p50':>10s}{'p99':>8s}{'explain p50':>13s}{'p99':>8s}{'ratio':>7s}  load (1 min)")
    for task, name, lat, loads in results:
        p50, p99 = pct(lat["plain"], 0.5), pct(lat["plain"], 0.99)
        e50, e99 = pct(lat["explain"], 0.5), pct(lat["explain"], 0.99)
        calm = max(loads) <= LOADED
        verdict = ("PASS" if e50 <= 25.0 else "FAIL") + ("" if calm else " (LOADED: not claimed)")
        print(f"{task + ' ' + name:24s}{p50:10.2f}{p99:8.2f}{e50:13.2f}{e99:8.2f}{e50 / p50:7.1f}  "
              f"{min(loads):.2f}-{max(loads):.2f}  explain p50 <= 25 ms: {verdict}")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
