"""The Train and Compare pages of a multiclass and of a regression dataset (tiny inline data, the
definitions written by hand, a real training with the smallest budget): the task's metrics,
baselines and charts, no threshold anywhere."""
from __future__ import annotations

import pytest

from core.data import preparation
from core.modeling import training
from tests.core.test_task_training import make_home, multiclass_frame, regression_frame
from ui import session_keys


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = {}
    for task, name, frame in (("multiclass", "tinymc", multiclass_frame()),
                              ("regression", "tinyreg", regression_frame(600))):
        s = make_home(tmp_path_factory.mktemp(task), name, frame, task)
        preparation.prepare(s)
        out[task] = (s, training.train(s, models=[], n_iter=1, folds=2).to_dict())
    return out


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_train_page_shows_the_tasks_metrics_and_baselines(task, homes, run_page, monkeypatch) -> None:
    s, result = homes[task]
    monkeypatch.setenv("WORKBENCH_DATASET", s.dataset.name)
    at = run_page("pages/2_Train.py", s, state={session_keys.TRAIN_RESULT: result})
    assert not at.exception and not at.error
    columns = list(at.dataframe[0].value.columns)
    text = " ".join(c.value for c in at.caption)
    assert not any("threshold" in w.label.lower() for w in at.selectbox)  # no threshold rule to choose
    criterion = next(w for w in at.selectbox if w.label.startswith("Best candidate chosen by"))
    assert list(criterion.options) == (["log loss", "accuracy", "macro F1"] if task == "multiclass"
                                       else ["RMSE", "MAE", "R²"])
    if task == "multiclass":
        assert {"CV log loss", "test accuracy", "test macro F1", "F1 alpha", "F1 gamma"} <= set(columns)
        assert "always the training class shares" in text and "always the majority class" in text
        assert "test log loss" in at.success[0].value and "accuracy" in at.success[0].value
    else:
        assert {"CV RMSE", "test RMSE", "test R²", "interval coverage", "interval ±"} <= set(columns)
        assert "always the training mean" in text
        assert "90% interval" in at.success[0].value
        assert any(w.label.startswith("Prediction interval") for w in at.number_input)
    assert "threshold" not in columns


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_compare_page_draws_the_tasks_charts(task, homes, run_page, monkeypatch) -> None:
    s, result = homes[task]
    monkeypatch.setenv("WORKBENCH_DATASET", s.dataset.name)
    at = run_page("pages/3_Compare.py", s)
    assert not at.exception and not at.error
    tabs = [t.label for t in at.tabs]
    charts = at.get("plotly_chart")
    if task == "multiclass":
        assert tabs == ["ROC per class", "Confusion matrices", "Precision and recall per class",
                        "Feature importance", "Learning curves"]
        # ROC and confusion per candidate, precision + recall, importance and learning curve per candidate,
        # and each candidate's explanations (mean |contribution| and the strip: issue 31)
        assert len(charts) == 2 + 2 + 2 + 2 + 2 + 2 * 2
        assert {"test accuracy", "test macro F1"} <= set(at.dataframe[0].value.columns)
    else:
        assert tabs == ["Predicted vs actual", "Residuals", "Error distribution", "Interval coverage",
                        "Feature importance", "Learning curves"]
        assert len(charts) == 2 + 2 + 1 + 1 + 2 + 2 + 2 * 2  # ... and each candidate's two explanation charts
        assert {"test RMSE", "test interval coverage"} <= set(at.dataframe[0].value.columns)
    assert ("CV log loss" if task == "multiclass" else "CV RMSE") in at.expander[0].label  # the training listed
