"""The Drift page's Trends section (issue 32): the inference log checked in chunks from the page,
the chart with the worst feature first, the details of the first drifted chunk; the history of
checks; a failed alert delivery shown."""
from __future__ import annotations

from core.data import preparation
from core.monitoring import alerts
from core.serving import inference_log

PAGE = "pages/6_Drift.py"


def test_the_log_in_chunks_then_the_history_and_a_failed_alert(run_page, tmp_path, monkeypatch):
    from tests.conftest import make_champion_home

    s = make_champion_home(tmp_path)
    calm = preparation.load_split(s, "test").sample(300, random_state=0)
    shifted = preparation.load_split(s, "prod").sample(150, random_state=1)
    for frame in (calm, shifted):  # the inference log's own writer, one row after the other
        for row in frame.loc[:, list(s.features)].to_dict("records"):
            inference_log.append(s, row, proba=0.4, threshold=0.5, model_version="1", latency_ms=1.0, source="http")
    alerts.record(alerts.Delivery(check_id="abc", url="http://127.0.0.1:9", ok=False, attempts=3, status=None,
                                  error="URLError: [Errno 111] Connection refused", at="2026-12-07T22:00:00+00:00",
                                  kind="dataset_drift"), s)
    monkeypatch.setenv("WORKBENCH_ALERT_URL", "http://127.0.0.1:9/hook")

    at = run_page(PAGE, s)
    assert not at.exception
    assert any(sub.value == "Trends" for sub in at.subheader)
    next(n for n in at.number_input if n.label == "Rows to chart (the last N)").set_value(450)
    at.run()
    next(n for n in at.number_input if n.label == "Rows per chunk").set_value(150)
    at.run()
    next(b for b in at.button if b.label == "Check in chunks").click().run()
    assert not at.exception, at.exception
    box = next(b for b in at.selectbox if b.label == "Chunk")
    assert box.value == 2 and len(box.options) == 3  # opens on the first chunk with dataset drift
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset drift"] == "yes" and metrics["Rows"] == "150"
    details = next(d for d in at.dataframe if "mean (chunk)" in d.value.columns)
    assert details.value["drift"].iloc[0]  # worst first: a drifted feature on top
    assert any("Recommendation:" in t.value for t in at.text)
    # nothing of this exploration went to the history (not logged, no alert)
    assert any("No checks yet" in i.value for i in at.info)

    # the failed delivery, with its error, in the Alerts box
    assert any("was not delivered" in e.value and "Connection refused" in e.value for e in at.error)

    at.radio(key="drift_trend_source").set_value("History of checks").run()
    assert not at.exception
    assert any("fewer than two checks" in i.value for i in at.info)
