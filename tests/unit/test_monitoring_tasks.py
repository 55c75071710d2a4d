"""Monitoring of multiclass and regression models (issue 34): the label-free estimators on
synthetic data, the policy's rules and words per task, a drift check of each kind on a tiny home
(prediction drift, label drift, realised figures, the estimate and its trust flag, the report,
the run, the command line), the Production verdict and the retraining's data and gate per task."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.config import DriftThresholds, RetrainPolicy
from core.data import batches
from core.modeling.tasks import MULTICLASS, REGRESSION
from core.monitoring import adherence, check, estimators, outputs, policy, retraining, run_log, stream, task_health
from core.monitoring.drift_report import Estimate
from tests.unit import task_homes


# --------------------------------------------------------------------------- estimators
def _dirichlet_batch(rng: np.random.Generator, n: int, alpha: float, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Perfectly calibrated class probabilities (Dirichlet) and classes drawn from them."""
    p = rng.dirichlet(np.full(k, alpha), n)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return p, y


def test_cbpe_on_calibrated_probabilities_estimates_accuracy_and_macro_f1() -> None:
    rng = np.random.default_rng(0)
    ref_p, ref_y = _dirichlet_batch(rng, 4000, 0.5)
    cal = estimators.fit_class_calibration(ref_p, ref_y)
    for alpha in (0.3, 0.5, 1.5):  # confident, as the reference, uncertain: accuracy from 0.8 to 0.5
        p, y = _dirichlet_batch(rng, 5000, alpha)
        est = estimators.cbpe(p, estimators.calibrate_classes(p, cal))
        from core.modeling import metrics

        real = metrics.multiclass(y, p)
        assert est["accuracy"] == pytest.approx(real["accuracy"], abs=0.02), alpha
        assert est["f1_macro"] == pytest.approx(real["f1_macro"], abs=0.03), alpha
    # with the raw probabilities as calibrated: the expected accuracy is the mean top probability
    exact = estimators.cbpe(p, p)
    assert exact["accuracy"] == pytest.approx(p.max(axis=1).mean())
    assert set(exact) == {"accuracy", "f1_macro", "f1_0", "f1_1", "f1_2", "f1_3"}


def test_class_calibration_round_trips_and_fixes_overconfidence() -> None:
    rng = np.random.default_rng(1)
    p, y = _dirichlet_batch(rng, 4000, 0.6, k=3)
    sharp = p ** 2 / (p ** 2).sum(axis=1, keepdims=True)  # an over-confident model
    cal = estimators.fit_class_calibration(sharp, y)
    assert estimators.ClassCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    q = estimators.calibrate_classes(sharp, cal)
    assert np.allclose(q.sum(axis=1), 1.0)
    truth = (y == sharp.argmax(axis=1)).mean()
    assert abs(estimators.cbpe(sharp, q)["accuracy"] - truth) < abs(sharp.max(axis=1).mean() - truth)
    assert estimators.cbpe(np.empty((0, 3)), np.empty((0, 3)))["accuracy"] != estimators.cbpe(sharp, q)["accuracy"]


def _heteroscedastic(rng: np.random.Generator, n: int, low: float, high: float) -> pd.DataFrame:
    x = rng.uniform(low, high, n)
    group = rng.choice(["u", "v"], n)
    noise = rng.normal(0, 1, n) * (0.5 + 2.0 * x) * np.where(group == "u", 1.0, 0.5)
    return pd.DataFrame({"x": x, "group": group, "y": 3.0 * x + noise})


def test_dle_on_a_heteroscedastic_regression_estimates_mae_rmse_and_coverage_on_a_shifted_batch() -> None:
    rng = np.random.default_rng(2)
    ref = _heteroscedastic(rng, 3000, 0.0, 4.0)
    pred = 3.0 * ref["x"].to_numpy()  # the true mean: the errors are the noise
    halfwidth = float(np.quantile(np.abs(ref["y"] - pred), 0.9))
    loss = estimators.fit_dle(ref, pred, ref["y"].to_numpy(), halfwidth, ("x", "group"), ("group",))
    for low, high in ((0.0, 4.0), (2.5, 4.0), (0.0, 1.0)):  # as the reference, noisier, calmer
        batch = _heteroscedastic(rng, 3000, low, high)
        p = 3.0 * batch["x"].to_numpy()
        est = estimators.dle(estimators.dle_rows(loss, batch, p))
        e = batch["y"].to_numpy() - p
        assert est["mae"] == pytest.approx(np.abs(e).mean(), rel=0.1), (low, high)
        assert est["rmse"] == pytest.approx(np.sqrt((e ** 2).mean()), rel=0.1), (low, high)
        assert est["interval_coverage"] == pytest.approx((np.abs(e) <= halfwidth).mean(), abs=0.04), (low, high)
    # a category never seen in the reference is read as missing, not refused
    odd = batch.assign(group="w")
    assert np.isfinite(estimators.dle_rows(loss, odd, p)).all()


def test_a_small_reference_is_a_reason_not_to_trust_the_estimate() -> None:
    assert estimators.reference_reasons("regression", 500) == ()
    few = estimators.reference_reasons("regression", 69)
    assert few and "only 69 test rows" in few[0]
    rare = estimators.reference_reasons("multiclass", 400, {"Adelie": 150, "Chinstrap": 4})
    assert len(rare) == 1 and "Chinstrap (4)" in rare[0]


# --------------------------------------------------------------------------- policy and words
def test_the_policy_judges_each_task_by_its_own_figures() -> None:
    t = DriftThresholds()
    test = {"rmse": 540.0, "mae": 300.0, "interval_coverage": 0.9}
    worse = {"rmse": 910.0, "mae": 320.0, "interval_coverage": 0.69}
    reasons = policy.realised_drop(test, worse, t, "regression")
    assert reasons == ("realised RMSE 910 vs 540 on the test split",
                       "realised interval coverage 0.690 vs 0.900 on the test split")
    assert policy.realised_drop(test, {"rmse": 580.0, "mae": 310.0, "interval_coverage": 0.88}, t, "regression") == ()
    multi = policy.realised_drop({"accuracy": 0.91, "f1_macro": 0.88, "log_loss": 0.3},
                                 {"accuracy": 0.78, "f1_macro": 0.87, "log_loss": 0.31}, t, "multiclass")
    assert multi == ("realised accuracy 0.780 vs 0.910 on the test split",)
    # binary: as it always was
    assert policy.realised_drop({"f1": 0.6, "roc_auc": 0.7, "log_loss": 0.6},
                                {"f1": 0.5, "roc_auc": float("nan"), "log_loss": 0.7}, t) == (
        "realised F1 0.500 vs 0.600 on the test split", "realised log loss 0.700 vs 0.600 on the test split")
    est = Estimate(accuracy=float("nan"), f1=float("nan"), roc_auc=float("nan"), trustworthy=True, reasons=(),
                   figures={"rmse": 700.0, "mae": 420.0, "interval_coverage": 0.8}, method="DLE")
    verdict = policy.judge(test=test, realized=None, out_of_range={}, categorical=(), t=t, estimate=est,
                           task="regression")
    assert verdict.adherence == policy.UNKNOWN and verdict.alarm == verdict.degraded
    assert verdict.recommendation.startswith("Plan a retrain: estimated RMSE 700 vs 540 on the test split; "
                                             "estimated MAE 420 vs 300")
    calm = policy.judge(test=test, realized=test, out_of_range={}, categorical=(), t=t, task="regression",
                        prediction_drift=True)
    assert calm.adherence == policy.ADHERENT and "(RMSE 540, test 540)" in calm.recommendation


def test_the_verdict_in_words_per_task() -> None:
    none = Estimate(accuracy=float("nan"), f1=float("nan"), roc_auc=float("nan"), trustworthy=True, reasons=())
    assert task_health.words("multiclass", {"accuracy": 0.91, "f1_macro": 0.88}, {"accuracy": 0.78, "f1_macro": 0.70},
                             none, {}) == "Accuracy fell from 0.910 to 0.780; macro F1 0.880 → 0.700."
    text = task_health.words("regression", {"rmse": 540.0, "mae": 300.0, "interval_coverage": 0.9},
                             {"rmse": 910.0, "mae": 520.0, "interval_coverage": 0.69}, none, {"level": 0.9}, "price")
    assert text == ("RMSE rose from 540 to 910 (MAE 300 → 520); 31% of the actual price values fall outside their "
                    "90% interval (test: 10%).")
    guessed = Estimate(accuracy=float("nan"), f1=float("nan"), roc_auc=float("nan"), trustworthy=False,
                       reasons=("far",), figures={"rmse": 1.5, "mae": 1.0}, method="DLE")
    assert task_health.words("regression", {"rmse": 1.2, "mae": 0.9}, None, guessed, {}) == (
        "Estimated (DLE, without labels): RMSE rose from 1.20 to 1.50 (MAE 0.900 → 1.00); NOT trustworthy on "
        "this batch.")


# --------------------------------------------------------------------------- checks on tiny homes
@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    return task_homes.multiclass_home(tmp_path_factory.mktemp("tiers"))


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    return task_homes.regression_home(tmp_path_factory.mktemp("prices"))


def _check(home: task_homes.TaskHome, frame: pd.DataFrame, name: str, **kw):
    s = home.settings
    return check.check(batches.from_frame(frame, s, name), s, model=home.version, store=False, log=False, **kw)


def test_a_multiclass_check_measures_class_drift_labels_and_estimates(multi: task_homes.TaskHome) -> None:
    calm, shifted = _check(multi, multi.calm, "calm"), _check(multi, multi.prod, "prod")
    assert calm.task == shifted.task == "multiclass"
    # prediction drift: the predicted class's shares (names), and each class's probability
    assert shifted.prediction.kind == "categorical" and shifted.prediction.drift and not calm.prediction.drift
    assert set(shifted.prediction.bins) == {"low", "mid", "high"}
    assert list(shifted.prediction_detail) == ["P(low)", "P(mid)", "P(high)"]
    assert all(f.drift for f in shifted.prediction_detail.values())
    assert not any(f.drift for f in calm.prediction_detail.values())
    # labels: drift of the class shares, and the task's realised figures
    assert shifted.label["drift"] and not calm.label["drift"]
    assert set(calm.realized) >= {"accuracy", "f1_macro", "log_loss"}
    # the estimate: CBPE, trusted on the calm batch and close to the realised figures
    est = calm.estimate
    assert est.method == "CBPE" and est.trustworthy, est.reasons
    assert est.value("accuracy") == pytest.approx(calm.realized["accuracy"], abs=0.05)
    assert calm.estimate_error.keys() == {"accuracy", "f1_macro"}
    assert not shifted.estimate.trustworthy  # x1 outside the training range
    assert calm.words.startswith("Accuracy ") and "macro F1" in calm.words
    assert calm.recommendation.startswith("No action needed")
    assert shifted.recommendation.startswith("Retrain: on the labelled items, realised macro F1")
    out = calm.outputs
    assert out["classes"] == ["low", "mid", "high"] and len(out["predicted_batch"]) == 3
    assert sum(out["actual_batch"]) == pytest.approx(1.0, abs=1e-4)
    # without labels: the estimate and its words, no realised figures
    blind = _check(multi, multi.calm.drop(columns=[multi.settings.target]), "blind")
    assert blind.realized is None and blind.label is None and blind.words.startswith("Estimated (CBPE")


def test_a_regression_check_measures_prediction_drift_coverage_and_estimates(reg: task_homes.TaskHome) -> None:
    calm, shifted = _check(reg, reg.calm, "calm"), _check(reg, reg.prod, "prod")
    assert calm.task == "regression" and calm.prediction.kind == "continuous" and calm.prediction_detail == {}
    assert shifted.prediction.drift and not calm.prediction.drift
    assert shifted.label["drift"] and not calm.label["drift"] and "mean_batch" in calm.label
    assert calm.estimate.method == "DLE" and calm.estimate.trustworthy, calm.estimate.reasons
    for key in ("rmse", "mae"):
        assert calm.estimate.value(key) == pytest.approx(calm.realized[key], rel=0.15), key
    assert calm.estimate.value("interval_coverage") == pytest.approx(calm.realized["interval_coverage"], abs=0.05)
    assert calm.outputs["level"] == 0.9 and calm.outputs["coverage_batch"] == calm.realized["interval_coverage"]
    # the shifted batch: larger errors, fewer targets inside the interval, said in words
    assert shifted.realized["rmse"] > 1.5 * calm.realized["rmse"]
    assert shifted.words.startswith("RMSE rose from") and "fall outside their 90% interval" in shifted.words
    assert not shifted.estimate.trustworthy
    assert any("range the loss model learned from" in r or "outside the training range" in r
               for r in shifted.estimate.reasons)
    assert shifted.verdict["adherence"] == policy.NOT_ADHERENT
    assert any(a.startswith("realised RMSE") for a in shifted.verdict["alarm"])
    # JSON: the report and the command line's object
    json.dumps(shifted.to_dict(), default=str)
    summary = shifted.summary()
    assert summary["task"] == "regression" and summary["estimated_performance"]["method"] == "DLE"
    assert set(summary["realized_performance"]) >= {"rmse", "mae", "r2", "interval_coverage"}
    assert summary["prediction_drift"]["drift"] is True and summary["words"] == shifted.words
    # the MLflow record: the task's figures, the HTML report renders
    rec = run_log.record(shifted, reg.settings)
    assert {"est_rmse", "real_rmse", "est_error_rmse", "real_interval_coverage"} <= set(rec["metrics"])
    assert "RMSE rose from" in rec["artifacts"][run_log.REPORT_HTML]


def test_the_stored_reference_is_reused_and_a_file_read_in_chunks_gives_the_same_report(
        reg: task_homes.TaskHome, tmp_path) -> None:
    s = reg.settings
    whole = _check(reg, reg.prod, "prod")
    assert task_health.reference_path(s, reg.version.version).exists()
    assert task_health.loss_path(s, reg.version.version).exists()
    path = tmp_path / "prod.parquet"
    reg.prod.to_parquet(path, index=False)
    chunked = stream.check_file(path, s, model=reg.version, store=False, log=False, chunk_rows=250)
    assert chunked.realized == pytest.approx(whole.realized)
    assert chunked.estimate.figures == pytest.approx(whole.estimate.figures)
    assert chunked.prediction.psi == pytest.approx(whole.prediction.psi)


def test_a_bad_file_builds_no_loss_model(reg: task_homes.TaskHome, tmp_path) -> None:
    s = reg.settings
    for path in (task_health.reference_path(s, reg.version.version), task_health.loss_path(s, reg.version.version)):
        path.unlink(missing_ok=True)
    bad = reg.prod.assign(size=-5.0)  # outside the definition's domain
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    with pytest.raises(batches.BatchError, match="size"):
        stream.check_file(path, s, model=reg.version, store=False, log=False, chunk_rows=250)
    assert not task_health.reference_path(s, reg.version.version).exists()
    assert not task_health.loss_path(s, reg.version.version).exists()


def test_the_command_line_checks_a_multiclass_batch(multi: task_homes.TaskHome, tmp_path) -> None:
    s = multi.settings
    path = tmp_path / "prod.csv"
    multi.prod.to_csv(path, index=False)
    env = {"WORKBENCH_HOME": str(s.home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "core", "drift", "--batch", str(path), "--dataset", "tiers",
                           "--json", "--no-domain", "--wait-for-mlflow"], capture_output=True, text=True,
                          env=env, cwd=str(task_homes.Path(__file__).resolve().parents[2]), timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["task"] == "multiclass" and out["prediction_drift"]["drift"] is True
    assert set(out["prediction_drift"]["shares_batch"]) == {"low", "mid", "high"}
    assert out["estimated_performance"]["method"] == "CBPE" and "accuracy" in out["estimated_performance"]
    assert out["realized_performance"]["accuracy"] > 0.5 and out["mlflow_run_id"]
    from core.monitoring import history

    past = history.history(s)
    assert "est_f1_macro" in past and past["real_accuracy"].notna().all()


# --------------------------------------------------------------------------- production
def test_production_verdict_per_task(multi: task_homes.TaskHome, reg: task_homes.TaskHome) -> None:
    from core.data import preparation

    for home in (multi, reg):
        s = home.settings
        train = preparation.load_split(s, "train")
        test_out, y_test = adherence.test_outputs(s, home.version)
        for frame, verdict in ((home.calm, policy.ADHERENT), (home.prod, policy.NOT_ADHERENT)):
            b = batches.from_frame(frame, s, "b")
            out = outputs.model_outputs(home.model, b.frame, s.features, s.dataset.categorical_features, home.version)
            a = adherence.task_adherence(out, b.frame[s.target].to_numpy(), test_out, y_test, b.frame, train,
                                         s.dataset, home.version, s.drift)
            assert a.verdict == verdict and a.task == home.version.task, a.text
            table = adherence.metrics_table(a)
            assert table["production"].notna().any() and table["test"].notna().all()
        blind = adherence.task_adherence(out, None, test_out, y_test, b.frame, train, s.dataset, home.version)
        assert blind.verdict == policy.UNKNOWN and "no labels" in blind.text
        if home is multi:
            assert "F1 of high" in set(table["metric"]) and "predicted class shares" in a.text
            assert a.text.splitlines()[2].startswith("Accuracy ")
        else:
            assert "fall outside their 90% interval" in a.text and "RMSE rose from" in a.text


def test_scored_outputs_read_the_columns_apply_writes(multi: task_homes.TaskHome, reg: task_homes.TaskHome) -> None:
    s = multi.settings
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    scored = pd.DataFrame(proba, columns=list(s.dataset.proba_columns.values()))
    assert np.array_equal(outputs.scored_outputs(scored, s.dataset, multi.version), proba)
    triple = pd.DataFrame({"prediction": [1.0], "prediction_lower": [0.5], "prediction_upper": [1.5]})
    assert outputs.scored_outputs(triple, reg.settings.dataset, reg.version).tolist() == [[1.0, 0.5, 1.5]]
    with pytest.raises(outputs.OutputsError, match="prediction_upper"):
        outputs.scored_outputs(triple.drop(columns=["prediction_upper"]), reg.settings.dataset, reg.version)


def test_a_prepared_multiclass_split_reads_as_a_batch_of_labels(multi: task_homes.TaskHome) -> None:
    s = multi.settings
    prod = pd.read_parquet(s.prod_filtered_path)  # class positions, as preparation writes them
    b = batches.from_frame(prod, s, "prod_filtered.parquet", encoded_labels=True)
    assert b.n_labelled == len(prod) and set(np.unique(b.frame[s.target])) <= {0.0, 1.0, 2.0}
    bad = multi.prod.assign(tier=["L", "Q"] * (len(multi.prod) // 2))
    with pytest.raises(batches.BatchError, match=r"tier: values other than its classes \(L, M, H\) or empty"):
        batches.from_frame(bad, s, "bad")  # the task's own words, not a binary target's "0, 1"


# --------------------------------------------------------------------------- retraining
def test_retraining_data_and_gate_per_task(multi: task_homes.TaskHome, reg: task_homes.TaskHome) -> None:
    from core.monitoring import retrain_gate

    s = multi.settings
    full = retraining.plan(batches.from_frame(multi.calm, s, "calm"), s)
    assert full["use"] == "full" and "stratified" in full["reason"] and " low" in full["reason"]
    one_class = multi.calm[multi.calm["tier"] == "H"]
    assert retraining.plan(batches.from_frame(one_class, s, "h"), s)["use"] == "fit_only"
    rd = retraining.assemble(s, [batches.from_frame(multi.calm, s, "calm")])
    assert rd.train[s.target].dtype == "int64" and len(rd.new_holdout) == full["rows_holdout"]
    figures = retraining.evaluate(multi.model, rd, s, None, multi.version)
    assert {"accuracy", "f1_macro", "log_loss"} <= set(figures["new"])
    assert retraining.gate(figures, figures, s.retrain, s.promotion, MULTICLASS).criterion == "log_loss"

    r = reg.settings
    plan = retraining.plan(batches.from_frame(reg.prod, r, "prod"), r)
    assert plan["use"] == "full" and "stratified" not in plan["reason"]
    rd = retraining.assemble(r, [batches.from_frame(reg.prod, r, "prod")])
    assert rd.train[r.target].dtype == "float64"
    interval = retrain_gate.retune_interval(reg.model, rd.train, r, 0.9)
    assert interval["level"] == 0.9 and interval["halfwidth"] > reg.version.interval["halfwidth"]
    champ = retraining.evaluate(reg.model, rd, r, None, reg.version)
    assert {"rmse", "mae", "interval_coverage"} <= set(champ["new"])
    better = {split: {**f, "rmse": f["rmse"] * 0.8} for split, f in champ.items()}
    result = retraining.gate(champ, better, RetrainPolicy(), s.promotion, REGRESSION)
    assert result.criterion == "rmse" and result.promote, result.reason
    assert not retraining.gate(better, champ, RetrainPolicy(), s.promotion, REGRESSION).promote
    # on the old data, a challenger within 1 % of the champion's RMSE passes, 2 % worse does not
    for worse, passes in ((1.009, True), (1.02, False)):
        mixed = {"new": better["new"], "old": {**champ["old"], "rmse": champ["old"]["rmse"] * worse}}
        verdict = retraining.gate(champ, mixed, RetrainPolicy(), s.promotion, REGRESSION)
        assert verdict.promote is passes and "0.01 of the champion's rmse" in verdict.reason, verdict.reason


@pytest.mark.skipif("task" not in inspect.signature(__import__("core.modeling.model_io", fromlist=["x"]).log_model)
                    .parameters, reason="waits for the serving branch: model_io.log_model(task=...) (contract 2)")
def test_a_regression_retraining_registers_a_challenger_with_its_interval(tmp_path) -> None:
    from core.modeling import registry

    home = task_homes.regression_home(tmp_path / "home", n=1200)
    s = home.settings
    result = retraining.retrain(s, [batches.from_frame(home.prod, s, "prod")], home.version)
    assert result.challenger["interval"]["level"] == 0.9 and result.challenger["threshold"] is None
    assert result.decision.split(":")[0] in ("promoted", "rejected") and "rmse" in result.decision
    version = registry.version_info(s, result.challenger["version"])
    assert version.task == "regression" and version.interval["halfwidth"] == pytest.approx(
        result.challenger["interval"]["halfwidth"])
