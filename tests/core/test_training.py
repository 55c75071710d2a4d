"""Training on the real Kobe data with a tiny budget: registry, served format, failure paths, CLI."""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest

from core import cli, tracking
from core.charts import evaluation
from core.charts.words import Words
from core.config import Settings
from core.data import preparation
from core.errors import NotPreparedError, TrainingBusyError, TrainingError
from core.modeling import (
    candidates,
    comparison,
    lock,
    model_io,
    registry,
    training,
)
from tests.conftest import TINY_TRAINING, prepared_copy

BASE_RATE_LOG_LOSS = 0.692


def _runs(settings: Settings) -> list:
    exp_id = tracking.use(settings)
    return tracking.client(settings).search_runs([exp_id], max_results=1000)


def test_champion_registered_and_beats_the_base_rate(trained) -> None:
    settings, result = trained
    assert [c.name for c in result.candidates] == ["lr", "dt"]
    champ = registry.champion(settings)
    assert champ is not None and champ.version == result.champion.version
    assert result.champion.test["log_loss"] < BASE_RATE_LOG_LOSS
    assert result.champion.test["log_loss"] < result.baselines["base_rate"]["log_loss"]
    # chosen on cross-validation, never on the test split it reports
    assert result.champion.cv["log_loss"] == min(c.cv["log_loss"] for c in result.candidates)
    assert result.selected_by.startswith("cross-validated log loss") and result.promoted
    for c in result.candidates:
        assert set(c.test) == {"log_loss", "f1", "roc_auc", "accuracy", "precision", "recall", "brier"}
        assert 0.0 < c.cv["log_loss"] < 1.0
    out = result.to_dict()
    assert set(out) >= {"candidates", "champion", "parent_run_id", "seconds"}
    # each candidate says whether it is less accurate than always answering the majority class
    majority = result.baselines["majority_class"]["accuracy"]
    assert 0.0 < out["base_rate"] < 0.5  # Kobe's training split: fewer shots made than missed
    for c in out["candidates"]:
        assert c["majority_accuracy"] == majority and c["majority_class"] == "missed"
        assert c["below_majority"] == (c["test"]["accuracy"] < majority) and c["accuracy"] == c["test"]["accuracy"]
        assert bool(c["why_below_majority"]) == c["below_majority"] and c["threshold_rule"] == "accuracy"
    assert out["champion"]["below_majority"] == (result.champion.test["accuracy"] < majority)
    assert json.loads(json.dumps(out))["champion"]["version"] == result.champion.version


def test_runs_are_logged_nested_with_params_metrics_and_figures(trained) -> None:
    settings, result = trained
    client = tracking.client(settings)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.run_name == training.TRAIN_RUN and parent.info.status == "FINISHED"
    for c in result.candidates:
        run = client.get_run(c.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert run.data.params["folds"] == "3" and run.data.params["seed"] == str(settings.seed)
        assert run.data.metrics["test_log_loss"] == pytest.approx(c.test["log_loss"])
        # the figures are stored as data (drawn when shown), never as plotly JSON or an HTML page
        assert {a.path for a in client.list_artifacts(c.run_id)} == {"eval"}
        assert {a.path: a.file_size < 300_000 for a in client.list_artifacts(c.run_id, "eval")} == {
            "eval/test_predictions.json": True, "eval/diagnostics.json": True,
            "eval/explanations.json": True}  # the candidate's global explanations (issue 31)


def test_served_format_model_returns_probabilities(trained) -> None:
    settings, result = trained
    tracking.use(settings)
    test = preparation.load_split(settings, "test")
    x = test.loc[:, list(settings.features)].head(200)  # as the file holds them: whole numbers as int64
    pyfunc = mlflow.pyfunc.load_model(settings.model_uri)
    proba = np.asarray(pyfunc.predict(x))
    assert proba.shape == (200, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    # whole-number features that may not be missing are declared long, so int and float data both pass
    kinds = {f: ("long" if f in ("minutes_remaining", "period", "playoffs", "shot_distance") else "double")
             for f in settings.features}
    assert [t.name for t in pyfunc.metadata.get_input_schema().input_types()] == [kinds[f] for f in settings.features]
    version, model = registry.load_model(settings)
    inner = model.calibrated_classifiers_[0].estimator if hasattr(model, "calibrated_classifiers_") else model
    steps = [type(s).__module__ for _, s in inner.steps]
    assert not any(m.startswith("pycaret") for m in steps)  # served without PyCaret
    logged = comparison.load_candidate(settings, result.champion.run_id)
    full = model_io.predict_proba(model, test, settings.features)
    np.testing.assert_allclose(full, logged.proba, atol=1e-9)


def test_failed_training_registers_nothing_and_leaves_no_running_run(trained, tmp_path_factory,
                                                                     prepared_settings) -> None:
    settings = prepared_copy(tmp_path_factory, prepared_settings, "failing")

    def explode(candidate: training.CandidateResult) -> None:
        raise RuntimeError("boom after the first candidate")

    with pytest.raises(RuntimeError, match="boom"):
        training.train(settings, **TINY_TRAINING, on_candidate=explode)
    assert registry.versions(settings) == []
    statuses = {r.info.run_name: r.info.status for r in _runs(settings)}
    assert statuses == {training.TRAIN_RUN: "FAILED", "lr": "FINISHED"}
    assert not lock.is_training(settings)  # the lock was released


def test_interrupted_training_ends_killed(tmp_path_factory, prepared_settings) -> None:
    settings = prepared_copy(tmp_path_factory, prepared_settings, "interrupted")

    def interrupt(fraction: float, step: str) -> None:
        if "tuning" in step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(settings, **TINY_TRAINING, on_progress=interrupt)
    assert {r.info.status for r in _runs(settings)} == {"KILLED"}
    assert len(_runs(settings)) == 2  # parent and the lr candidate
    assert registry.versions(settings) == []


def test_second_training_is_refused_while_one_runs(prepared_settings, tmp_path_factory) -> None:
    settings = prepared_copy(tmp_path_factory, prepared_settings, "busy")
    with lock.training_lock(settings):
        assert lock.is_training(settings)
        with pytest.raises(TrainingBusyError, match="already running"):
            training.train(settings, **TINY_TRAINING)
    assert not lock.is_training(settings)


def test_choices_are_validated(settings: Settings) -> None:
    assert candidates.resolve_models(["lightgbm"]) == ("lr", "dt", "lightgbm")
    assert candidates.resolve_models(["DT", "lr"]) == ("lr", "dt")
    with pytest.raises(TrainingError, match="Unknown model id"):
        candidates.resolve_models(["xgboost"])
    with pytest.raises(TrainingError, match="folds"):
        training.train(settings, folds=1)
    with pytest.raises(TrainingError, match="iterations"):
        training.train(settings, n_iter=0)
    with pytest.raises(NotPreparedError):
        training.train(settings)


def test_model_ids_exist_in_pycaret(trained) -> None:
    from pycaret.classification import ClassificationExperiment

    settings, _ = trained
    train = preparation.load_split(settings, "train").head(300)
    exp = ClassificationExperiment()
    exp.setup(data=train, target=settings.target, session_id=1, verbose=False, html=False, system_log=False)
    assert set(candidates.MODELS) <= set(exp.models().index)


def test_cli_train_prints_one_json_object(tmp_path_factory, prepared_settings, monkeypatch, capsys) -> None:
    settings = prepared_copy(tmp_path_factory, prepared_settings, "cli")
    monkeypatch.setenv("WORKBENCH_HOME", str(settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = cli.main(["train", "--models", "lr", "--n-iter", "1", "--folds", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out["candidates"]] == ["lr", "dt"]
    assert set(out["candidates"][0]["test"]) == set(tracking_metric_names())
    assert out["champion"]["version"] == registry.champion(settings).version == "1"
    assert out["parent_run_id"] and out["seconds"] > 0


def tracking_metric_names() -> tuple[str, ...]:
    from core.modeling.metrics import METRIC_NAMES

    return METRIC_NAMES


def test_cli_reports_bad_choices_without_traceback(capsys) -> None:
    assert cli.main(["train", "--models", "nope", "--json"]) == 2
    assert "Unknown model id" in capsys.readouterr().err


def test_curves_overlay_series_and_check_lengths() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.2 + rng.random(500) * 0.8, 0, 1)
    series = {"a": (y, p), "b": (y, 1 - p)}
    assert len(evaluation.roc(series).data) == 3  # two series and the chance line
    assert len(evaluation.pr(series).data) == 4  # two series, each with its own base rate
    assert len(evaluation.calibration(series).data) == 3
    counts = evaluation.confusion_counts(y, p, 0.5)
    assert counts.sum() == 500
    assert evaluation.confusion(y, p, 0.3).layout.title.text.endswith("0.30")
    fig = evaluation.importance(["x", "y"], [0.2, -0.5], "coefficient")
    assert list(fig.data[0].y) == ["x", "y"]
    assert evaluation.learning_curve([10, 20], [0.5, 0.6], [0.7, 0.65]).layout.xaxis.title.text == "Training rows"
    words = Words(positive="churned", negative="stayed", rows="customers", proba="P(churned)")
    assert evaluation.learning_curve([10], [0.5], [0.7], words=words).layout.xaxis.title.text == "Training customers"
    assert list(evaluation.confusion(y, p, 0.5, words=words).data[0].x) == ["stayed (0)", "churned (1)"]
    with pytest.raises(ValueError, match="differ in length"):
        evaluation.roc({"bad": (y, p[:-1])})
