"""Training benchmark: core's default training against the baseline comparable projects use.

(a) baseline: PyCaret defaults — setup with 10-fold CV (n_jobs=-1), create_model and
    tune_model(n_iter=10, optimize="Accuracy") for LR and DT, then both logged to MLflow by
    hand (params, test metrics, `mlflow.sklearn.log_model` with signature and input example).
(b) core: `core.training.train(settings)` with its defaults, MLflow logging and registration.
Both warm (PyCaret imported first), alternated, median of --reps; then the cold wall time of
`python -m core train --json` in a fresh process.

    .venv/bin/python bench/train.py [--reps 3] [--cold-reps 1]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import tracking
from core.config import Settings  # noqa: E402
from core.data import preparation
from core.modeling import candidates, metrics, training


def bench_settings() -> Settings:
    """A throwaway home with prepared data (raw files from KOBE_DATA_DIR or downloaded)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="kobe-bench-train-")
    settings = Settings.from_env(env)
    preparation.prepare(settings)
    return settings


def baseline(settings: Settings) -> dict[str, float]:
    """PyCaret defaults for LR and DT, logged to MLflow by hand; returns seconds and log losses."""
    import mlflow
    from mlflow.models import infer_signature
    from pycaret.classification import ClassificationExperiment

    t0 = time.perf_counter()
    train = preparation.load_split(settings, "train")
    test = preparation.load_split(settings, "test")
    exp = ClassificationExperiment()
    exp.setup(data=train, test_data=test, target=settings.target, session_id=settings.seed, index=False,
              verbose=False, html=False, log_experiment=False, system_log=False)
    x_test = test[list(settings.features)]
    losses, logging_s = {}, 0.0
    with mlflow.start_run(run_name="baseline", experiment_id=tracking.use(settings)):
        for model_id in ("lr", "dt"):
            tuned = exp.tune_model(exp.create_model(model_id, verbose=False), n_iter=10, optimize="Accuracy",
                                   verbose=False)
            proba = exp.predict_model(tuned, data=x_test, raw_score=True, verbose=False)["prediction_score_1"]
            test_metrics = metrics.from_proba(test[settings.target].to_numpy(), proba.to_numpy())
            t_log = time.perf_counter()
            with mlflow.start_run(run_name=f"baseline-{model_id}", nested=True):
                mlflow.log_params({k: str(v)[:500] for k, v in tuned.get_params().items()})
                mlflow.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
                x = exp.X_train_transformed.head(5)
                mlflow.sklearn.log_model(tuned, name="model", serialization_format="cloudpickle",
                                         signature=infer_signature(x, tuned.predict_proba(x)), input_example=x)
            logging_s += time.perf_counter() - t_log
            losses[model_id] = test_metrics["log_loss"]
    return {"seconds": time.perf_counter() - t0, "log_loss": min(losses.values()), "logging": logging_s}


def core_training(settings: Settings) -> dict[str, float]:
    t0 = time.perf_counter()
    result = training.train(settings)
    return {"seconds": time.perf_counter() - t0, "log_loss": result.champion.test["log_loss"],
            "champion": result.champion.name}


def cold(settings: Settings) -> dict[str, float]:
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "train", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "log_loss": json.loads(out.stdout)["champion"]["test"]["log_loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cold-reps", type=int, default=1)
    args = parser.parse_args()
    settings = bench_settings()
    t = time.perf_counter()
    import pycaret.classification  # noqa: F401  (warm: both sides run after the import)

    print(f"import pycaret.classification: {time.perf_counter() - t:.1f} s (cpus: {os.cpu_count()})", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "core": []}
    for rep in range(args.reps):
        for name, fn in (("baseline", baseline), ("core", core_training)):  # alternated
            res = fn(settings)
            runs[name].append(res)
            extra = f"  (of which MLflow model logging {res['logging']:.1f} s)" if "logging" in res else ""
            print(f"rep {rep + 1} {name:8s} {res['seconds']:6.1f} s  test log loss {res['log_loss']:.4f}{extra}",
                  flush=True)
    colds = [cold(settings) for _ in range(args.cold_reps)]
    for res in colds:
        print(f"cold `python -m core train --json`: {res['seconds']:.1f} s  test log loss {res['log_loss']:.4f}")
    a = statistics.median(r["seconds"] for r in runs["baseline"])
    b = statistics.median(r["seconds"] for r in runs["core"])
    print()
    print(f"defaults: models {','.join(candidates.DEFAULT_MODELS)}, folds {candidates.DEFAULT_FOLDS}, "
          f"iterations {candidates.DEFAULT_N_ITER}")
    print(f"(a) baseline (PyCaret defaults, LR+DT, 10 folds, 10 iter, accuracy) + MLflow: median {a:.1f} s, "
          f"champion test log loss {min(r['log_loss'] for r in runs['baseline']):.4f}")
    print(f"(b) core default training + MLflow + registry:                      median {b:.1f} s, "
          f"champion test log loss {statistics.median(r['log_loss'] for r in runs['core']):.4f} "
          f"({runs['core'][-1]['champion']})")
    print(f"ratio b/a: {b / a:.3f}  (target <= 0.35)")
    print(f"cold python -m core train: median {statistics.median(r['seconds'] for r in colds):.1f} s")


if __name__ == "__main__":
    main()
