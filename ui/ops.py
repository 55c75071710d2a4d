"""The Serve page's operations view: what the model server answered over a chosen window
(`core.monitoring.ops.stats`), and a drift check of that window's traffic."""
from __future__ import annotations

import pandas as pd
import streamlit as st

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


def _series(report: ops.OpsStats) -> pd.DataFrame:
    """The per-bucket series as a frame indexed by time (for Streamlit's charts)."""
    frame = pd.DataFrame([{"time": pd.Timestamp(b["start"]), "requests/min": b["requests_per_minute"],
                           "refused": b["refused"], "p50 ms": b["p50_ms"], "p99 ms": b["p99_ms"]}
                          for b in report.per_bucket])
    return frame.set_index("time") if not frame.empty else frame


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
    c[1].metric("Server p50", f"{report.p50_ms:.2f} ms", help="The server's own time per request (to its answer)")
    c[2].metric("Server p99", f"{report.p99_ms:.2f} ms")
    c[3].metric("Refused", f"{report.refused_share:.1%}",
                help=", ".join(f"{k}: {v:,}" for k, v in report.outcomes.items()))
    outside = report.outside_training_share
    c[4].metric("Outside training", "—" if outside is None else f"{outside:.1%}",
                help="Share of the logged rows with a value outside the training range or a category "
                     "training never saw")
    series = _series(report)
    left, right = st.columns(2)
    left.caption(f"Requests and refusals per {report.bucket_minutes:g} min")
    left.bar_chart(series[["requests/min", "refused"]], height=220)
    right.caption("Server latency (ms)")
    right.line_chart(series[["p50 ms", "p99 ms"]], height=220)
    versions = pd.DataFrame(report.versions)
    st.caption("Versions served · requests by source: "
               + ", ".join(f"{md(k)} {v:,}" for k, v in report.sources.items()))
    st.dataframe(versions, hide_index=True, width="stretch")
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
