"""`drift --engine spark` (issue 32, item 4): the check on Spark gives the local check's statistics
and verdicts, for every task kind, on batches with numeric, discrete and categorical features
(new categories included); a folder of files is one batch; a sample smaller than the batch
changes the estimate's rows, not the counted statistics; a batch breaking a rule is refused with
exit 2. One Spark session (`local[2]`) serves the module."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.data import batches, preparation
from core.data.batch_files import BatchError
from core.modeling import registry
from core.monitoring import check, spark_drift
from tests.conftest import make_champion_home
from tests.unit.task_homes import multiclass_home, regression_home

ROOT = Path(__file__).resolve().parents[2]
STATS = ("psi", "wasserstein", "js", "js_excess", "p_value", "out_of_range", "mean_batch", "missing_batch")


def _home(kind: str, root: Path) -> tuple[Any, pd.DataFrame]:
    """(settings, a raw production batch with a shift) of a home whose champion is of `kind`."""
    if kind == "binary":  # Kobe: 3-point shots against a model of 2-point shots
        s = make_champion_home(root)
        prod = preparation.load_split(s, "prod").reset_index(drop=True)
        prod[s.target] = [s.dataset.target.value_of(int(v)) for v in prod[s.target]]
        return s, prod
    home = (multiclass_home if kind == "multiclass" else regression_home)(root)
    prod = home.prod.copy()
    cats = list(home.settings.dataset.categorical_features)
    prod.loc[prod.index[:40], cats[0]] = "purple"  # a category never seen in training
    return home.settings, prod


def _same(local: Any, spark: Any) -> None:
    """The two checks' statistics, verdicts and estimates agree (statistics to 1e-9)."""
    a, b = local.summary(), spark.summary()
    assert b["dataset_drift"] == a["dataset_drift"]
    assert {f for f, v in b["features"].items() if v["drift"]} == {f for f, v in a["features"].items() if v["drift"]}
    for f, mine in a["features"].items():
        theirs = b["features"][f]
        for k in STATS:
            if isinstance(mine.get(k), float) and np.isfinite(mine[k]):
                assert theirs[k] == pytest.approx(mine[k], rel=1e-9, abs=1e-9), (f, k)
    assert b["domain_auc"] == pytest.approx(a["domain_auc"], abs=1e-12)
    assert b["estimated_performance"] == a["estimated_performance"]
    assert b["realized_performance"] == a["realized_performance"]
    assert b["recommendation"] == a["recommendation"] and b["alarm"] == a["alarm"]
    assert b["spark"] == {"engine": "spark", "master": "local[2]", "rows": a["batch"]["n_rows"],
                          "sampled_rows": a["batch"]["n_rows"], "sampled": False}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_spark_check_gives_the_local_checks_figures(spark: object, kind: str, tmp_path: Path) -> None:
    s, prod = _home(kind, tmp_path / "home")
    tracking.use(s)
    champ = registry.champion(s)
    path = tmp_path / "batch.parquet"
    prod.to_parquet(path, index=False)
    local = check.check(batches.read_batch(str(path), s), s, model=champ, store=False, log=False)
    there = spark_drift.check_spark(str(path), s, model=champ, master="local[2]", log=False)
    assert local.n_drifted >= 1  # the batch is shifted: something to agree on
    _same(local, there)
    if kind != "binary":
        cat = s.dataset.categorical_features[0]
        assert "purple" in there.stats.features[cat].new_categories


def test_a_folder_of_files_is_one_batch_and_a_sample_leaves_the_counts_exact(spark: object, tmp_path: Path) -> None:
    home = regression_home(tmp_path / "home")
    s = home.settings
    tracking.use(s)
    champ = registry.champion(s)
    folder = tmp_path / "batch"
    folder.mkdir()
    home.prod.iloc[:250].to_parquet(folder / "part-0.parquet", index=False)
    home.prod.iloc[250:].to_parquet(folder / "part-1.parquet", index=False)
    whole = tmp_path / "whole.parquet"
    home.prod.to_parquet(whole, index=False)
    local = check.check(batches.read_batch(str(whole), s), s, model=champ, store=False, log=False, domain=False)
    there = spark_drift.check_spark(str(folder), s, model=champ, master="local[2]", log=False, domain=False,
                                    sample_rows=200)
    assert there.batch["n_rows"] == len(home.prod) and there.batch["n_labelled"] == len(home.prod)
    assert there.spark["sampled"] and 140 <= there.spark["sampled_rows"] <= 260  # Bernoulli, 200 expected
    assert there.stats.drifted == local.stats.drifted and there.dataset_drift == local.dataset_drift
    for f, mine in local.stats.features.items():
        theirs = there.stats.features[f]
        for k in ("psi", "wasserstein", "js", "p_value", "mean_batch"):
            if getattr(mine, k) is not None:
                assert getattr(theirs, k) == pytest.approx(getattr(mine, k), rel=1e-9), (f, k)
    # the estimate comes from the sample: the realised RMSE of 200 rows, close to the whole batch's
    assert there.realized["rmse"] == pytest.approx(local.realized["rmse"], rel=0.3)


def test_a_batch_breaking_a_rule_or_lacking_a_column_is_refused(spark: object, tmp_path: Path) -> None:
    from core.scoring.spark import SparkBatchError

    home = multiclass_home(tmp_path / "home")
    s = home.settings
    tracking.use(s)
    champ = registry.champion(s)
    bad = home.prod.copy()
    bad.loc[bad.index[5], "x1"] = 99.0  # the definition's domain is -10..20
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    with pytest.raises(BatchError, match="x1"):
        spark_drift.check_spark(str(path), s, model=champ, master="local[2]", log=False)
    home.prod.drop(columns=["x2"]).to_parquet(path, index=False)
    with pytest.raises(SparkBatchError, match="x2"):
        spark_drift.check_spark(str(path), s, model=champ, master="local[2]", log=False)


def test_the_command_checks_on_spark_and_refuses_bad_use(spark: object, tmp_path: Path) -> None:
    home = regression_home(tmp_path / "home")
    s = home.settings
    path = tmp_path / "batch.parquet"
    home.prod.to_parquet(path, index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(s.home)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", "--dataset", s.dataset.name, "drift", *args, "--json"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    done = run("--engine", "spark", "--master", "local[1]", "--batch", str(path), "--no-domain")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["spark"]["engine"] == "spark" and out["spark"]["rows"] == len(home.prod)
    assert out["task"] == "regression" and "size" in out["features"] and out["stored_path"] is None
    for args in (("--engine", "spark", "--inference-log", "10"), ("--master", "local[1]", "--batch", str(path)),
                 ("--engine", "spark", "--batch", str(path), "--drop-invalid")):
        refused = run(*args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr[-500:])
