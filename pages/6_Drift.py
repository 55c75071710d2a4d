"""Drift: upload a production batch; see which features drifted and how the model holds, with or without labels."""
import dataclasses
import json
from datetime import datetime, timezone

import streamlit as st

from core.charts import drift as drift_charts
from core.charts.words import Words
from core.data import batch_store, batches, preparation
from core.errors import WorkbenchError
from core.modeling import registry
from core.monitoring import check, drift_report, history, policy, retraining
from core.monitoring.html import report_html
from core.serving import inference_log
from ui import drift_trends, progress, segment_tables, session_keys
from ui.dataset_picker import active_settings
from ui.text import md

st.set_page_config(page_title="Drift · Kobe Workbench", layout="wide")
MIN_LOGGED = 20  # logged rows a check of the inference log needs
base = active_settings()
champion = registry.champion(base)  # read once: its feature set and threshold
settings = champion.scoped(base) if champion else base
spec = settings.dataset
st.title(f"Drift: {md(spec.title)}")
st.caption("Upload a production batch and learn in seconds whether the champion still holds, "
           "even before the labels arrive.")

if not preparation.is_prepared(settings):
    st.info("No prepared data yet: prepare it on the Data page first.")
    st.stop()
if champion is None:
    st.info("No champion yet: train one on the Train page, then come back with a batch.")
    st.stop()


def run_check(batch: batches.Batch, source: str, check_id: str) -> None:
    """Check a batch with a progress bar and keep its report in the session. A batch this champion
    checked before (the same content digest, the name of its stored file) reuses that check and
    adds no second point to the history."""
    key = f"{batch.digest}-v{champion.version}"
    reports = st.session_state.setdefault(session_keys.DRIFT_REPORTS, {})  # this session's checks
    earlier = history.check_of_batch(settings, batch.digest, champion.version)
    if key in reports and earlier is not None and reports[key].mlflow_run_id == earlier.run_id:
        report = reports[key]
    elif earlier is not None:  # checked in another session or by an earlier app: the same figures, not logged
        report = dataclasses.replace(progress.run_with_progress(lambda on_progress: check.check(
            batch, base, model=champion, source=source, log=False, on_progress=on_progress)),
            mlflow_run_id=earlier.run_id)
    else:
        report = progress.run_with_progress(lambda on_progress: check.check(batch, base, model=champion,
                                                                            source=source, on_progress=on_progress))
    reports[key] = report
    while len(reports) > 8:  # the last few only
        reports.pop(next(iter(reports)))
    st.session_state[session_keys.DRIFT_REPORT] = report
    st.session_state[session_keys.DRIFT_CHECKED_ID] = check_id
    st.session_state[session_keys.DRIFT_REUSED] = None if earlier is None else (
        f"{md(batch.name)} was checked before by v{champion.version} "
        f"({run_time(earlier.when_ms)}, MLflow run `{earlier.run_id}`): the same content, so the same check is "
        "shown and the history gets no second point.")


def run_time(ms: int) -> str:
    """A run's start time as 'YYYY-MM-DD HH:MM UTC'."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


upload_col, log_col = st.columns([3, 2])
with upload_col:
    uploaded = st.file_uploader(
        f"Production batch (parquet or CSV, up to {settings.max_upload_mb} MB): the raw file format or just "
        f"the features ({md(', '.join(spec.features))}), with or without {md(spec.target.column)}", type=["parquet", "csv"])
    drop_invalid = st.checkbox("Drop invalid rows instead of refusing the batch",
                               help="Rows with a missing, non-numeric or out-of-domain value, or a bad label, are "
                                    "left out and counted; a file that cannot be read is still refused.")
with log_col:
    n_logged = inference_log.count(settings)
    st.markdown(f"**Inference log** of the model server: {inference_log.logged_text(settings)}.")
    n_last = st.number_input("Last N rows", min_value=MIN_LOGGED, max_value=100_000, value=1000, step=100,
                             disabled=n_logged < MIN_LOGGED,
                             help="The check reads the last N logged rows (one per scored row: a request of many "
                                  "rows logs many, a sample of a large one).")
    if st.button("Check the inference log", disabled=n_logged < MIN_LOGGED):
        try:
            log_batch = check.inference_log_batch(settings, int(n_last))
        except WorkbenchError as err:
            st.error(md(err))
        else:
            run_check(log_batch, "inference_log", f"log-{log_batch.digest}")
    if n_logged < MIN_LOGGED:
        st.caption(f":material/block: Disabled: a check needs at least {MIN_LOGGED} logged rows "
                   f"({n_logged} so far). Send {md(spec.rows_noun)} from the Serve page (or `python -m core predict`).")

upload_id = None if uploaded is None else f"upload-{uploaded.file_id}{'-drop-invalid' if drop_invalid else ''}"
if upload_id is not None and st.session_state.get(session_keys.DRIFT_CHECKED_ID) != upload_id:
    try:
        batch = batches.read_batch(uploaded, settings, name=uploaded.name, drop_invalid=drop_invalid)
    except batches.BatchError as err:
        st.error(md(err))  # the page goes on: the last check and the history stay in view
        st.session_state[session_keys.DRIFT_REUSED] = None
    else:
        run_check(batch, "upload", upload_id)

reused = st.session_state.get(session_keys.DRIFT_REUSED)
if reused:
    st.info(reused, icon=":material/replay:")
report = st.session_state.get(session_keys.DRIFT_REPORT)
if report is None:
    example = f" (for example {settings.raw_prod})" if settings.raw_prod else ""
    st.info(f"Upload a batch{example} to compare it with the "
            "training data, or check the Serve page's inference log.")
else:
    st.subheader(f"{md(report.batch['name'])} · {report.batch['n_rows']:,} rows · model version {report.model_version}")
    if report.batch.get("n_dropped"):
        st.info(md(batches.dropped_text(report.batch)))
    c = st.columns(5)
    c[0].metric("Dataset drift", "yes" if report.dataset_drift else "no")
    c[1].metric("Drifted features", f"{report.n_drifted} of {report.n_features}")
    dom = report.domain
    c[2].metric("Domain AUC", "n/a" if report.domain_auc is None else f"{report.domain_auc:.3f}",
                help="Cross-validated ROC-AUC telling batch rows from training rows: 0.5 = same data."
                     + (f" 95 % interval {dom['low']:.3f}-{dom['high']:.3f} ({dom['n_rows']:,} rows a side); "
                        f"dataset drift when its lower bound reaches {settings.drift.domain_auc:.2f}." if dom else ""))
    c[3].metric("Prediction drift", "yes" if report.prediction.drift else "no",
                help=md(drift_report.prediction_text(report, spec.proba_label)))
    c[4].metric("Check time", f"{report.seconds:.2f} s")
    if report.dataset_drift_rules:
        st.caption("Dataset drift: " + "; ".join(map(md, report.dataset_drift_rules)) + ".")
    if report.words:  # multiclass and regression: the performance in one sentence
        st.markdown(f"**{md(report.words)}**")
    advice = st.success if policy.judge_report(report, settings).calm else st.warning
    advice(f"**Recommendation.** {md(report.recommendation)}")
    alarm = policy.alarm(report, settings)
    if alarm:
        with st.container(border=True):
            st.markdown("**Retraining alarm:** " + "; ".join(map(md, alarm)) + ".")
            if report.label is None or not report.stored_path:
                st.info(f"Retraining needs this batch's labels: upload it again with {md(spec.target.column)} "
                        f"once the {md(spec.rows_noun)}' outcomes are known.")
            elif st.button("Retrain with this batch's labels", type="primary",
                           help="Refit the champion's model on the training data plus this batch's labelled "
                                "rows (less a held-out slice), compare both on old and new held-out data, and "
                                "promote the challenger only if it passes the gate."):
                batch = batches.read_batch(report.stored_path, settings, name=report.batch["name"])
                st.session_state[session_keys.RETRAIN_RESULT] = progress.run_with_progress(
                    lambda on_progress: retraining.retrain(base, [batch], champion, on_progress=on_progress,
                                                           reason="alarm on the Drift page: " + "; ".join(alarm)))
            result = st.session_state.get(session_keys.RETRAIN_RESULT)
            if result is not None:
                (st.success if result.promoted else st.warning)(
                    f"Challenger v{result.challenger['version']} {result.decision} (champion was "
                    f"v{result.champion['version']}; MLflow run `{result.mlflow_run_id}`, Retreinamento).")
                st.dataframe(retraining.comparison_rows(result), hide_index=True, width="stretch",
                             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in
                                            ("champion", "challenger")})

    st.plotly_chart(drift_charts.effect_bars(report), width="stretch")
    number = st.column_config.NumberColumn
    rows = drift_report.feature_rows(report)
    essentials = ["feature", "drift", "rule", "PSI", "Wasserstein / σ", "JS beyond chance", "outside training range",
                  "mean (training)", "mean (batch)"]  # the table fits the page; every column in the expander
    config = {
        "PSI": number(format="%.3f"), "Wasserstein / σ": number(format="%.3f"), "JS distance": number(format="%.3f"),
        "JS beyond chance": number(format="%.3f", help="The JS distance less what chance gives two samples of "
                                                       "these sizes; the verdict uses it."),
        "rule": st.column_config.TextColumn(help="The statistics that reached their threshold."),
        "p-value (info only)": st.column_config.TextColumn(
            help="KS for continuous, χ² for discrete features: information only, a large batch makes any "
                 "difference 'significant'; the verdict uses the effect sizes."),
        "outside training range": number(format="percent", help=(
            f"Share of this batch's {report.batch['n_rows']:,} rows (unlabelled ones included) outside the "
            "training range, or in categories training never saw. The Production page counts its scored "
            "rows only, so its share of the same file can differ.")),
        "mean (training)": number(format="%.3f"), "mean (batch)": number(format="%.3f")}
    st.dataframe(rows, hide_index=True, width="stretch", column_order=essentials, column_config=config)
    with st.expander("Every column: kind, JS distance, p-value, missing values, new categories"):
        st.dataframe(rows, hide_index=True, width="stretch", column_config=config)
    with st.expander("How each statistic is defined, and its threshold"):
        st.dataframe([{"statistic": name, "definition": text,
                       "threshold": "–" if key is None else f"{key} = {report.thresholds.get(key)}"}
                      for name, text, key in drift_report.DEFINITIONS], hide_index=True, width="stretch")
    # worst first, as the chart: the box opens on the most drifted feature
    feature = st.selectbox("Distribution of", [name for name, _, _ in drift_report.by_severity(report)],
                           help="Features from the most drifted to the most stable, as in the chart above.")
    st.plotly_chart(drift_charts.distribution(report.stats.features[feature]), width="stretch")
    for figure in drift_charts.prediction_charts(report):  # per task: probability, classes or prediction
        st.plotly_chart(figure, width="stretch")

    st.subheader("Model health")
    est = report.estimate
    if not est.trustworthy:
        st.error("The label-free estimate can't be trusted on this batch:\n\n"
                 + "\n".join(f"- {md(reason)}" for reason in est.reasons))
    verdict = ("" if est.trustworthy else " (NOT trustworthy on this batch)") + (
        f" · estimated without labels by {est.method}" if est.method else "")
    st.markdown(f"**Estimated vs test vs realised performance**{verdict}")
    number = st.column_config.NumberColumn
    st.dataframe(drift_report.health_rows(report), hide_index=True, width="stretch",
                 column_config={k: number(format="%.3f") for k in
                                ("test split", "estimated (no labels)", "realised (labels)", "estimate error")})
    if report.label is not None:
        st.caption(md(drift_report.label_text(report)))
    for figure in drift_charts.health_charts(report, words=Words.of(spec), unit=spec.target.unit,
                                             target=spec.target.column):
        st.plotly_chart(figure, width="stretch")

    segment_tables.batch_section(report, base, champion)
    d1, d2, _ = st.columns([1.2, 1.8, 2])  # each file is built only when its button is clicked
    d1.download_button("Report (JSON)", lambda: json.dumps(report.to_dict(), default=str, indent=1),
                       file_name="drift_report.json", mime="application/json", on_click="ignore",
                       icon=":material/download:", key="download-drift-json")
    d2.download_button("Report (HTML, with charts)", lambda: report_html(report), file_name="drift_report.html",
                       mime="text/html", on_click="ignore", icon=":material/download:", key="download-drift-html")
    st.caption(f"MLflow run `{report.mlflow_run_id}` (Monitoramento) · stored as {md(report.stored_path)}")

st.subheader("History")
past = history.history(settings)
if past.empty:
    st.info("No checks yet: every checked batch adds a point here.")
else:
    st.plotly_chart(drift_charts.history_effects(past), width="stretch")
    headline = policy.of(champion.task).headline  # the task's one figure (binary: F1)
    st.plotly_chart(drift_charts.history_f1(past) if headline == "f1" else
                    drift_charts.history_performance(past, headline, spec.target.unit), width="stretch")
    stored = batch_store.list_batches(settings)
    with st.expander(f"Stored batches ({len(stored)})"):
        st.dataframe([b.to_dict() for b in stored], hide_index=True, width="stretch")

drift_trends.show(base, settings, champion, past, report, MIN_LOGGED)  # per chunk of the log, or per check
drift_trends.show_alerts(settings)
