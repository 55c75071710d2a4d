"""The Drift page's "Trends" section: each feature's drift and the model's estimate per chunk of
the inference log, or per check of the history, with their thresholds (`core.monitoring.trends`,
`core.charts.trends`); a chunk clicked (or picked) opens its details. Also the alerts sent lately
(`core.monitoring.alerts`), failures first in view."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.charts import trends as trend_charts
from core.data.batches import BatchError
from core.monitoring import alerts, chunks, trends
from core.serving import inference_log
from ui import progress
from ui.text import md

TREND_REPORT = "drift_trend_report"  # the last chunked check of the log (session state)
SOURCES = ("Inference log, in chunks", "History of checks")


def show(base: Any, settings: Any, champion: Any, past: pd.DataFrame, report: Any = None, min_logged: int = 20) -> None:
    """The section: a source (the log in chunks, or the history of checks), the trend chart and
    the details of the chunk clicked; `report`: the check shown above (its test figures give the
    estimate's line on the history)."""
    st.subheader("Trends")
    st.caption("Each feature's drift statistic and the model's figure per chunk (or per check), against "
               "their thresholds (dashed); red points fired, shaded columns had dataset drift. Click a point "
               "to open its chunk.")
    source = st.radio("Over", SOURCES, horizontal=True, key="drift_trend_source")
    if source == SOURCES[1]:
        _history(settings, champion, past, report)
        return
    n_logged = inference_log.count(settings)
    if n_logged < min_logged:
        st.info(f"The inference log holds {n_logged} rows: a trend needs at least {min_logged}. Send "
                f"{md(settings.dataset.rows_noun)} from the Serve page (or `python -m core predict`).")
        return
    c1, c2, c3, c4 = st.columns([1.2, 1.2, 1.2, 1])
    n = c1.number_input("Rows to chart (the last N)", min_value=min_logged, max_value=max(min_logged, min(n_logged, 1_000_000)),
                        value=min(n_logged, 5000), step=500, key="drift_trend_rows")
    by = c2.selectbox("Chunks by", ("rows", "request time"), key="drift_trend_by")
    if by == "rows":
        size = c3.number_input("Rows per chunk", min_value=10, max_value=1_000_000, value=max(10, int(n) // 8),
                               step=50, key="drift_trend_size")
        chunking = chunks.Chunking(size=int(size))
    else:
        period = c3.selectbox("Period", ("15m", "1h", "6h", "1d"), index=1, key="drift_trend_period")
        chunking = chunks.Chunking(period=period)
    c4.write("")
    if c4.button("Check in chunks", key="drift_trend_run",
                 help="Checks the rows chunk by chunk (not stored, not logged to MLflow, no domain classifier)."):
        try:
            st.session_state[TREND_REPORT] = progress.run_with_progress(
                lambda on_progress: trends.check_log(base, champion, int(n), chunking, on_progress))
        except BatchError as err:
            st.error(md(err))
    chunked = st.session_state.get(TREND_REPORT)
    if chunked is None or not chunked.chunks:
        st.info("Pick the rows and the chunks, then check them.")
        return
    st.caption(f"{md(chunked.batch['name'])}: {len(chunked.chunks)} chunks, model version {chunked.model_version}.")
    trend = trends.from_chunks(chunked.chunks, chunked.task, chunked.test_metrics, settings.drift)
    event = st.plotly_chart(trend_charts.trend_chart(trend), width="stretch", on_select="rerun",
                            selection_mode="points", key="drift_trend_chart")
    _details(chunked.chunks, trend, trend_charts.selected_point(event))


def _details(found: tuple, trend: trends.Trend, clicked: int | None) -> None:
    """The chunk clicked (else the first with dataset drift, else the last): its verdict and features."""
    default = clicked if clicked is not None else next(
        (i for i, d in enumerate(trend.dataset_drift) if d), len(found) - 1)
    i = st.selectbox("Chunk", range(len(found)), index=default, format_func=lambda k: trend.labels[k],
                     key=f"drift_trend_chunk_{clicked}")
    c = found[i]
    with st.container(border=True):
        cols = st.columns(4)
        cols[0].metric("Rows", f"{c.rows:,}")
        cols[1].metric("Dataset drift", "yes" if c.dataset_drift else "no")
        cols[2].metric("Drifted features", f"{len(c.drifted)} of {len(c.features)}")
        est = trend.estimate
        cols[3].metric(f"{est.name} ({est.kinds[i]})" if est and est.kinds else "estimate",
                       "n/a" if est is None or est.values[i] is None else f"{est.values[i]:.4g}")
        st.text(trend.bounds[i])
        st.text("Recommendation: " + str(c.verdict.get("recommendation", "")))
        if c.alarm:
            st.text("Alarm: " + "; ".join(c.alarm))
        number = st.column_config.NumberColumn
        st.dataframe(c.feature_rows(), hide_index=True, width="stretch",
                     column_config={k: number(format="%.3f") for k in
                                    ("PSI", "Wasserstein / σ", "JS beyond chance", "mean (training)", "mean (chunk)")}
                     | {"outside training range": number(format="percent"),
                        "p-value (info only)": number(format="%.2g")})


def _history(settings: Any, champion: Any, past: pd.DataFrame, report: Any) -> None:
    if len(past) < 2:
        st.info("The history holds fewer than two checks: every check adds a point.")
        return
    test = report.test_metrics if report is not None and report.model_version == champion.version else {}
    trend = trends.from_history(past, settings.dataset, champion.task, test, settings.drift)
    event = st.plotly_chart(trend_charts.trend_chart(trend), width="stretch", on_select="rerun",
                            selection_mode="points", key="drift_history_trend")
    i = trend_charts.selected_point(event)
    if i is not None:
        row = past.reset_index(drop=True).iloc[i]
        st.text(f"Check of {row['batch']} at {trend.labels[i]} UTC · model version {row['model_version']} · "
                f"dataset drift: {'yes' if row['dataset_drift'] else 'no'} · MLflow run {row['run_id'] or '(queued)'}")


def show_alerts(settings: Any) -> None:
    """The alerts sent lately and whether they arrived (nothing when no receiver is set and none was sent)."""
    sent = alerts.recent(settings)
    if not settings.alert_urls and not sent:
        return
    failed = [a for a in sent if not a["ok"]]
    label = f"Alerts ({len(settings.alert_urls)} receiver(s) set" + (f", {len(failed)} failed lately)" if failed else ")")
    with st.expander(label, expanded=bool(failed and not sent[0]["ok"])):
        if failed and not sent[0]["ok"]:
            st.error(f"The last alert was not delivered to {md(sent[0]['url'])}: {md(sent[0]['error'])} "
                     f"({sent[0]['attempts']} attempts). The check itself is unaffected.")
        st.dataframe(sent, hide_index=True, width="stretch",
                     column_order=["at", "ok", "kind", "check_id", "url", "status", "attempts", "error"])
