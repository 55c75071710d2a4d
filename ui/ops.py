"""The Serve page's operations view: what the model server answered over a chosen window
(`core.monitoring.ops.stats`), and a drift check of that window's traffic."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts import operations as ops_charts
from core.config import Settings
from core.data.batches import BatchError
from core.modeling import registry
from core.monitoring import check, ops
from ui.text import md

WINDOWS = {"15 minutes": "15m", "1 hour": "1h", "6 hours": "6h", "24 hours": "24h", "7 days": "7d", "All": "all"}
WINDOW_KEY = "serve_ops_window"
DRIFT_KEY = "serve_ops_drift"


@st.cache_data(show_spinner=False, ttl=600)
def _domain(train_path: str, mtime: float, _settings: Settings) -> tuple[dict, dict]:
    return ops.training_domain(_settings)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f} ms"


def metric_ms(value: float | None) -> str:
    """A latency for a metric tile, three figures at most ('9.43 ms', '55.1 ms', '123 ms'): a tile
    a quarter of the page wide cut '122.93 ms' to '122.9 …'."""
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def by_size_text(report: ops.OpsStats) -> str:
    """The latency of each request size that was sent, e.g. '1 row: p50 2.10 ms, p99 3.40 ms (120
    requests) · 101–10,000 rows: p50 190.00 ms, p99 190.00 ms (1 request)'."""
    parts = []
    for b in report.latency_by_rows:
        if not b["n_requests"]:
            continue
        rows = ("1 row" if b["max_rows"] == 1 else f"{b['min_rows']:,}–{b['max_rows']:,} rows"
                if b["max_rows"] is not None else f"over {b['min_rows'] - 1:,} rows")
        n = b["n_requests"]
        parts.append(f"{rows}: p50 {_ms(b['p50_ms'])}, p99 {_ms(b['p99_ms'])} ({n:,} request{'' if n == 1 else 's'})")
    return " · ".join(parts)


def operations_view(settings: Settings) -> None:
    """The operations section: window picker, figures, charts over time, versions, capture health."""
    st.subheader("Operations")
    label = st.radio("Window", list(WINDOWS), index=1, horizontal=True, key=WINDOW_KEY)
    minutes = ops.parse_window(WINDOWS[label])
    domain = _domain(str(settings.train_path), settings.train_path.stat().st_mtime, settings) \
        if settings.train_path.exists() else ({}, {})
    report = ops.stats(settings, minutes, domain=domain)
    health = report.capture
    if not settings.capture:
        st.info("The server's capture is off (WORKBENCH_CAPTURE=0): only the Serve page's and "
                "`python -m core predict`'s requests are logged.")
    if health.get("write_failures") or health.get("dropped"):
        st.warning(f"The server could not write the inference log {health['write_failures']} time(s) and dropped "
                   f"{health['dropped']} request(s) (they were answered all the same). Last error: "
                   f"{md(health.get('last_error'))}")
    if report.n_requests == 0:
        st.info(f"No request reached the model server in this window ({label.lower()}). Every request it answers "
                "is logged here, whoever sends it (this page, `python -m core predict`, curl, an application).")
        return
    c = st.columns(5)
    rpm = report.requests_per_minute
    c[0].metric("Requests / min", f"{rpm:,.2f}" if rpm < 10 else f"{rpm:,.0f}",
                help=f"{report.n_requests:,} requests in the window")
    every = f"every request (batches included): p50 {_ms(report.p50_ms)}, p99 {_ms(report.p99_ms)}"
    c[1].metric("Server p50, 1 row", metric_ms(report.single_row_p50_ms),
                help="The server's own time (to its answer) for single-row requests; " + every)
    c[2].metric("Server p99, 1 row", metric_ms(report.single_row_p99_ms),
                help="A batch takes longer by its size: each size's latency is below the charts; " + every)
    c[3].metric("Refused", f"{report.refused_share:.1%}",
                help=", ".join(f"{k}: {v:,}" for k, v in report.outcomes.items()))
    outside = report.outside_training_share
    c[4].metric("Outside training", "—" if outside is None else f"{outside:.1%}",
                help="Share of the logged rows with a value outside the training range or a category "
                     "training never saw")
    left, right = st.columns(2)
    left.plotly_chart(ops_charts.traffic(report), width="stretch", config={"displayModeBar": False},
                      key="serve_ops_traffic")
    latency = ops_charts.latency(report)
    if latency is None:  # one bucket: a line of one point would say nothing
        right.info(f"Server latency over time: every request of this window falls in one "
                   f"{report.bucket_minutes:g}-minute interval so far, so there is no line to draw yet; its "
                   f"figures are above and below. The chart appears once requests span two intervals.")
    else:
        right.plotly_chart(latency, width="stretch", config={"displayModeBar": False}, key="serve_ops_latency")
    st.caption("Server latency by request size: " + by_size_text(report))
    versions = pd.DataFrame(report.versions)
    st.caption("Versions served · requests by source: "
               + ", ".join(f"{md(k)} {v:,}" for k, v in report.sources.items()))
    for when in ("first", "last"):  # shown as times, not ISO text
        versions[when] = pd.to_datetime(versions[when], utc=True)
    st.dataframe(versions, hide_index=True, width="stretch", column_config={
        "model_version": st.column_config.TextColumn("version"),
        "n_requests": st.column_config.NumberColumn("requests", format="%d"),
        "first": st.column_config.DatetimeColumn("first request (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "last": st.column_config.DatetimeColumn("last request (UTC)", format="YYYY-MM-DD HH:mm:ss")})
    st.caption(f"{report.rows_logged:,} of the {report.rows_sent:,} rows sent in these {report.n_requests:,} "
               f"request{'' if report.n_requests == 1 else 's'} are logged (at most "
               f"{settings.capture_rows:,} per request); the log keeps {settings.log_max_rows:,} rows and "
               f"{settings.log_max_days:g} days at most.")
    if st.button("Check drift on this window's traffic", key=f"{DRIFT_KEY}_button"):
        try:
            with st.spinner("Checking the window's rows against the training data…"):
                model = registry.require_champion(settings)
                r = check.check(ops.window_batch(model.scoped(settings), minutes), settings, model=model,
                                source="inference_log")
            st.session_state[DRIFT_KEY] = {"verdict": r.recommendation, "n_rows": r.batch["n_rows"],
                                           "drift": r.dataset_drift}
        except BatchError as err:
            st.error(md(err))
    done = st.session_state.get(DRIFT_KEY)
    if done:
        st.success(f"Drift check of {done['n_rows']:,} rows: {'dataset drift' if done['drift'] else 'no dataset drift'}"
                   f" — {done['verdict']}. It is in the drift history on the Drift page.")
