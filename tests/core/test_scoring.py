"""PipelineAplicacao: production scoring over HTTP and in-process, outputs, runs and adherence."""
from __future__ import annotations

from core.modeling import registry

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.config import Settings
from core.data import batches, preparation
from core.monitoring import adherence
from core.scoring import local as local_scoring
from core.serving import client, server
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def both_paths(served_settings: Settings) -> tuple[local_scoring.ScoreResult, pd.DataFrame, local_scoring.ScoreResult, pd.DataFrame]:
    """The real production batch scored through the real server, then in-process."""
    http = local_scoring.score(served_settings, registry.champion(served_settings))
    http_out = pd.read_parquet(http.output)
    local = local_scoring.score(served_settings, registry.champion(served_settings), in_process=True)
    return http, http_out, local, pd.read_parquet(local.output)


def test_http_and_in_process_give_equal_probabilities(served_settings: Settings, both_paths) -> None:
    http, http_out, local, local_out = both_paths
    assert (http.path, local.path) == ("http", "in-process")
    assert http.rows == local.rows == 5412 and http.labelled_rows == 5412
    assert http.model_version == local.model_version == "1"
    col = served_settings.dataset.proba_column
    np.testing.assert_allclose(http_out[col], local_out[col], rtol=0, atol=1e-9)
    assert set(local_out.columns) == {"lat", "lon", "minutes_remaining", "period", "playoffs", "shot_distance",
                                      "proba_made", "pred_made", "predicted_shot_made_flag", "class_name",
                                      "shot_made_flag", "model_version"}
    assert local_out["pred_made"].tolist() == (local_out["proba_made"] >= 0.5).astype(int).tolist()


def test_pipeline_aplicacao_run_holds_the_metrics(served_settings: Settings, both_paths) -> None:
    _, _, local, _ = both_paths
    run = tracking.last_run(served_settings, local_scoring.APPLY_RUN)
    assert run is not None and run["run_id"] == local.mlflow_run_id
    assert {"log_loss", "f1", "roc_auc", "accuracy", "precision", "recall", "brier"} <= set(run["metrics"])
    assert run["metrics"]["log_loss"] == pytest.approx(local.metrics["log_loss"])
    assert run["params"]["model_version"] == "1" and run["params"]["path"] == "in-process"
    assert run["params"]["rows"] == "5412" and len(run["params"]["batch_digest"]) == 64


def test_earlier_output_is_kept_under_a_timestamped_name(both_paths) -> None:
    http, _, local, _ = both_paths
    assert local.kept_previous is not None and Path(local.kept_previous).exists()
    assert Path(local.kept_previous).name.startswith("prod_predictions.") and local.kept_previous != local.output


def test_adherence_explains_why_the_champion_fails_in_production(served_settings: Settings, both_paths) -> None:
    _, _, local, out = both_paths
    test = local_scoring.test_predictions(served_settings, local.model_version)
    train = preparation.load_split(served_settings, "train")
    a = adherence.adherence(out, test, train, served_settings.dataset, 0.5)
    assert a.verdict == "not adherent"
    assert "F1 falls from" in a.text and "in production" in a.text
    assert "shot_distance" in a.text and "`" not in a.text and "**" not in a.text  # plain text: the page escapes it
    assert [step.stage for step in a.steps] == ["drift", "drift"] and "Retrain" in a.steps[1].label
    assert "python -m core retrain" in a.next_steps[1]  # the command line's words for the same step
    assert "production shot gets P(made) below the threshold" in a.text  # in the definition's words
    table = adherence.metrics_table(a)
    assert list(table["metric"]) == ["log loss", "F1", "ROC-AUC", "accuracy", "precision", "recall", "Brier"]
    # the test set judged against itself holds up
    same = adherence.adherence(test, test, train, served_settings.dataset, 0.5)
    assert same.verdict == "adherent" and "holds up" in same.text
    assert set(local_scoring.with_outcome(out, served_settings.dataset, 0.5)["outcome"]) <= {"Correct", "Incorrect"}


def test_cli_apply_on_a_batch_without_labels_prints_null_metrics(served_settings: Settings, tmp_path: Path) -> None:
    batch = tmp_path / "unlabelled.parquet"
    preparation.load_split(served_settings, "prod").drop(columns=["shot_made_flag"]).head(300).to_parquet(batch)
    env = {**os.environ, "WORKBENCH_HOME": str(served_settings.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run([sys.executable, "-m", "core", "apply", "--batch", str(batch), "--in-process", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    # the JSON contract: fields may be added, never renamed or removed
    assert set(result) >= {"rows", "model_version", "path", "metrics", "output", "mlflow_run_id", "seconds"}
    assert result["rows"] == 300 and result["metrics"] is None and result["path"] == "in-process"
    scored = pd.read_parquet(result["output"])
    assert "shot_made_flag" not in scored and scored["proba_made"].between(0, 1).all()
    test = local_scoring.test_predictions(served_settings, local_scoring.scored_version(scored))
    a = adherence.adherence(scored, test, preparation.load_split(served_settings, "train"), served_settings.dataset, 0.5)
    assert a.verdict == "unknown (no labels)" and a.prod_metrics is None and "no labels" in a.text


def test_batch_missing_a_feature_fails_naming_it_and_writes_nothing(served_settings: Settings, tmp_path: Path) -> None:
    batch = tmp_path / "no_period.parquet"
    preparation.load_split(served_settings, "prod").drop(columns=["period"]).to_parquet(batch)
    before = sorted(p.name for p in served_settings.model_output_dir.glob("*"))
    runs_before = tracking.last_run(served_settings, local_scoring.APPLY_RUN)
    with pytest.raises(batches.BatchError) as err:
        local_scoring.score(served_settings, registry.champion(served_settings), batch=batch, in_process=True)
    assert "period" in str(err.value) and "missing" in str(err.value)
    assert sorted(p.name for p in served_settings.model_output_dir.glob("*")) == before
    assert tracking.last_run(served_settings, local_scoring.APPLY_RUN)["run_id"] == runs_before["run_id"]


def test_via_a_dead_server_says_so(served_settings: Settings) -> None:
    with pytest.raises(client.ServerNotRunningError, match="No model server answers"):
        local_scoring.score(served_settings, registry.champion(served_settings), via=f"http://127.0.0.1:{server.free_port()}")
