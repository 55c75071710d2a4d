"""Monitoring (`core/monitoring/`) on the tiny champion: the training reference, drift statistics,
model health, the end-to-end check with its stored batch and MLflow run, the history, the
verdicts, the HTML report and retraining."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.config import DriftThresholds, RetrainPolicy, Settings
from core.data import batch_store, batches, preparation
from core.errors import NotPreparedError
from core.modeling import metrics, registry
from core.modeling import promotion
from core.monitoring import (
    check,
    drift_report,
    health,
    history,
    html,
    policy,
    reference,
    retraining,
    statistics,
)
from core.serving import inference_log
from tests.unit.conftest import FEATURES, TARGET, Lab, register_lr, with_spec

KOBE_WORDS = re.compile(r"\b(shots?|made|missed|kobe)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def frames(lab: Lab) -> dict[str, pd.DataFrame]:
    s = lab.settings
    train = preparation.load_split(s, "train")
    return {"train": train, "test": preparation.load_split(s, "test"), "prod": preparation.load_split(s, "prod"),
            # a large resample of the training rows: the same distribution
            "sample": train.sample(2000, replace=True, random_state=1).reset_index(drop=True)}


# --------------------------------------------------------------------------- the reference
def test_reference_kinds_follow_the_definition(lab: Lab) -> None:
    ref = reference.load_reference(lab.settings)
    assert set(ref.columns) == set(FEATURES)
    assert ref.columns["premium"].kind == "discrete"  # binary: a list of values
    assert ref.columns["usage_hours"].kind == "continuous" and ref.columns["support_calls"].kind == "continuous"
    assert [reference.kind_of(lab.settings.dataset, f) for f in FEATURES] == ["continuous", "continuous", "discrete"]
    assert ref.columns["premium"].categories == (0.0, 1.0) and sum(ref.columns["premium"].category_share) == 1.0
    assert ref.n_rows == lab.prep.train_rows and ref.positive_rate == pytest.approx(lab.prep.positive_rate["train"])


def test_the_reference_is_stored_and_rebuilt_only_when_the_training_file_changes(lab_copy: Settings) -> None:
    s = lab_copy
    ref = reference.load_reference(s)
    path = reference.reference_path(s)
    stamp = path.stat().st_mtime_ns
    assert reference.load_reference(s) == ref and path.stat().st_mtime_ns == stamp
    train = pd.read_parquet(s.train_path)
    train.iloc[: len(train) // 2].to_parquet(s.train_path, index=False)
    rebuilt = reference.load_reference(s)
    assert rebuilt.train_digest != ref.train_digest and rebuilt.n_rows == len(train) // 2
    path.write_text("{not json")
    assert reference.load_reference(s) == rebuilt  # an unreadable reference is rebuilt


def test_without_training_data_there_is_no_reference(tiny: Settings) -> None:
    with pytest.raises(NotPreparedError, match="prepare it first"):
        reference.load_reference(tiny)


def test_grid_counts_puts_values_outside_the_range_aside() -> None:
    counts = reference.grid_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 0.0, 1.0, bins=4)
    assert counts.tolist() == [1, 1, 0, 1, 1, 1]


# --------------------------------------------------------------------------- drift statistics
def test_the_shifted_production_batch_drifts(lab: Lab, frames) -> None:
    s = lab.settings
    stats = statistics.feature_drift(frames["prod"], reference.load_reference(s), s)
    assert stats.drifted == list(FEATURES) and stats.dataset_drift and stats.share_drifted == 1.0
    usage = stats.features["usage_hours"]
    assert usage.kind == "continuous" and usage.psi >= s.drift.psi and usage.mean_batch > usage.mean_ref
    assert usage.out_of_range > 0.05 and usage.batch_outside[1] == pytest.approx(usage.out_of_range)
    premium = stats.features["premium"]
    assert premium.kind == "discrete" and premium.psi is None and premium.js >= s.drift.js
    assert premium.mean_batch == pytest.approx(frames["prod"]["premium"].mean())
    auc = statistics.domain_auc(frames["train"], frames["prod"], FEATURES, s.drift, s.seed)
    assert auc is not None and auc > 0.9


def test_a_sample_of_the_training_data_does_not_drift(lab: Lab, frames) -> None:
    s = lab.settings
    stats = statistics.feature_drift(frames["sample"], reference.load_reference(s), s)
    assert stats.drifted == [] and not stats.dataset_drift
    assert all(f.out_of_range == 0.0 for f in stats.features.values())
    auc = statistics.domain_auc(frames["train"], frames["sample"], FEATURES, s.drift, s.seed)
    assert auc is not None and auc < 0.65
    assert statistics.domain_auc(frames["train"], frames["sample"].head(10), FEATURES, s.drift) is None


def test_label_drift_and_the_effect_sizes_basics() -> None:
    t = DriftThresholds()
    same = statistics.label_drift(np.array([0, 1] * 50), 0.5, 1000, t)
    assert same["js"] == pytest.approx(0.0, abs=1e-9) and not same["drift"] and same["n_labelled"] == 100
    shifted = statistics.label_drift(np.array([1] * 90 + [0] * 10), 0.5, 1000, t)
    assert shifted["drift"] and shifted["positive_rate_batch"] == 0.9
    # natural logarithm, as scipy and Evidently: disjoint shares are sqrt(ln 2) apart
    assert statistics.js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.sqrt(np.log(2)))
    assert statistics.psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    ref = reference.column_reference(np.array([0.0, 1.0, 1.0, 1.0]), "discrete")
    other = statistics.column_drift("flag", ref, np.array([0.0, 2.0, 2.0, 1.0]), t)
    assert other.batch_outside[0] == 0.5 and other.out_of_range == 0.5  # the unknown value 2


# --------------------------------------------------------------------------- model health
def test_reliability_and_the_expected_calibration_error() -> None:
    r = health.reliability(np.array([0, 1, 1, 1]), np.array([0.02, 0.08, 0.95, 0.97]), bins=10)
    assert r.count == (2, 2) and r.predicted == (0.05, 0.96) and r.observed == (0.5, 1.0)
    assert r.ece == pytest.approx((2 * 0.45 + 2 * 0.04) / 4)


def test_expected_metrics_with_certain_labels_are_the_realised_ones() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.4).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    est = health.expected_metrics(p, y, 0.5)
    real = metrics.from_proba(y, p, 0.5)
    assert est["accuracy"] == pytest.approx(real["accuracy"]) and est["f1"] == pytest.approx(real["f1"])
    assert est["roc_auc"] == pytest.approx(real["roc_auc"])
    assert np.isnan(health.weighted_auc(p, np.ones_like(p)))


def test_trust_reasons(lab: Lab) -> None:
    s = lab.settings
    assert policy.trust({"usage_hours": 0.01}, 0.6, s) == ()
    reasons = policy.trust({"usage_hours": 0.5, "premium": 0.0}, 0.95, s)
    assert len(reasons) == 2 and reasons[0].startswith("50.0% of rows have usage_hours outside")
    assert "ROC-AUC 0.950" in reasons[1]


# --------------------------------------------------------------------------- the end-to-end check
@pytest.fixture(scope="module")
def checks(lab: Lab, frames, tmp_path_factory: pytest.TempPathFactory) -> dict[str, drift_report.DriftReport]:
    """Three checks on the lab's champion: a training sample (neither stored nor logged), the
    inference log, then the production batch from a parquet file (stored and logged, the newest)."""
    s = lab.settings
    sample = check.check(batches.from_frame(frames["sample"], s, "training <sample> & co"), s, store=False, log=False, model=registry.champion(s))
    for i, row in frames["train"].head(40).iterrows():
        inference_log.append(s, row[list(FEATURES)].to_dict(), 0.5, 0.5, lab.version, 1.0, "unit")
    logged = check.check_inference_log(s, 40, model=registry.champion(s))
    path = tmp_path_factory.mktemp("batches") / "online_week1.parquet"
    frames["prod"].to_parquet(path, index=False)
    prod = check.check(batches.read_batch(path, s), s, source="unit", model=registry.champion(s))
    return {"sample": sample, "log": logged, "prod": prod}


def test_check_finds_drift_on_production_and_says_what_to_do(checks, lab: Lab) -> None:
    r = checks["prod"]
    assert r.dataset_drift and r.n_drifted == 3 and r.n_features == 3 and r.model_version == lab.version
    assert r.domain_auc is not None and r.domain_auc > 0.9
    assert not r.estimate.trustworthy and any("usage_hours" in x for x in r.estimate.reasons)
    assert r.realized is not None and set(r.estimate_error) == {"accuracy", "f1", "roc_auc"}
    assert r.label is not None and r.label["n_labelled"] == lab.prep.prod_rows
    assert r.prediction.name == "P(churned)"
    assert "customers" in r.recommendation and not KOBE_WORDS.search(r.recommendation)
    summary = r.summary()
    assert set(summary["features"]) == set(FEATURES) and "js" in summary["features"]["premium"]
    assert "psi" in summary["features"]["usage_hours"] and summary["batch"]["name"] == "online_week1.parquet"
    assert json.loads(json.dumps(r.to_dict(), default=str))["n_drifted"] == 3


def test_check_stores_the_batch_and_logs_a_run(checks, lab: Lab) -> None:
    r, s = checks["prod"], lab.settings
    stored = Path(r.stored_path)
    assert stored.parent == s.batches_dir and stored.suffix == ".parquet"
    assert batch_store.find(s, r.batch["digest"]).path == r.stored_path
    run = tracking.client(s).get_run(r.mlflow_run_id)
    assert run.info.run_name == drift_report.RUN_NAME and run.data.params["source"] == "unit"
    assert run.data.tags["dataset_drift"] == "true"
    assert set(run.data.tags["drifted_features"].split(",")) == set(FEATURES)
    assert run.data.metrics["n_drifted"] == 3 and "js_premium" in run.data.metrics
    assert "wasserstein_usage_hours" in run.data.metrics and "real_f1" in run.data.metrics
    names = {a.path for a in tracking.client(s).list_artifacts(r.mlflow_run_id)}
    assert names == {"drift_report.json", "drift_report.html"}


def test_a_check_that_neither_stores_nor_logs(checks, lab: Lab) -> None:
    r = checks["sample"]
    assert r.stored_path is None and r.mlflow_run_id is None
    assert not r.dataset_drift and r.stats.drifted == [] and r.estimate.trustworthy
    assert batch_store.find(lab.settings, r.batch["digest"]) is None


def test_the_inference_log_is_checked_like_a_batch(checks, lab: Lab) -> None:
    r = checks["log"]
    assert r.source == "inference_log" and r.batch["n_rows"] == 40 and r.batch["n_labelled"] == 0
    assert r.realized is None and r.label is None and r.mlflow_run_id is not None and r.stored_path is not None


def test_the_champion_and_its_reference_are_cached(checks, lab: Lab) -> None:
    s = lab.settings
    info = registry.champion(s)
    cached = check.model_cache_path(s, info.version, info.run_id)
    assert cached.is_file()
    version, model = check.champion_model(s, registry.require_champion(s))
    test = preparation.load_split(s, "test")
    np.testing.assert_allclose(model.predict_proba(test[list(FEATURES)].astype(float)),
                               lab.model.predict_proba(test[list(FEATURES)].astype(float)))
    mref = health.load_model_reference(s, model, version, registry.require_champion(s).decision_threshold)
    assert health.model_reference_path(s, version).is_file() and mref.n_test == lab.prep.test_rows
    p = model.predict_proba(test[list(FEATURES)].astype(float))[:, 1]
    assert mref.test_metrics == pytest.approx(metrics.from_proba(test[TARGET], p, registry.require_champion(s).decision_threshold))
    assert checks["prod"].test_metrics == pytest.approx(mref.test_metrics)


def test_display_rows(checks) -> None:
    r = checks["prod"]
    rows = drift_report.feature_rows(r)
    worst_first = [name for name, _, _ in drift_report.by_severity(r)]  # the page's chart and "Distribution of"
    assert [x["feature"] for x in rows] == worst_first and sorted(worst_first) == sorted(FEATURES)
    assert {x["feature"]: x["kind"] for x in rows}["premium"] == "discrete"
    turned = dataclasses.replace(r, stats=dataclasses.replace(  # the definition's order does not matter
        r.stats, features=dict(reversed(list(r.stats.features.items())))))
    assert [x["feature"] for x in drift_report.feature_rows(turned)] == worst_first
    health_rows = drift_report.health_rows(r)
    assert [x["metric"] for x in health_rows] == ["accuracy", "F1", "ROC-AUC"]
    assert health_rows[1]["realised (labels)"] == r.realized["f1"]


# --------------------------------------------------------------------------- history
def test_history_reads_the_checks_back(checks, lab: Lab) -> None:
    s = lab.settings
    last = history.last_check(s)
    prod = checks["prod"]
    assert last is not None and last.run_id == prod.mlflow_run_id
    assert last.batch_name == "online_week1.parquet" and last.dataset_drift and last.n_drifted == 3
    assert set(last.drifted_features) == set(FEATURES) and last.recommendation == prod.recommendation
    assert last.real_f1 == pytest.approx(prod.realized["f1"]) and last.trustworthy is False
    h = history.history(s)
    assert h["run_id"].tolist()[-2:] == [checks["log"].mlflow_run_id, prod.mlflow_run_id]  # oldest first
    assert {"effect_usage_hours", "effect_support_calls", "effect_premium"} <= set(h.columns)
    row = h.set_index("run_id").loc[prod.mlflow_run_id]
    assert row["effect_premium"] == pytest.approx(prod.stats.features["premium"].js)
    assert row["effect_usage_hours"] == pytest.approx(prod.stats.features["usage_hours"].wasserstein)


def test_no_history_before_any_check(lab: Lab) -> None:
    s = with_spec(lab.settings, experiment="tiny-no-checks")
    assert history.last_check(s) is None
    assert history.history(s).empty


# --------------------------------------------------------------------------- verdicts
def _estimate(f1: float, auc: float = 0.8, reasons: tuple[str, ...] = ()) -> health.Estimate:
    return health.Estimate(accuracy=0.8, f1=f1, roc_auc=auc, trustworthy=not reasons, reasons=reasons)


@pytest.fixture(scope="module")
def calm(checks) -> drift_report.DriftReport:
    return checks["sample"]


def test_recommend_covers_each_case(calm, lab: Lab) -> None:
    t = lab.settings.drift
    test = {"f1": 0.75, "roc_auc": 0.8}

    def say(est, real=None, drift=(False, ()), drifted=(), oor=None) -> str:
        return policy.judge(test=test, realized=real, out_of_range=oor or {}, categorical=(), t=t, estimate=est,
                            drift=drift, drifted=drifted, rows_noun="customers").recommendation

    assert say(_estimate(0.74), {"f1": 0.6, "roc_auc": 0.8}).startswith("Retrain: on the labelled customers")
    untrusted = say(_estimate(0.74, reasons=("90% of rows have usage_hours outside",)))
    assert untrusted.startswith("Do not trust") and "these customers" in untrusted and "usage_hours" in untrusted
    assert say(_estimate(0.6)).startswith("Plan a retrain")
    watch = say(_estimate(0.74), drift=(True, ("3 of 3 features drifted",)),
                drifted=("usage_hours", "support_calls", "premium"))
    assert watch.startswith("Watch the next batches") and "usage_hours, support_calls, premium" in watch
    assert say(_estimate(0.74)).startswith("No action needed")
    covered = say(None, {"f1": 0.75, "roc_auc": 0.8}, oor={"usage_hours": 0.2})
    assert covered.startswith("Retrain on data that covers these customers")
    # only "no action needed" is calm news (the Drift page shows it green, everything else as a warning)
    def calm_news(est, **kw) -> bool:
        return policy.judge(test=test, realized=None, out_of_range={}, categorical=(), t=t, estimate=est,
                            rows_noun="customers", **kw).calm

    assert calm_news(_estimate(0.74))
    assert not calm_news(_estimate(0.6)) and not calm_news(_estimate(0.74, reasons=("far",)))
    assert not calm_news(_estimate(0.74), drift=(True, ("3 of 3 features drifted",)), drifted=("usage_hours",))


def test_alarm_rings_for_the_shifted_batch_only(checks, calm, lab: Lab) -> None:
    s = lab.settings
    reasons = policy.alarm(checks["prod"], s)
    assert reasons[0].startswith("dataset drift (3 of 3 features drifted (limit 50% of them)")
    assert reasons[-1].startswith("rows outside the training range: usage_hours")
    quiet = dataclasses.replace(calm, realized=None, estimate=_estimate(calm.test_metrics["f1"]))
    assert policy.alarm(quiet, s) == []
    dropped = dataclasses.replace(quiet, estimate=_estimate(calm.test_metrics["f1"] - 0.2))
    assert policy.alarm(dropped, s) == [f"estimated F1 {calm.test_metrics['f1'] - 0.2:.3f} vs "
                                        f"{calm.test_metrics['f1']:.3f} on the test split"]


def test_the_html_report_is_standalone_and_escaped(checks) -> None:
    page = html.report_html(checks["prod"])
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "Verdict: dataset drift" in page and all(f"<td>{f}</td>" in page for f in FEATURES)
    assert "Mean P(churned)" in page and "The estimate cannot be trusted" in page
    calm = html.report_html(checks["sample"])
    assert "training &lt;sample&gt; &amp; co" in calm and "<sample>" not in calm
    assert "Verdict: no dataset drift" in calm and "The estimate is trustworthy" in calm


def _positions(text: str, marks: list[str]) -> list[int]:
    found = [text.find(m) for m in marks]
    assert -1 not in found, [m for m, at in zip(marks, found) if at < 0]
    return found


@pytest.mark.parametrize("which", ["prod", "sample"])
def test_the_html_report_lists_the_features_worst_first(checks, which: str) -> None:
    """The effect bars, the table and the distributions in the Drift page's order, whatever the
    definition's order (here turned around so that it cannot pass by chance)."""
    r = checks[which]
    turned = dataclasses.replace(r, stats=dataclasses.replace(
        r.stats, features=dict(reversed(list(r.stats.features.items())))))
    worst_first = [name for name, _, _ in drift_report.by_severity(turned)]
    assert worst_first == [name for name, _, _ in drift_report.by_severity(r)]
    assert list(turned.stats.features) != worst_first or len(set(worst_first)) < 2
    page = html.report_html(turned)
    bars_at = page.index('aria-label="Drift per feature"')
    table_at, charts_at = page.index("<h2>Features"), page.index("<h2>Distributions")
    bars = _positions(page[bars_at:table_at], [f">{name}</text>" for name in worst_first])
    table = _positions(page[table_at:charts_at], [f"<tr><td>{name}</td>" for name in worst_first])
    charts = _positions(page[charts_at:], [f'aria-label="{name}: share of rows"' for name in worst_first])
    assert bars == sorted(bars) and table == sorted(table) and charts == sorted(charts)


def test_the_html_reports_effect_bars_leave_room_for_long_names_and_labels(checks) -> None:
    """A 30-character name was cut at the chart's left edge, a capped bar's label at its right."""
    from core.monitoring import svg

    r = checks["prod"]
    long = "number_customer_service_calls_"
    renamed = {(long if name == r.stats.drifted[0] else name): dataclasses.replace(
        f, name=long if name == r.stats.drifted[0] else name) for name, f in r.stats.features.items()}
    wide = dataclasses.replace(r, stats=dataclasses.replace(r.stats, features=renamed))
    drawing = svg.effect_bars(wide)
    width = float(re.search(r'<svg width="([0-9.]+)"', drawing).group(1))
    bars_x = {float(x) for x in re.findall(r'<rect x="([0-9.]+)"', drawing)}
    assert len(bars_x) == 1 and next(iter(bars_x)) >= 6.0 * len(long)  # the name fits on the left
    for x, anchor, text in re.findall(r'<text x="([0-9.]+)" y="[0-9.]+" text-anchor="(\w+)"[^>]*>([^<]*)</text>',
                                      drawing):
        if anchor == "start":  # every label drawn to the right of its bar ends inside the drawing
            assert float(x) + 6.0 * len(text) <= width + 1, text  # about 6 px a character at 11 px


# --------------------------------------------------------------------------- retraining
def test_forecast_and_gate() -> None:
    assert retraining.forecast_f1([0.8], 5) is None
    assert retraining.forecast_f1([0.8, 0.7, float("nan"), 0.6], 5) == pytest.approx(0.5)
    policy_ = RetrainPolicy(criterion="log_loss", tolerance=0.01)
    champ = {"old": {"log_loss": 0.50}, "new": {"log_loss": 0.70}}
    assert retraining.gate(champ, {"old": {"log_loss": 0.505}, "new": {"log_loss": 0.60}}, policy_).promote
    worse_old = retraining.gate(champ, {"old": {"log_loss": 0.60}, "new": {"log_loss": 0.60}}, policy_)
    assert not worse_old.promote and "worse on the old test data" in worse_old.reason
    no_gain = retraining.gate(champ, {"old": {"log_loss": 0.40}, "new": {"log_loss": 0.70}}, policy_)
    assert not no_gain.promote and "not better" in no_gain.reason
    auc = RetrainPolicy(criterion="roc_auc")
    assert retraining.gate({"old": {"roc_auc": 0.8}, "new": {"roc_auc": 0.6}},
                           {"old": {"roc_auc": 0.8}, "new": {"roc_auc": 0.7}}, auc).promote


@pytest.fixture(scope="module")
def retrain_home(lab: Lab) -> Settings:
    """The lab's data with a champion of its own (another model name and experiment)."""
    s = with_spec(lab.settings, model_name="tiny-retrain-model", experiment="tiny-retrain-experiment")
    version, _ = register_lr(s, run_name="retrain-fixture")
    promotion.promote(s, version)
    return s


@pytest.fixture(scope="module")
def prod_batch(lab: Lab, frames) -> batches.Batch:
    return batches.from_frame(frames["prod"], lab.settings, "online labelled")


def test_the_policy_decides_from_new_labelled_rows(retrain_home: Settings, prod_batch, frames) -> None:
    s = retrain_home
    unlabelled = batches.from_frame(frames["prod"].drop(columns=[TARGET]), s, "online unlabelled")
    no = retraining.decide(s, [unlabelled])
    assert not no.needed and no.reason.startswith("no new labelled production rows")
    first = retraining.decide(s, [prod_batch, unlabelled])
    assert first.needed and first.new_labelled_rows == len(frames["prod"]) and "no earlier retraining" in first.reason
    many = retraining.decide(s.replace(retrain=RetrainPolicy(min_new_rows=100)), [prod_batch])
    assert many.needed and many.reason.startswith(f"{len(frames['prod']):,} new labelled rows")


def test_retraining_needs_labels(retrain_home: Settings, frames) -> None:
    unlabelled = batches.from_frame(frames["prod"].drop(columns=[TARGET]), retrain_home, "online unlabelled")
    with pytest.raises(retraining.RetrainInputError, match="labelled rows"):
        retraining.retrain(retrain_home, [unlabelled], model=registry.champion(retrain_home))


def test_only_one_retraining_at_a_time(retrain_home: Settings, prod_batch) -> None:
    with retraining.exclusive(retrain_home):
        with pytest.raises(retraining.RetrainBusyError):
            retraining.retrain(retrain_home, [prod_batch], model=registry.champion(retrain_home))


def test_retrain_gates_the_challenger_and_is_idempotent(retrain_home: Settings, prod_batch, lab: Lab) -> None:
    s = retrain_home
    before = registry.champion(s).version
    result = retraining.retrain_if_needed(s, [prod_batch], model=registry.champion(s))
    assert result.needed and result.batches == ["online labelled"]
    challenger = result.challenger["version"]
    assert registry.alias_version(s, registry.CHALLENGER).version == challenger != before
    assert registry.champion(s).version == (challenger if result.promoted else before)
    assert result.decision.startswith("promoted" if result.promoted else "rejected")
    run = tracking.client(s).get_run(result.mlflow_run_id).data
    assert run.tags["decision"] == ("promoted" if result.promoted else "rejected")
    assert run.params["batch_digests"] == prod_batch.digest
    assert int(run.params["rows_new_holdout"]) + int(run.params["rows_train"]) == (
        lab.prep.train_rows + prod_batch.n_labelled)
    rows = retraining.comparison_rows(result)
    assert {r["held-out set"] for r in rows} == {"new data (batch held-out)", "old data (dev test)"}
    again = retraining.retrain_if_needed(s, [prod_batch], model=registry.champion(s))
    assert not again.needed and again.mlflow_run_id is None and "no new labelled" in again.reason
    assert registry.champion(lab.settings).version == lab.version  # the lab's champion untouched

