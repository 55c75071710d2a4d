"""Retraining: challenger with production labels, the gate, the policy, the lock, faults."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from core.config import Settings
from core.data import batches, preparation
from core.modeling import registry
from core.monitoring import retraining
from tests.conftest import ROOT, make_champion_home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A champion home of this module's own (retraining changes the registry)."""
    return make_champion_home(tmp_path_factory.mktemp("retrain"))


@pytest.fixture(scope="module")
def prod_file(home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled production rows as an upload would bring them."""
    path = tmp_path_factory.mktemp("batches") / "prod_labelled.parquet"
    preparation.load_split(home, "prod").to_parquet(path, index=False)
    return path


def _cli(args: list[str], s: Settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(s.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_killed_retraining_leaves_registry_as_it_was(home: Settings, prod_file: Path) -> None:
    before = registry.champion(home)
    env = {**os.environ, "WORKBENCH_HOME": str(home.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "core", "retrain", "--batch", str(prod_file), "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # one line per step; kill as soon as the challenger is being trained
        if "Training the challenger" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert registry.champion(home) == before
    assert [v.version for v in registry.versions(home)] == [before.version]
    running = retraining._runs(home, status="RUNNING")
    assert len(running) == 1  # what a kill leaves behind …
    assert retraining.mark_orphans(home) == [running[0].info.run_id]  # … is marked KILLED next time
    assert mlflow.MlflowClient(home.tracking_uri).get_run(running[0].info.run_id).info.status == "KILLED"


def test_retrain_with_production_labels_is_promoted(home: Settings, prod_file: Path) -> None:
    before = registry.champion(home)
    out = _cli(["retrain", "--batch", str(prod_file), "--json"], home)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    ll = lambda who, split: result[who]["metrics"][split]["log_loss"]  # noqa: E731
    assert ll("challenger", "new") < ll("champion", "new")  # it has seen 3-point shots
    assert ll("challenger", "old") <= ll("champion", "old") + home.retrain.tolerance
    assert result["promoted"] is True and result["decision"].startswith("promoted")
    after = registry.champion(home)
    assert after.version == result["challenger"]["version"] != before.version
    assert registry.alias_version(home, "previous").version == before.version
    run = mlflow.MlflowClient(home.tracking_uri).get_run(result["mlflow_run_id"])
    assert run.info.run_name == "Retreinamento" and run.info.status == "FINISHED"
    assert run.data.tags["decision"] == "promoted"
    assert run.data.metrics["challenger_new_log_loss"] == pytest.approx(ll("challenger", "new"))


def test_if_needed_right_after_does_nothing(home: Settings, prod_file: Path) -> None:
    champ = registry.champion(home)
    out = _cli(["retrain", "--if-needed", "--json"], home)  # stored batches: all used already
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["needed"] is False and result["mlflow_run_id"] is None
    assert "no new labelled" in result["reason"]
    assert registry.champion(home) == champ


def test_shuffled_labels_challenger_is_rejected(home: Settings) -> None:
    _, champ_model = registry.load_model(home)
    prod = preparation.load_split(home, "prod")
    batch = batches.from_frame(prod, home, "prod")
    rd = retraining.assemble(home, [batch])
    rng = np.random.default_rng(0)
    shuffled = rd.train.assign(**{home.target: rng.permutation(rd.train[home.target].to_numpy())})
    bad = retraining.fit_challenger(champ_model, shuffled, home)
    result = retraining.gate(retraining.evaluate(champ_model, rd, home, registry.require_champion(home).decision_threshold), retraining.evaluate(bad, rd, home, registry.require_champion(home).decision_threshold),
                             home.retrain)
    assert result.promote is False and result.reason.startswith("rejected")


def test_policy(home: Settings) -> None:
    prod = preparation.load_split(home, "prod")
    small = batches.from_frame(prod.head(200), home, "small")
    unlabelled = batches.from_frame(prod.drop(columns=[home.target]), home, "unlabelled")
    assert not retraining.decide(home, [unlabelled]).needed
    fresh_small = retraining.decide(home, [small])  # 200 rows, last retraining minutes ago
    assert not fresh_small.needed and "200 new labelled rows" in fresh_small.reason
    later = retraining.decide(home, [small], now_s=__import__("time").time() + 31 * 86400)
    assert later.needed and "every 30 days" in later.reason
    falling = retraining.decide(home, [small], f1_history=[0.5, 0.4, 0.3, 0.2])
    assert falling.needed and "forecast" in falling.reason
    assert retraining.forecast_f1([0.5, 0.4, 0.3], 5) == pytest.approx(0.2)


def test_second_retraining_refused_while_one_runs(home: Settings) -> None:
    prod = preparation.load_split(home, "prod")
    batch = batches.from_frame(prod, home, "prod")
    with retraining.exclusive(home):
        with pytest.raises(retraining.RetrainBusyError, match="already running"):
            retraining.retrain(home, [batch], model=registry.champion(home))


def test_batch_without_labels_is_refused(home: Settings) -> None:
    prod = preparation.load_split(home, "prod").drop(columns=[home.target])
    with pytest.raises(retraining.RetrainInputError, match="labelled rows"):
        retraining.retrain(home, [batches.from_frame(prod, home, "unlabelled")], model=registry.champion(home))
