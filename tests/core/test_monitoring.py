"""A full check (Monitoramento): health estimate, stored batch, MLflow run, history, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from core import tracking
from core.data import batch_store, batches, preparation
from core.modeling import model_io, registry
from core.modeling import promotion
from core.monitoring import check, health, history, run_log
from tests.conftest import ROOT, make_settings


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home of its own (checks write batches and runs): prepared data + an LR champion."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    s = make_settings(tmp_path_factory.mktemp("drift"))
    preparation.prepare(s)
    train = preparation.load_split(s, "train")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        model_io.feature_frame(train, s.features), train[s.target])
    with mlflow.start_run(run_name="fixture-model", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules)
    promotion.promote(s, registry.register(s, info.model_uri))
    return s


@pytest.fixture(scope="module")
def prod_report(home):
    return check.check(batches.read_batch(home.raw_prod, home), home, model=registry.champion(home))


def test_production_estimate_is_flagged_or_close(prod_report):
    est, real = prod_report.estimate, prod_report.realized
    assert prod_report.dataset_drift and {"shot_distance", "lat", "lon"} <= set(prod_report.stats.drifted)
    assert real is not None and prod_report.label is not None and prod_report.label["drift"]
    assert not est.trustworthy and est.reasons  # the domain classifier separates dev from prod
    assert any("classifier tells batch rows" in r for r in est.reasons)
    # and the flag is warranted: off the training data the estimate misses the realised ROC-AUC
    assert abs(est.roc_auc - real["roc_auc"]) > 0.03
    assert prod_report.estimate_error["roc_auc"] == pytest.approx(est.roc_auc - real["roc_auc"])
    assert prod_report.recommendation


def test_check_is_recorded_stored_and_in_history(home, prod_report):
    assert prod_report.mlflow_run_id and os.path.exists(prod_report.stored_path)
    run = tracking.client(home).get_run(prod_report.mlflow_run_id)
    assert run.info.run_name == "Monitoramento"
    assert run.data.metrics["dataset_drift"] == 1.0 and "real_f1" in run.data.metrics
    artifacts = {a.path for a in tracking.client(home).list_artifacts(prod_report.mlflow_run_id)}
    assert {"drift_report.json", "drift_report.html"} <= artifacts
    last = history.last_check(home)
    assert last is not None and last.run_id == prod_report.mlflow_run_id and last.dataset_drift
    hist = history.history(home)
    assert prod_report.mlflow_run_id in set(hist["run_id"]) and "effect_shot_distance" in hist
    assert batch_store.find(home, prod_report.batch["digest"]) is not None


def test_test_split_without_labels_is_trusted_and_close(home):
    test = preparation.load_split(home, "test").drop(columns=[home.target])
    batch = batches.from_frame(test, home, "test without labels")
    r = check.check(batch, home, store=False, log=False, model=registry.champion(home))
    assert not r.dataset_drift and r.stats.drifted == [] and r.estimate.trustworthy
    assert r.realized is None and r.label is None
    assert abs(r.estimate.roc_auc - r.test_metrics["roc_auc"]) < 0.03
    assert abs(r.estimate.f1 - r.test_metrics["f1"]) < 0.05


def test_weighted_auc_matches_sklearn_on_hard_labels():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = rng.random(500).round(2) + y * 0.2
    assert health.weighted_auc(s, y.astype(float)) == pytest.approx(roc_auc_score(y, s))


def test_no_checks_yet(settings):
    assert history.last_check(settings) is None
    assert history.history(settings).empty


def _cli(home, *args):
    env = {**os.environ, "WORKBENCH_HOME": str(home.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "core", "drift", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_prints_one_json_object(home, prod_report, tmp_path):
    half = preparation.load_split(home, "test").sample(frac=0.5, random_state=3)
    path = tmp_path / "half.csv"
    half.to_csv(path, index=False)
    out = _cli(home, "--batch", str(path), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["dataset_drift"] is False and result["label_drift"]["drift"] is False
    assert set(result["features"]["lat"]) == {"psi", "wasserstein", "p_value", "out_of_range", "drift", "rule"}
    assert set(result["features"]["period"]) == {"js", "js_excess", "p_value", "out_of_range", "drift", "rule"}
    assert result["estimated_performance"]["trustworthy"] is True
    assert result["seconds"] > 0 and result["alarm"] == [] and result["dataset_drift_rules"] == []
    # the run is logged after the output by a background process: queued, then in MLflow
    assert result["mlflow_pending"] is True and result["mlflow_run_id"] is None and len(result["check_id"]) == 32
    flt = f"tags.`{run_log.CHECK_ID_TAG}` = '{result['check_id']}' and attributes.status = 'FINISHED'"
    deadline = time.monotonic() + 120
    while not (runs := tracking.client(home).search_runs([tracking.use(home)], filter_string=flt)):
        assert time.monotonic() < deadline, "the queued Monitoramento run was not logged in 120 s"
        time.sleep(0.5)
    assert len(runs) == 1 and runs[0].data.params["batch_name"] == "half.csv"
    while run_log.queued(home):  # its file goes right after the run finished
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_cli_reads_a_parquet_batch_in_record_batches(home, tmp_path):
    """A parquet file goes through `stream.check_file`: the same verdicts, nothing written when a
    record batch breaks a rule."""
    half = preparation.load_split(home, "test").sample(frac=0.5, random_state=4)
    path = tmp_path / "half.parquet"
    half.to_parquet(path, index=False)
    result = json.loads(_cli(home, "--batch", str(path), "--json", "--wait-for-mlflow").stdout)
    assert result["dataset_drift"] is False and result["alarm"] == [] and result["adherence"] == "adherent"
    assert result["mlflow_pending"] is False and tracking.client(home).get_run(result["mlflow_run_id"]).info.status \
        == "FINISHED"  # logged before the output
    assert result["domain"]["low"] <= result["domain_auc"] <= result["domain"]["high"] < 0.8
    assert result["batch"]["n_rows"] == len(half) and result["stored_path"].endswith(".parquet")
    bad = half.assign(period=half["period"].where(half.index != half.index[-1], 0))
    bad.to_parquet(path, index=False)
    before = sorted(p.name for p in home.batches_dir.glob("*"))
    out = _cli(home, "--batch", str(path), "--json")
    assert out.returncode == 2 and "- period: out-of-domain values in 1 row (" in out.stderr
    assert sorted(p.name for p in home.batches_dir.glob("*")) == before


def test_cli_invalid_batch_exits_2_and_writes_nothing(home, tmp_path):
    bad = preparation.load_split(home, "test").head(20).assign(period=0)
    bad.loc[:3, "lat"] = np.nan
    path = tmp_path / "bad.csv"
    bad.drop(columns=["playoffs"]).to_csv(path, index=False)
    before = sorted(p.name for p in home.batches_dir.glob("*"))
    runs_before = len(history.history(home))
    out = _cli(home, "--batch", str(path), "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"]["kind"] == "BatchError"
    lines = out.stderr.splitlines()
    assert any(line.startswith("- playoffs: column is missing") for line in lines)
    assert any(line.startswith("- period: out-of-domain values in 20 rows") for line in lines)
    assert any(line.startswith("- lat: empty (NaN) values in 4 rows") for line in lines)
    assert sorted(p.name for p in home.batches_dir.glob("*")) == before
    assert len(history.history(home)) == runs_before
