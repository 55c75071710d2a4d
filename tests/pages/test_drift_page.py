"""Drift page: empty states, and a checked batch rendered from the session."""
from __future__ import annotations

from core.modeling import registry

from core.data import batches
from core.monitoring import check, drift_report, history
from ui import session_keys

PAGE = "pages/6_Drift.py"


def test_without_prepared_data_the_page_says_what_to_do(run_page, settings):
    at = run_page(PAGE, settings)
    assert not at.exception
    assert "prepare it on the Data page" in at.info[0].value


def test_with_a_champion_the_page_asks_for_a_batch(run_page, champion_settings):
    at = run_page(PAGE, champion_settings)
    assert not at.exception
    assert any("Upload a batch" in i.value for i in at.info)
    assert at.title[0].value == "Drift: Kobe Bryant shots"


def test_a_checked_batch_shows_drift_health_and_trust(run_page, champion_settings):
    s = champion_settings
    report = check.check(batches.read_batch(s.raw_prod, s), s, store=False, log=False, model=registry.champion(s))
    at = run_page(PAGE, s, state={session_keys.DRIFT_REPORT: report, session_keys.DRIFT_CHECKED_ID: "x"})
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset drift"] == "yes" and metrics["Drifted features"] == "4 of 6"
    assert any("can't be trusted" in e.value for e in at.error)
    assert any("Recommendation" in w.value for w in at.warning)
    # the rules that fired and every statistic's definition are on the page
    assert any(c.value.startswith("Dataset drift: 4 of 6 features drifted") for c in at.caption)
    assert any(e.label.startswith("How each statistic is defined") for e in at.expander)
    # the distribution opens on the most drifted feature, the box lists them worst first
    box = next(b for b in at.selectbox if b.label == "Distribution of")
    assert box.value == drift_report.most_drifted(report)
    assert list(box.options) == [name for name, _, _ in drift_report.by_severity(report)]


def test_alarm_leads_in_one_click_to_a_gated_challenger(run_page, tmp_path):
    from core.modeling import promotion, registry
    from tests.conftest import make_champion_home

    s = make_champion_home(tmp_path)  # its own registry: this test promotes a new champion
    before = registry.champion(s).version
    report = check.check(batches.read_batch(s.raw_prod, s), s, model=registry.champion(s))  # stored, with labels
    # the page's dedupe: the same content checked by the same version is found (another is not)
    found = history.check_of_batch(s, report.batch["digest"], report.model_version)
    assert found is not None and found.run_id == report.mlflow_run_id
    assert history.check_of_batch(s, "0" * 64, report.model_version) is None
    assert history.check_of_batch(s, report.batch["digest"], "999") is None
    assert history.check_of_batch(s, "x' or 1=1 --", report.model_version) is None  # never put in a filter
    at = run_page(PAGE, s, state={session_keys.DRIFT_REPORT: report, session_keys.DRIFT_CHECKED_ID: "x"})
    assert not at.exception
    assert any("Retraining alarm" in m.value for m in at.markdown)
    button = next(b for b in at.button if b.label == "Retrain with this batch's labels")
    button.click().run()
    assert not at.exception
    assert any("promoted" in m.value for m in at.success), [m.value for m in at.warning]
    assert registry.champion(s).version != before
    assert registry.alias_version(s, "previous").version == before


def test_a_feature_named_like_html_is_checked_and_logged(run_page, tmp_path, monkeypatch):
    """Issue 28 (5): a column named `<img src=x onerror=alert(1)>` no longer crashes the page: the
    check reaches MLflow under a key MLflow accepts and the history reads it back by its name."""
    from core import catalog
    from core.config import Settings
    from core.data import dataset_store, preparation
    from core.modeling import promotion, registry
    from core.serving import inference_log
    from tests.unit.conftest import register_lr
    from tests.unit.test_hostile_names import HOSTILE, _hostile_table

    home = tmp_path / "home"
    monkeypatch.delenv("WORKBENCH_DATASET", raising=False)
    table = _hostile_table()
    dataset_store.add(home, table, "odd", "churn", features=["usage", HOSTILE], prod_where="year >= 2024")
    catalog.set_active(home, "odd")
    s = Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=catalog.find("odd", [catalog.user_dir(home)]))
    preparation.prepare(s)
    promotion.promote(s, register_lr(s)[0])
    for _, row in table[table["year"] >= 2024].head(30).iterrows():
        inference_log.append(s, row.to_dict(), proba=0.4, threshold=0.5, model_version="1", latency_ms=2.0)
    at = run_page(PAGE, s)
    assert not at.exception
    next(b for b in at.button if b.label == "Check the inference log").click().run()
    assert not at.exception, at.exception
    runs = history.history(s)
    assert len(runs) == 1 and f"effect_{HOSTILE}" in runs.columns and not runs["mlflow_pending"].any()


def test_the_inference_log_is_counted_in_rows_and_requests(run_page, tmp_path):
    """Issue 30: "102 requests logged" were 3 requests and 102 rows (issue 28 item 9)."""
    from tests.conftest import make_champion_home
    from tests.unit.test_serving import _log_requests

    s = make_champion_home(tmp_path / "home")
    _log_requests(s, [100, 1, 1])
    at = run_page(PAGE, s)
    assert not at.exception
    assert any("102 rows logged from 3 requests" in m.value for m in at.markdown)
    assert not any("requests logged" in m.value for m in at.markdown)
    labels = [n.label for n in at.number_input]  # the check's box first; the trends' own boxes after it
    assert labels[0] == "Last N rows" and labels.count("Last N rows") == 1
