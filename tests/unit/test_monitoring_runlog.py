"""The champion read without MLflow, and the queue of `Monitoramento` runs the command line logs
after its output (`core/monitoring/run_log.py`): a queued check is in the history at once, a
drain logs it once, and a drain killed half-way is repaired by the next one."""
from __future__ import annotations

import json

import pandas as pd

from core import tracking
from core.data import batches, preparation
from core.modeling import registry
from core.monitoring import champion, check, history, run_log
from core.monitoring.drift_report import RUN_NAME
from tests.unit.conftest import Lab, with_spec


def test_the_champion_read_from_the_store_is_the_one_mlflows_client_reads(lab: Lab, monkeypatch) -> None:
    """The registry's two paths (SQLite tables without MLflow, MLflow's client) give one value."""
    s = lab.settings
    fast = registry.champion(s)
    everything = registry.versions(s)
    monkeypatch.setattr(registry, "_sqlite_file", lambda settings: None)  # as for a tracking server
    slow = registry.champion(s)
    assert fast is not None and fast == slow
    assert (fast.task, fast.classes, fast.dataset) == ("binary", ("stayed", "churned"), s.dataset.name)
    assert registry.versions(s) == everything and [v.version for v in everything] == sorted(
        (v.version for v in everything), key=int, reverse=True)
    assert fast.inputs(s.dataset).features == s.dataset.with_feature_set(fast.feature_set).features
    nobody = with_spec(s, model_name="tiny-nobody-model")
    monkeypatch.undo()
    assert registry.champion(nobody) is None and registry.versions(nobody) == []


def _by_check(s, check_id: str) -> list:
    c = tracking.client(s)
    return c.search_runs([tracking.use(s)], filter_string=f"tags.`{run_log.CHECK_ID_TAG}` = '{check_id}'")


def test_a_queued_check_is_in_the_history_then_logged_once(lab: Lab) -> None:
    s = with_spec(lab.settings, experiment="tiny-queue-experiment")
    prod = preparation.load_split(s, "prod")
    r = check.check(batches.from_frame(prod, s, "queued prod"), s, store=False, log="queue", domain=False, model=registry.champion(s))
    assert r.mlflow_pending and r.mlflow_run_id is None and len(r.check_id) == 32
    assert r.summary()["mlflow_pending"] is True and r.summary()["check_id"] == r.check_id
    last = history.last_check(s)  # seen before MLflow has it
    assert last is not None and last.mlflow_pending and last.run_id == "" and last.batch_name == "queued prod"
    # a drain killed after creating the run: the next one deletes that run and logs the check again
    c = tracking.client(s)
    half = c.create_run(tracking.use(s), run_name=RUN_NAME, tags={run_log.CHECK_ID_TAG: r.check_id}).info.run_id
    ids = run_log.drain(s)
    assert len(ids) == 1 and ids[0] != half and c.get_run(half).info.lifecycle_stage == "deleted"
    assert run_log.queued(s) == [] and [x.info.run_id for x in _by_check(s, r.check_id)] == ids
    logged = c.get_run(ids[0])
    assert logged.info.status == "FINISHED" and logged.data.params["batch_name"] == "queued prod"
    assert logged.info.start_time == history.history(s).iloc[-1]["time"].value // 1_000_000
    path = c.download_artifacts(ids[0], run_log.REPORT_JSON)
    assert json.loads(open(path).read())["mlflow_run_id"] == ids[0]  # the placeholder replaced
    h = history.history(s)
    assert h["run_id"].tolist().count(ids[0]) == 1 and not h["mlflow_pending"].any()
    # killed after the run finished, before its file went: the file goes, no second run
    run_log.enqueue(run_log.record(r, s), s)
    assert run_log.drain(s) == ids and run_log.queued(s) == [] and len(_by_check(s, r.check_id)) == 1


def test_a_record_of_another_store_waits_for_it(lab: Lab, tmp_path) -> None:
    s = with_spec(lab.settings, experiment="tiny-queue-experiment")
    r = check.check(batches.from_frame(preparation.load_split(s, "test").head(200), s, "elsewhere"), s,
                    store=False, log=False, domain=False, model=registry.champion(s))
    rec = {**run_log.record(r, s), "tracking_uri": f"sqlite:///{tmp_path / 'other.db'}"}
    path = run_log.enqueue(rec, s)
    try:
        assert run_log.queued(s) == [] and run_log.drain(s) == [] and path.exists()
        assert all(isinstance(t, pd.Timestamp) for t in history.history(s)["time"])
    finally:
        path.unlink()
