"""A champion you can trust: the promotion gate, a threshold per version, one lifecycle lock, and
registry changes that a `kill -9` at any step cannot leave half-done (real MLflow, real Kobe data,
tiny budgets)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from core.config import PromotionPolicy, Settings
from core.data import preparation
from core.modeling import lock, promotion, registry, threshold, training
from core.monitoring import retraining
from tests.conftest import ROOT, TINY_TRAINING, prepared_copy

WEAK = {"models": ["dt"], "n_iter": 1, "folds": 2}


def _env(s: Settings) -> dict[str, str]:
    env = {**os.environ, "WORKBENCH_HOME": str(s.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _cli(args: list[str], s: Settings, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=_env(s), capture_output=True,
                          text=True, timeout=timeout)


def _running(s: Settings) -> list:
    exp = mlflow.MlflowClient(s.tracking_uri).get_experiment_by_name(s.experiment_name)
    return mlflow.MlflowClient(s.tracking_uri).search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, prepared_settings: Settings):
    """A home with a champion from the tiny training, then a second, identical training (its
    candidates are the same models with the same seed: not better, so the champion stays)."""
    s = prepared_copy(tmp_path_factory, prepared_settings, "gated")
    first = training.train(s, **TINY_TRAINING)
    second = training.train(s, **TINY_TRAINING)
    return s, first, second


# --------------------------------------------------------------------------- the gate
def test_judge_needs_a_better_criterion_and_no_worse_decision_metric() -> None:
    policy = PromotionPolicy(decision_metric="f1", metric_tolerance=0.01)
    champ = {"log_loss": 0.60, "f1": 0.50}
    assert promotion.judge(None, champ, "log_loss", policy)[0]
    assert promotion.judge(champ, {"log_loss": 0.59, "f1": 0.495}, "log_loss", policy)[0]  # within tolerance
    ok, why = promotion.judge(champ, {"log_loss": 0.59, "f1": 0.45}, "log_loss", policy)
    assert not ok and "f1 at its threshold is 0.4500" in why and "tolerance 0.01" in why
    ok, why = promotion.judge(champ, {"log_loss": 0.60, "f1": 0.9}, "log_loss", policy)  # a tie is not better
    assert not ok and "not better" in why
    assert promotion.judge({"roc_auc": 0.7}, {"roc_auc": 0.71}, "roc_auc", policy)[0]  # higher is better
    assert not promotion.judge({"log_loss": float("nan")}, {"log_loss": 0.5}, "log_loss", policy)[0]


def test_a_training_that_is_not_better_leaves_the_champion_and_says_why(gated) -> None:
    s, first, second = gated
    assert first.promoted and first.champion_before is None
    assert not second.promoted and "not better" in second.reason
    champ = registry.champion(s)
    assert champ.version == first.champion.version == second.champion.version
    assert second.champion_before.version == first.champion.version
    assert second.challenger.version != champ.version
    assert registry.alias_version(s, registry.CHALLENGER).version == second.challenger.version
    out = json.loads(json.dumps(second.to_dict()))
    assert out["promoted"] is False and out["reason"] == second.reason
    assert out["champion_before"]["version"] == out["champion"]["version"] == champ.version
    assert out["challenger"]["version"] == second.challenger.version
    # the champion's figures were taken on the same test split at its own threshold
    assert out["champion_before"]["test"]["log_loss"] == pytest.approx(first.champion.test["log_loss"])


def test_cli_weak_training_keeps_the_champion_and_always_promotes(gated, tmp_path: Path) -> None:
    s, first, _ = gated
    before = registry.champion(s).version
    weak = _cli(["train", "--models", "dt", "--n-iter", "1", "--folds", "2", "--json"], s)
    assert weak.returncode == 0, weak.stderr
    out = json.loads(weak.stdout)
    if out["promoted"]:  # only when the weak model really beats the champion on the test split
        assert out["challenger"]["test"]["log_loss"] < out["champion_before"]["test"]["log_loss"]
    else:
        assert registry.champion(s).version == before and "Champion unchanged" in weak.stderr
    forced = _cli(["train", "--models", "dt", "--n-iter", "1", "--folds", "2", "--promote", "always", "--json"], s)
    assert forced.returncode == 0, forced.stderr
    out = json.loads(forced.stdout)
    assert out["promoted"] is True and registry.champion(s).version == out["challenger"]["version"]
    assert registry.alias_version(s, registry.CHALLENGER) is None  # the challenger became champion
    promotion.promote(s, first.champion.version)  # back, for the other tests of the module


# --------------------------------------------------------------------------- the threshold
def test_each_version_carries_its_own_threshold(gated) -> None:
    s, first, second = gated
    for result in (first, second):
        info = registry.version_info(s, result.challenger.version)
        chosen = next(c for c in result.candidates if c.name == result.challenger.name)
        assert info.threshold == pytest.approx(chosen.threshold, abs=1e-4) and 0 < info.threshold < 1
        assert info.threshold_rule == "accuracy"  # the default rule
        # the test figures are at that threshold
        assert result.challenger.threshold == chosen.threshold
    assert registry.champion(s).decision_threshold == pytest.approx(registry.champion(s).threshold)
    run = mlflow.MlflowClient(s.tracking_uri).get_run(first.challenger.run_id)
    assert run.data.metrics["decision_threshold"] == pytest.approx(first.challenger.threshold)


def test_threshold_maximises_f1_or_minimises_cost_on_given_predictions() -> None:
    import numpy as np
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(int)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, 2000), 0.001, 0.999)
    f1 = threshold.choose(y, p, "f1")
    grid = np.linspace(0.01, 0.99, 197)
    best = max(f1_score(y, (p >= t).astype(int)) for t in grid)
    assert f1.f1 >= best - 1e-9 and f1.f1 == pytest.approx(f1_score(y, (p >= f1.value).astype(int)))
    cheap_fp = threshold.choose(y, p, "cost", cost_ratio=0.2)
    dear_fp = threshold.choose(y, p, "cost", cost_ratio=5.0)
    assert cheap_fp.value < dear_fp.value  # costly false positives raise the threshold
    assert threshold.choose(np.ones(10), np.full(10, 0.7)).value == 0.5  # one class: the default stays
    with pytest.raises(ValueError, match="Unknown threshold rule"):
        threshold.choose(y, p, "bogus")


def test_calibration_is_chosen_only_when_it_helps_on_cross_validation() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    truth = rng.random(3000)
    y = (rng.random(3000) < truth).astype(int)
    assert threshold.pick_calibration(threshold.calibration_gain(y, truth, 3, 0), 0.002) == "none"
    squashed = 0.5 + (truth - 0.5) * 0.3  # right order, far too timid
    gains = threshold.calibration_gain(y, squashed, 3, 0)
    assert gains["none"] - min(gains["sigmoid"], gains["isotonic"]) > 0.01
    assert threshold.pick_calibration(gains, 0.002) in ("sigmoid", "isotonic")


def test_apply_reports_the_versions_threshold_unless_told(gated) -> None:
    s, *_ = gated
    own = registry.champion(s).threshold
    out = json.loads(_cli(["apply", "--in-process", "--json"], s).stdout)
    assert out["threshold"] == pytest.approx(own)
    told = json.loads(_cli(["apply", "--in-process", "--threshold", "0.7", "--json"], s).stdout)
    assert told["threshold"] == 0.7 and told["metrics"]["recall"] <= out["metrics"]["recall"]


# --------------------------------------------------------------------------- one lock, no half-states
def test_training_retraining_and_promotion_share_one_lock(gated) -> None:
    s, first, _ = gated
    with lock.training_lock(s):
        with pytest.raises(retraining.RetrainBusyError, match="A training is already running"):
            with retraining.exclusive(s):
                pass
        with pytest.raises(lock.TrainingBusyError, match="start the promotion again"):
            promotion.promote(s, first.champion.version)
    with retraining.exclusive(s):
        with pytest.raises(lock.TrainingBusyError, match="A retraining is already running"):
            training.train(s, **TINY_TRAINING)


def test_a_half_done_registry_change_is_undone_by_the_next_start(gated) -> None:
    """What a kill between registering and moving the aliases leaves: a journal with the new
    version's number and `previous` moved, `champion` not yet. The next start puts everything
    back and deletes the version."""
    s, first, second = gated
    before = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    entry = {"what": "training", "pid": 1, "aliases": before, "token": "t-undo", "version": None, "moves": None}
    promotion._write_journal(s, entry)
    run = mlflow.MlflowClient(s.tracking_uri).get_run(first.challenger.run_id)
    version = registry.register(s, f"runs:/{run.info.run_id}/model", tags={promotion.CHANGE_TAG: "t-undo"})
    entry.update(version=version, moves=[["previous", before["champion"]], ["champion", version]])
    promotion._write_journal(s, entry)
    mlflow.MlflowClient(s.tracking_uri).set_registered_model_alias(s.model_name, "previous", before["champion"])
    notes = promotion.repair(s)
    assert any("put back" in n for n in notes) and any(f"version {version}" in n for n in notes)
    after = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    assert after == before
    assert version not in [v.version for v in registry.versions(s)]
    assert not (s.runtime_dir / promotion.JOURNAL).exists() and promotion.repair(s) == []


def test_an_older_journal_whose_champion_moved_is_finished_not_undone(gated) -> None:
    """A journal of an older workbench (no token, no planned moves) left after `champion` moved
    to the version it registered: the server may already serve that version, so the repair keeps
    it and finishes the move (`previous` is the champion before) instead of deleting it."""
    s, first, _ = gated
    promotion.promote(s, first.champion.version)
    before = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    entry = {"what": "training", "pid": 1, "aliases": before, "version": None}
    promotion._write_journal(s, entry)
    run = mlflow.MlflowClient(s.tracking_uri).get_run(first.challenger.run_id)
    version = registry.register(s, f"runs:/{run.info.run_id}/model")
    entry["version"] = version
    promotion._write_journal(s, entry)
    mlflow.MlflowClient(s.tracking_uri).set_registered_model_alias(s.model_name, "champion", version)
    notes = promotion.repair(s)
    assert any("finished" in n for n in notes)
    after = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    assert after["champion"] == version and after["previous"] == before["champion"]
    assert version in [v.version for v in registry.versions(s)]
    assert not (s.runtime_dir / promotion.JOURNAL).exists() and promotion.repair(s) == []
    promotion.rollback(s)  # the registry as it was for the next tests
    assert registry.champion(s).version == before["champion"]


@pytest.mark.parametrize("step", ["tuning", "Comparing", "Registering"])
def test_kill_9_of_a_training_at_any_step_is_repaired_by_the_next_run(gated, step: str) -> None:
    s, first, _ = gated
    promotion.promote(s, first.champion.version)
    before = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    versions = {v.version for v in registry.versions(s)}
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--models", "lr", "--n-iter", "1",
                             "--folds", "2", "--promote", "always", "--json"],
                            cwd=ROOT, env=_env(s), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if step in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    repaired = promotion.repair(s)  # what the next training, retraining or promotion does first
    assert _running(s) == []
    after = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    if {v.version for v in registry.versions(s)} == versions or any("put back" in n for n in repaired):
        assert after == before  # the kill came before the change finished: it is undone
    else:  # the kill came after the whole change: the promotion holds, with its pair intact
        assert after["previous"] == before["champion"] and after["champion"] not in versions
    _, model = registry.load_model(s)  # a champion that loads
    assert hasattr(model, "predict_proba")


def test_kill_9_of_a_retraining_while_registering_leaves_no_stray_alias(gated) -> None:
    s, first, _ = gated
    promotion.promote(s, first.champion.version)
    batch = s.home / "prod_labelled.parquet"
    preparation.load_split(s, "prod").to_parquet(batch, index=False)
    before = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    proc = subprocess.Popen([sys.executable, "-m", "core", "retrain", "--batch", str(batch), "--json"],
                            cwd=ROOT, env=_env(s), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Registering the challenger" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    promotion.repair(s)
    after = {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in promotion.ALIASES}
    finished = [r for r in retraining._runs(s) if r.info.status == "FINISHED"]
    if not finished or finished[0].data.tags.get("challenger_version") is None:
        assert after == before
    assert _running(s) == []
    assert registry.load_model(s)[1] is not None


def test_threshold_rule_options_are_checked_before_anything_runs(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    for bad in (["--cost-ratio", "0"], ["--cost-ratio", "nan"], ["--threshold-rule", "f1", "--cost-ratio", "2"],
                ["--threshold-rule", "accuracy", "--cost-ratio", "2"], ["--threshold-rule", "bogus"]):
        done = _cli(["train", *bad], s, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (bad, done.stderr)
    assert not (tmp_path / "mlruns").exists()
    policy = PromotionPolicy().with_rule("cost", 3.0)
    assert (policy.threshold_rule, policy.cost_ratio, policy.decision_metric) == ("cost", 3.0, "accuracy")
    assert PromotionPolicy().with_rule("f1").decision_metric == "f1"
