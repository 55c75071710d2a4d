"""Train and Compare pages in AppTest with the real core and a tiny training budget."""
from __future__ import annotations

import pytest

from core.config import Settings
from core.modeling import lock, training
from core.modeling import registry as model_registry
from tests.conftest import prepared_copy


def test_train_page_without_data_says_prepare_first(run_page, settings: Settings) -> None:
    at = run_page("pages/2_Train.py", settings)
    assert not at.exception
    assert "No prepared data yet" in at.info[0].value


def test_train_button_runs_a_tiny_training(run_page, tmp_path_factory, prepared_settings) -> None:
    s = prepared_copy(tmp_path_factory, prepared_settings, "train-page")
    at = run_page("pages/2_Train.py", s, timeout=240)
    assert not at.exception
    assert "press **Train**" in at.info[0].value
    at.multiselect[0].set_value([])
    at.number_input[0].set_value(2)  # folds
    at.number_input[1].set_value(1)  # iterations
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert not at.error
    assert "Champion:" in at.success[0].value and "version 1" in at.success[0].value
    shown = at.dataframe[0].value
    assert list(shown["model"]) == ["Logistic Regression", "Decision Tree"]
    assert (shown["test log loss"] < 0.692).all()
    assert model_registry.champion(s).version == "1"
    assert not lock.is_training(s)
    assert any("/#/models/" in c.value and "/runs/" in c.value for c in at.caption)  # MLflow UI links
    # the form shows the values that were used, not the defaults
    assert at.number_input[0].value == 2 and at.number_input[1].value == 1 and at.multiselect[0].value == []
    # the same training again is not better: the champion stays, and the page says why, side by side
    at.get("form_submit_button")[0].click().run()
    assert not at.exception and not at.error
    assert "The champion stays version 1" in at.warning[0].value and "not better" in at.warning[0].value
    verdict = at.dataframe[0].value  # champion before vs challenger, above the candidates
    assert [c.split(": ")[0] for c in verdict.columns] == ["champion before", "challenger"]
    assert verdict.columns[0].startswith("champion before: v1") and verdict.columns[1].startswith("challenger: v2")
    assert "test log loss" in verdict.index and "threshold" in verdict.index
    assert model_registry.champion(s).version == "1"
    assert model_registry.alias_version(s, model_registry.CHALLENGER).version == "2"


def _shown_result(below: bool) -> dict:
    """What `train --json` gives for a one-candidate Kobe training, at the F1 rule's "everything made"
    threshold (below) or at the accuracy rule's (not below)."""
    test = ({"log_loss": 0.672, "f1": 0.646, "roc_auc": 0.63, "accuracy": 0.477, "precision": 0.477, "recall": 1.0,
             "brier": 0.24} if below else
            {"log_loss": 0.672, "f1": 0.476, "roc_auc": 0.63, "accuracy": 0.592, "precision": 0.61, "recall": 0.39,
             "brier": 0.24})
    why = ("accuracy 0.477 at its threshold 0.3312 is below the 0.523 of always answering 'missed': the F1 rule "
           "calls 100.0% of the rows 'made'") if below else ""
    version = {"name": "lightgbm", "version": "1", "run_id": "r", "test": test, "threshold": 0.3312 if below else 0.4773,
               "below_majority": below, "majority_accuracy": 0.523, "why_below_majority": why}
    return {"candidates": [{"name": "lightgbm", "label": "LightGBM", "test": test, "cv": {"log_loss": 0.67},
                            "run_id": "r", "seconds": 1.0, "threshold": version["threshold"],
                            "threshold_rule": "f1" if below else "accuracy", "calibration": "none",
                            "accuracy": test["accuracy"], "below_majority": below, "majority_accuracy": 0.523,
                            "majority_class": "missed", "why_below_majority": why}],
            "champion": version, "challenger": version, "champion_before": None, "promoted": True,
            "reason": "promoted: there was no champion to compare with", "selected_by": "cross-validated log loss",
            "parent_run_id": "p", "criterion": "log_loss", "folds": 3, "n_iter": 4, "previous_version": None,
            "baselines": {"majority_class": {"accuracy": 0.523, "f1": 0.0}, "base_rate": {"log_loss": 0.6921}},
            "base_rate": 0.477, "feature_set": "default", "features": [], "seconds": 60.0}


def test_train_page_says_plainly_when_the_champion_is_below_the_majority_class(run_page, prepared_settings) -> None:
    from ui import session_keys

    at = run_page("pages/2_Train.py", prepared_settings, state={session_keys.TRAIN_RESULT: _shown_result(True)})
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    assert "Version 1 is less accurate than always answering missed" in warned and "0.477" in warned
    assert "base-rate log loss 0.6921" in at.success[0].value  # the log loss, named as one
    assert any("training base rate (0.477)" in c.value and "(missed) → accuracy 0.523" in c.value for c in at.caption)
    assert at.selectbox[2].value == "accuracy"  # the default rule in the form

    fine = run_page("pages/2_Train.py", prepared_settings, state={session_keys.TRAIN_RESULT: _shown_result(False)})
    assert not fine.exception and not fine.warning


def test_train_page_refuses_while_another_training_runs(run_page, tmp_path_factory, prepared_settings) -> None:
    s = prepared_copy(tmp_path_factory, prepared_settings, "train-busy")
    with lock.training_lock(s):
        at = run_page("pages/2_Train.py", s)
        assert not at.exception
        assert "already running" in at.warning[0].value
        assert at.get("form_submit_button")[0].disabled
    assert model_registry.versions(s) == []


def test_compare_page_without_runs_says_train_first(run_page, settings: Settings) -> None:
    at = run_page("pages/3_Compare.py", settings)
    assert not at.exception
    assert "No training runs yet" in at.info[0].value


def test_compare_page_overlays_candidates_and_lists_the_registry(run_page, trained) -> None:
    s, result = trained
    at = run_page("pages/3_Compare.py", s)
    assert not at.exception
    runs = at.dataframe[0].value  # the newest training's candidates, grouped under it
    assert {"Logistic Regression", "Decision Tree"} <= set(runs["model"])
    assert list(runs.columns) == ["model", "CV log loss", "test log loss", "test ROC-AUC", "test F1", "threshold",
                                  "registered", "mlflow"]  # the essentials only: the table fits the page
    assert f"v{result.champion.version} (champion)" in set(runs["registered"])
    assert "2 candidates · best" in at.expander[0].label
    assert all(f"/runs/{c.run_id}" in url for c, url in
               zip(sorted(result.candidates, key=lambda c: c.cv["log_loss"]), runs["mlflow"]))
    assert at.get("download_button")[0].proto.label == "Download every candidate (CSV)"
    assert len(at.multiselect[0].value) == 2  # the latest training's candidates, overlaid
    assert len(at.tabs) == 6
    at.slider[0].set_value(0.4).run()
    assert not at.exception
    own = at.dataframe[1].value  # each candidate at its own threshold, as trained
    assert sorted(own["own threshold"].round(4)) == sorted(round(c.threshold, 4) for c in result.candidates)
    at_threshold = at.dataframe[2].value
    assert set(at_threshold.columns) >= {"precision", "recall", "f1"}
    # every tab drawn once: three overlaid curves, then a confusion matrix, feature importance and
    # learning curve per candidate, and the two charts of its explanations (issue 31)
    assert len(at.get("plotly_chart")) == 3 + (3 + 2) * len(result.candidates)
    assert {f"explain-bars-{i}" for i in range(len(result.candidates))} <= {c.key for c in at.get("plotly_chart")}
    registry = at.dataframe[3].value
    assert "parameters" not in registry and "mlflow" in registry  # the rest in the expander below
    assert {"parameters", "feature set", "train rows"} <= set(at.dataframe[4].value.columns)
    assert registry.loc[registry["version"] == result.champion.version, "aliases"].iloc[0] == "champion"
    assert registry.loc[registry["version"] == result.champion.version, "threshold"].iloc[0] == pytest.approx(
        result.champion.threshold, abs=1e-4)
    assert any("CV log loss chose" in c.value for c in at.caption)


def test_compare_page_promotes_after_confirmation_and_rolls_back(run_page, tmp_path_factory,
                                                                 prepared_settings) -> None:
    s = prepared_copy(tmp_path_factory, prepared_settings, "compare-promote")
    result = training.train(s, models=[], folds=2, n_iter=1)
    other = next(c for c in result.candidates if c.name != result.champion.name)
    v2 = model_registry.register(s, other.model_uri)  # a second version, not yet champion
    at = run_page("pages/3_Compare.py", s)
    assert not at.exception
    at.selectbox[0].set_value(v2).run()
    promote = next(b for b in at.button if b.label == "Promote")
    assert promote.disabled  # not confirmed yet
    confirm = at.checkbox[0]
    assert f"make v{v2} (" in confirm.label and f"in place of v{result.champion.version} (" in confirm.label
    confirm.check().run()
    next(b for b in at.button if b.label == "Promote").click().run()
    assert not at.exception
    assert model_registry.champion(s).version == v2
    assert model_registry.alias_version(s, model_registry.PREVIOUS).version == result.champion.version
    back = next(c for c in at.checkbox if "previous champion" in c.label)
    back.check().run()
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert not at.exception
    assert model_registry.champion(s).version == result.champion.version


def test_compare_page_shows_older_runs_or_says_where_their_curves_are(run_page, tmp_path_factory,
                                                                      prepared_settings) -> None:
    """Runs logged before figures were stored as data: plotly JSON figures are still drawn; a run
    that kept only `figures/evaluation.html` is named with where to look, the others overlaid."""
    import json
    import tempfile
    from pathlib import Path

    import mlflow

    from core import tracking
    from core.charts import evaluation
    from core.modeling.candidates import MODEL_TAG, ROLE_TAG

    s = prepared_copy(tmp_path_factory, prepared_settings, "compare-legacy")
    exp_id = tracking.use(s)
    preds = {"y_true": [0, 1, 1, 0, 1, 0], "proba": [0.2, 0.7, 0.6, 0.1, 0.4, 0.5], "threshold": 0.45}
    fig = evaluation.importance(["a", "b"], [0.2, -0.4], "coefficient", "Logistic Regression: feature coefficient")
    logged = {"lr": {"eval/test_predictions.json": json.dumps(preds), "figures/importance.json": fig.to_json(),
                     "figures/evaluation.html": "<html></html>"},
              "dt": {"eval/test_predictions.json": json.dumps(preds), "figures/evaluation.html": "<html></html>"},
              "lightgbm": {"figures/evaluation.html": "<html></html>"}}
    with mlflow.start_run(experiment_id=exp_id, run_name="Treinamento", tags={ROLE_TAG: "training"}):
        for model, files in logged.items():
            with mlflow.start_run(experiment_id=exp_id, run_name=model, nested=True,
                                  tags={ROLE_TAG: "candidate", MODEL_TAG: model}), tempfile.TemporaryDirectory() as tmp:
                mlflow.log_params({"folds": 3, "iterations": 2})
                mlflow.log_metrics({"cv_log_loss": 0.6, "test_log_loss": 0.6})
                for path, text in files.items():
                    (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                    (Path(tmp) / path).write_text(text)
                mlflow.log_artifacts(tmp)
    at = run_page("pages/3_Compare.py", s)
    assert not at.exception and not at.error
    assert len(at.multiselect[0].value) == 3
    assert any("LightGBM" in w.value and "figures/evaluation.html" in w.value for w in at.warning)
    # the two readable candidates overlaid: 3 curves, 2 confusion matrices, lr's logged importance
    assert len(at.get("plotly_chart")) == 3 + 2 + 1
    notes = [c.value for c in at.caption if "no " in c.value and "stored with this run" in c.value]
    assert len(notes) == 1 + 2 + 2  # dt's importance, both learning curves, both explanations (issue 31)
