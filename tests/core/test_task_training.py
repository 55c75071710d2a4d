"""Preparation and training of every task kind on tiny inline data: a multiclass target (three
classes, one categorical feature) and a regression one (a price with a unit), each described by a
dataset definition written here (`task = "multiclass"` / `"regression"`), trained with the
smallest budget in a temporary home; and the conformal interval's held-out coverage.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import catalog, cli
from core.charts import evaluation
from core.charts import multiclass as multiclass_charts
from core.charts import regression as regression_charts
from core.charts import tasks as task_charts
from core.config import Settings
from core.data import preparation
from core.errors import DataUnavailableError, PreparationError, TrainingError
from core.files import sha256_file
from core.modeling import candidates, comparison, intervals, metrics, registry, training
from core.modeling.model_version import CLASSES_TAG, INTERVAL_TAG, TASK_TAG, THRESHOLD_TAG

TINY = {"models": [], "n_iter": 1, "folds": 2}
CLASSES = ("alpha", "beta", "gamma")

TOML = """\
name = "{name}"
title = "{title}"
experiment = "{name}-experiment"
model_name = "{name}-model"

[target]
column = "{target}"
task = "{task}"
{extra}

[[features]]
name = "x1"
kind = "numeric"

[[features]]
name = "x2"
kind = "numeric"

[[features]]
name = "colour"
kind = "categorical"
values = ["blue", "green", "red"]

[[sources]]
file = "{name}.parquet"
sha256 = "{sha}"

[dev]
source = "{name}.parquet"
"""


def multiclass_frame(n: int = 360, seed: int = 0, rare: int | None = None) -> pd.DataFrame:
    """Three classes driven by x1, x2 and the colour (`rare`: keep only that many 'beta' rows)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    score = np.column_stack([x1, x2, -x1 - x2 + (colour == "red") * 1.5])
    p = np.exp(2 * score)
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(CLASSES, p=row) for row in p])
    df = pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "colour": colour, "kind": y})
    if rare is not None:
        beta = df.index[df["kind"] == "beta"]
        df = df.drop(beta[rare:]).reset_index(drop=True)
    return df


def regression_frame(n: int = 2000, seed: int = 1) -> pd.DataFrame:
    """A price: linear in x1 and x2, more for red, with noise whose spread grows with x1."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0, 10, n), rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    y = 10 + 3 * x1 - 2 * x2 + (colour == "red") * 4 + rng.normal(0, 1.0 + 0.2 * x1, n)
    return pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "colour": colour, "price": y.round(3)})


def make_home(home: Path, name: str, frame: pd.DataFrame, task: str) -> Settings:
    """A home holding one dataset: its raw file and the definition written by hand."""
    folder = catalog.user_dir(home) / name
    (folder / "01_raw").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "01_raw" / f"{name}.parquet", index=False)
    extra = (f"classes = {json.dumps(list(CLASSES))}" if task == "multiclass" else 'unit = "$"')
    target = "kind" if task == "multiclass" else "price"
    (folder / "dataset.toml").write_text(TOML.format(
        name=name, title=f"Tiny {task}", target=target, task=task, extra=extra,
        sha=sha256_file(folder / "01_raw" / f"{name}.parquet")))
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=catalog.load(folder / "dataset.toml"))


@pytest.fixture(scope="module")
def multiclass_trained(tmp_path_factory: pytest.TempPathFactory):
    s = make_home(tmp_path_factory.mktemp("multiclass"), "tinymc", multiclass_frame(), "multiclass")
    prep = preparation.prepare(s)
    return s, prep, training.train(s, **TINY)


@pytest.fixture(scope="module")
def regression_trained(tmp_path_factory: pytest.TempPathFactory):
    s = make_home(tmp_path_factory.mktemp("regression"), "tinyreg", regression_frame(), "regression")
    prep = preparation.prepare(s)
    return s, prep, training.train(s, **TINY)


# --------------------------------------------------------------------------- preparation
def test_multiclass_preparation_stores_class_positions_stratified(multiclass_trained) -> None:
    s, prep, _ = multiclass_trained
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    assert train["kind"].dtype == "int64" and set(train["kind"]) == {0, 1, 2}
    assert prep.task == "multiclass" and prep.target_stats is None
    assert prep.positive_rate == {"all": None, "train": None, "test": None, "prod": None}
    shares = prep.class_shares
    assert list(shares["train"]) == list(CLASSES) and shares["prod"] is None
    for name in CLASSES:  # stratified: the same shares in both splits
        assert shares["train"][name] == pytest.approx(shares["test"][name], abs=0.02)
    assert test["kind"].value_counts(normalize=True).sort_index().round(6).tolist() == list(shares["test"].values())
    overview = preparation.overview(s)
    assert overview.positive_rate == {} and overview.class_shares["train"] == shares["train"]


def test_regression_preparation_stores_numbers_split_at_random(regression_trained) -> None:
    s, prep, _ = regression_trained
    train = preparation.load_split(s, "train")
    assert train["price"].dtype == "float64" and prep.task == "regression" and prep.class_shares is None
    raw = regression_frame()
    assert prep.target_stats["all"]["mean"] == pytest.approx(raw["price"].mean(), rel=1e-6)
    assert prep.target_stats["train"]["std"] > 0 and set(prep.target_stats["train"]) == {"mean", "std", "min", "max"}
    assert preparation.overview(s).target_stats["test"]["mean"] == pytest.approx(prep.target_stats["test"]["mean"])


def test_a_class_too_rare_to_split_is_refused_naming_it(tmp_path: Path) -> None:
    s = make_home(tmp_path / "rare", "rare", multiclass_frame(rare=3), "multiclass")
    with pytest.raises(PreparationError, match=r"'beta' \(3 rows\).*at least 5.*Merge the rare class") as err:
        preparation.prepare(s)
    assert isinstance(err.value, DataUnavailableError)  # what callers of prepare already catch
    assert not s.train_path.exists() and not s.test_path.exists()  # nothing written


def test_a_label_outside_the_classes_is_refused(tmp_path: Path) -> None:
    frame = multiclass_frame()
    frame.loc[0, "kind"] = "delta"
    s = make_home(tmp_path / "other", "other", frame, "multiclass")
    with pytest.raises(DataUnavailableError, match=r"values other than its classes \('alpha', 'beta', 'gamma'\) in 1 rows"):
        preparation.prepare(s)


# --------------------------------------------------------------------------- multiclass training
def test_multiclass_training_reports_the_tasks_metrics_and_no_threshold(multiclass_trained) -> None:
    s, _, result = multiclass_trained
    assert [c.name for c in result.candidates] == ["lr", "dt"]
    assert result.criterion == "log_loss" and result.selected_by.startswith("cross-validated log loss")
    out = result.to_dict()
    assert out["task"] == "multiclass" and out["classes"] == list(CLASSES) and out["base_rate"] is None
    for c in out["candidates"]:
        assert set(c["test"]) == {"log_loss", "accuracy", "f1_macro", "f1_0", "f1_1", "f1_2"}
        assert set(c["cv"]) >= {"log_loss", "accuracy", "f1_macro"}
        assert c["threshold"] is None and c["threshold_rule"] is None and c["interval"] is None
        assert c["calibration"] in ("none", "sigmoid", "isotonic")
        assert c["majority_class"] in CLASSES and c["below_majority"] == (c["test"]["accuracy"] < c["majority_accuracy"])
    assert out["champion"]["threshold"] is None
    # chosen on cross-validation
    assert result.champion.cv["log_loss"] == min(c.cv["log_loss"] for c in result.candidates)
    # PyCaret's CV scored our metrics (it turns a failing score into 0.0 without a word)
    from core import tracking

    logged = tracking.client(s).get_run(result.champion.run_id).data.metrics
    assert logged["tuning_cv_f1_macro"] > 0.5 and 0.2 < logged["tuning_cv_log_loss"] < 1.1
    assert "tuning_cv_roc_auc" not in logged
    # baselines: the majority class and the class shares; the champion beats the shares' log loss
    assert set(out["baselines"]) == {"majority_class", "class_shares"}
    assert result.champion.test["log_loss"] < out["baselines"]["class_shares"]["log_loss"]


def test_multiclass_version_is_tagged_and_gives_every_class_probability(multiclass_trained) -> None:
    s, _, result = multiclass_trained
    champ = registry.champion(s)
    assert champ.task == "multiclass" and champ.classes == CLASSES and champ.threshold is None
    assert json.loads(champ.tags[CLASSES_TAG]) == list(CLASSES) and THRESHOLD_TAG not in champ.tags
    _, model = registry.load_model(s, champ)
    test = preparation.load_split(s, "test")
    proba = model.predict_proba(test[list(s.features)])
    assert proba.shape == (len(test), 3) and np.allclose(proba.sum(axis=1), 1.0)
    task_file = registry.local_files(champ) / "code" / "task.json"
    assert json.loads(task_file.read_text()) == {"task": "multiclass", "classes": list(CLASSES)}
    # the figures registered are those of the model as logged
    got = metrics.multiclass(test["kind"].to_numpy(), proba)
    assert got["log_loss"] == pytest.approx(result.champion.test["log_loss"], rel=1e-9)


def test_multiclass_compare_data_and_charts(multiclass_trained) -> None:
    s, _, result = multiclass_trained
    runs = comparison.training_runs(s)
    assert {"CV log loss", "test accuracy", "test macro F1"} <= set(runs.columns) and "test ROC-AUC" not in runs
    group = comparison.trainings(runs, "multiclass")[0]
    assert group["best CV"] == pytest.approx(result.champion.cv["log_loss"]) and group["criterion"] == "log loss"
    table = comparison.registry_table(s)
    assert list(table.columns) == comparison.registry_columns("multiclass") and table["test accuracy"].notna().all()
    e = comparison.load_candidate(s, result.champion.run_id)
    assert e.task == "multiclass" and e.proba.shape[1] == 3 and e.held_out.classes == CLASSES and e.threshold is None
    assert len(multiclass_charts.roc_per_class(e.y_true, e.proba, CLASSES).data) == 4  # a curve per class + chance
    cm = multiclass_charts.confusion(e.y_true, e.proba, CLASSES)
    assert np.asarray(cm.data[0].customdata).sum() == len(e.y_true)
    bars = multiclass_charts.per_class({"a": (e.y_true, e.proba), "b": (e.y_true, e.proba)}, CLASSES, "recall")
    assert len(bars.data) == 2 and len(bars.data[0].y) == 3
    assert e.diagnostics.learning_curve.metric == "log_loss"
    assert "log loss" in evaluation.diagnostic(e, "learning_curve").layout.yaxis.title.text.lower()
    # the Compare page's charts by name
    for name, one in task_charts.CHARTS["multiclass"].items():
        fig = task_charts.figure(name, ["lr · v1"] if one else ["lr · v1", "again"], [e.held_out] * (1 if one else 2),
                                 s.dataset)
        assert fig.data, name
    with pytest.raises(ValueError, match="no chart 'residuals'"):
        task_charts.figure("residuals", ["lr"], [e.held_out], s.dataset)


def test_a_second_multiclass_training_is_gated_on_log_loss(multiclass_trained, tmp_path_factory) -> None:
    import shutil

    s, _, first = multiclass_trained
    home = tmp_path_factory.mktemp("multiclass_again")
    shutil.copytree(s.home, home, dirs_exist_ok=True)
    again = s.replace(home=home)
    result = training.train(again, models=[], n_iter=1, folds=2, criterion="accuracy")
    before = result.champion_before
    assert before is not None and before.version == first.champion.version
    assert set(before.test) >= {"log_loss", "accuracy", "f1_macro"} and before.threshold is None
    assert "accuracy" in result.reason and result.criterion == "accuracy"


# --------------------------------------------------------------------------- regression training
def test_regression_training_reports_the_tasks_metrics_and_an_interval(regression_trained) -> None:
    s, _, result = regression_trained
    assert [c.name for c in result.candidates] == ["ridge", "dt"]
    out = result.to_dict()
    assert out["task"] == "regression" and out["criterion"] == "rmse" and out["classes"] == []
    for c in out["candidates"]:
        assert set(c["test"]) == {"rmse", "mae", "r2", "mape", "interval_coverage"}
        assert set(c["cv"]) >= {"rmse", "mae", "r2"}
        assert c["threshold"] is None and c["below_majority"] is None and c["accuracy"] is None
        assert c["interval"]["level"] == 0.9 and c["interval"]["halfwidth"] > 0
    assert set(out["baselines"]) == {"mean"}
    assert result.champion.test["rmse"] < out["baselines"]["mean"]["rmse"]
    assert result.champion.test["r2"] > 0.8 and out["champion"]["interval"] == out["candidates"][0]["interval"]


def test_regression_version_is_tagged_with_its_interval(regression_trained) -> None:
    s, _, result = regression_trained
    champ = registry.champion(s)
    assert champ.task == "regression" and champ.tags[TASK_TAG] == "regression" and champ.classes == ()
    assert champ.interval == pytest.approx(json.loads(champ.tags[INTERVAL_TAG]))
    assert champ.interval["halfwidth"] == pytest.approx(result.champion.interval["halfwidth"])
    task_file = registry.local_files(champ) / "code" / "task.json"
    assert json.loads(task_file.read_text())["interval"]["halfwidth"] == pytest.approx(champ.interval["halfwidth"])
    _, model = registry.load_model(s, champ)
    test = preparation.load_split(s, "test")
    pred = model.predict(test[list(s.features)])
    got = metrics.regression(test["price"].to_numpy(), pred, *intervals.bounds(pred, champ.interval["halfwidth"]))
    assert got["rmse"] == pytest.approx(result.champion.test["rmse"], rel=1e-9)


def test_held_out_coverage_of_the_90_percent_interval_is_close_to_nominal(regression_trained) -> None:
    """2,000 rows (400 held out): the share of test prices inside their interval is near 0.9 for
    every candidate (one standard error is about 0.015)."""
    _, _, result = regression_trained
    for c in result.candidates:
        assert 0.85 <= c.test["interval_coverage"] <= 0.95, (c.name, c.test["interval_coverage"])


def test_regression_compare_data_and_charts(regression_trained) -> None:
    s, _, result = regression_trained
    runs = comparison.training_runs(s)
    assert {"CV RMSE", "test RMSE", "test R²", "test interval coverage", "interval ±"} <= set(runs.columns)
    group = comparison.trainings(runs, "regression")[0]
    assert group["best CV"] == pytest.approx(min(c.cv["rmse"] for c in result.candidates))
    table = comparison.registry_table(s)
    assert table.loc[0, "interval ±"] == pytest.approx(result.champion.interval["halfwidth"])
    e = comparison.load_candidate(s, result.champion.run_id)
    h = e.held_out
    assert e.task == "regression" and h.level == 0.9 and np.allclose(h.upper - h.lower, 2 * result.champion.interval["halfwidth"])
    assert len(regression_charts.predicted_vs_actual(h.y_true, h.prediction, unit="$").data) == 2
    assert regression_charts.residuals(h.y_true, h.prediction, 3.0).data[-1].name == "interval: ± 3"
    errors = regression_charts.error_distribution({"a": (h.y_true, h.prediction)}, unit="$")
    assert abs(sum(errors.data[0].y) - 1.0) < 0.02  # shares of the rows (a few extreme ones clipped into the end bins)
    cover = regression_charts.interval_coverage(regression_charts.interval_series(["a"], [h]), h.level)
    assert cover.data[-1].name == "nominal 90%" and "overall" in cover.data[0].name
    assert e.diagnostics.learning_curve.metric == "rmse"
    assert "RMSE" in evaluation.diagnostic(e, "learning_curve").layout.yaxis.title.text
    for name, one in task_charts.CHARTS["regression"].items():
        assert task_charts.figure(name, ["ridge"] if one else ["ridge", "dt"], [h] * (1 if one else 2), s.dataset).data


# --------------------------------------------------------------------------- choices
def test_a_criterion_of_another_task_is_refused(regression_trained) -> None:
    s, _, _ = regression_trained
    with pytest.raises(TrainingError, match="A regression model is chosen by one of rmse, mae, r2, not 'log_loss'"):
        training.train(s, criterion="log_loss", **TINY)
    with pytest.raises(TrainingError, match=r"Unknown model id\(s\): gbc.*regressors"):
        candidates.resolve_models(["gbc"], "regression")
    assert candidates.resolve_models(None, "regression") == ("ridge", "dt", "lightgbm")
    assert candidates.resolve_models(["lr"], "multiclass") == ("lr", "dt")


def test_cli_refuses_options_of_another_task(regression_trained, monkeypatch, capsys) -> None:
    s, _, _ = regression_trained
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli.main(["--dataset", "tinyreg", "train", "--criterion", "log_loss", "--json"]) == 2
    assert "invalid choice: 'log_loss' (choose from 'rmse', 'mae', 'r2')" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert cli.main(["--dataset", "tinyreg", "train", "--threshold-rule", "f1", "--json"]) == 2
    assert "apply to a binary target" in capsys.readouterr().err
    assert cli.main(["--dataset", "tinyreg", "train", "--interval", "1.5", "--json"]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def test_regression_model_ids_exist_in_pycaret() -> None:
    from pycaret.regression import RegressionExperiment

    exp = RegressionExperiment()
    exp.setup(data=regression_frame(200).drop(columns=["colour"]), target="price", session_id=1, verbose=False,
              html=False, system_log=False)
    assert set(candidates.REGRESSION_MODELS) <= set(exp.models().index)
    assert set(candidates.REGRESSION_GRIDS) <= set(candidates.REGRESSION_MODELS)


# --------------------------------------------------------------------------- conformal intervals
def test_conformal_halfwidth_is_the_finite_sample_quantile() -> None:
    y = np.arange(1.0, 11.0)  # residuals 1..10 against a zero prediction
    assert intervals.conformal_halfwidth(y, np.zeros(10), 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert intervals.conformal_halfwidth(y, np.zeros(10), 0.95) == 10.0  # rank 11 > n: the largest
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        intervals.conformal_halfwidth(y, y, 1.0)


def test_conformal_intervals_cover_new_rows_at_the_level() -> None:
    """On exchangeable residuals the share of new rows inside is at least the level, and close to it."""
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(200):
        calib, new = rng.standard_t(4, 300), rng.standard_t(4, 300)
        q = intervals.conformal_halfwidth(calib, np.zeros(300), 0.9)
        covered.append(np.mean(np.abs(new) <= q))
    assert 0.895 <= float(np.mean(covered)) <= 0.915
