"""Production: score the production batch with the champion and judge whether the model holds up."""
import streamlit as st

import numpy as np

from core.charts import evaluation, scoring
from core.charts import production as production_charts
from core.charts.words import Words
from core.data import batches, preparation
from core.errors import WorkbenchError
from core.modeling import registry
from core.monitoring import adherence, outputs
from core.scoring import exports, local, spark
from core.serving import server
from ui import mlflow_links, progress, segment_tables, session_keys
from ui.dataset_picker import active_settings
from ui.pages import link
from ui.served_version import stale_banner
from ui.text import md
from ui.views import view_of

st.set_page_config(page_title="Production · Kobe Workbench", layout="wide")
base = active_settings()
champion = registry.champion(base)  # read once: its feature set and threshold
settings = champion.scoped(base) if champion else base
spec = settings.dataset
words = Words.of(spec)
col = spec.proba_column
st.title(f"Production: {md(spec.title)}")
has_prod = preparation.has_prod(settings)
if has_prod:
    st.caption(f"Apply the champion to the production batch ({md(spec.prod_title)}, never seen in training) or to a "
               "batch you upload, compare it with the test set, and answer: is the model adherent to the production data?")
else:
    st.caption(f"Upload a batch of {md(spec.rows_noun)}, score it with the champion and judge whether the model holds up.")

if not preparation.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first.")
    st.stop()
if champion is None:
    st.info("No champion yet — train one on the Train page (or `python -m core train`), then score production here.")
    st.stop()
SPLIT, UPLOAD = "The production split", "An uploaded file"
if has_prod:
    source = st.radio("Batch to score", [SPLIT, UPLOAD], horizontal=True, key=session_keys.PRODUCTION_SOURCE,
                      help="The production split set apart by the dataset's definition, or a CSV/parquet file of "
                           f"{md(spec.rows_noun)} you upload (with or without {md(spec.target.column)}).")
else:
    source = UPLOAD
    st.info(f"**{md(spec.title)} sets no production {md(spec.rows_noun)} apart**: upload a batch of "
            f"{md(spec.rows_noun)} below to score it with the champion, with or without labels.")


# keyed by their inputs only: a file and its age, or a home, dataset, feature set and version
# (`_settings` is what those keys were read for, not hashed)
@st.cache_data(show_spinner=False)
def scored_batch(path: str, mtime: float, _settings):
    return local.load_scored(_settings, path)


@st.cache_data(show_spinner="Reading and validating the batch…", max_entries=4)
def validated_upload(file_id: str, _uploaded, _settings):
    return batches.read_batch(_uploaded, _settings, name=_uploaded.name)


def shown_path(path):
    """A saved file's path as the page shows it: inside the workbench's home when it is there."""
    return str(path.relative_to(settings.home)) if path.is_relative_to(settings.home) else str(path)


def show_result(result: dict) -> None:
    how = {"http": "over HTTP", "spark": "on Spark"}.get(result["path"], "in-process")
    st.success(f"Scored {result['rows']:,} rows {how} with model v{result['model_version']} in "
               f"{result['seconds']:.1f} s ({result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s). "
               f"MLflow run {mlflow_links.run_link(settings, result['mlflow_run_id'])}.")
    if result.get("stale"):
        st.warning(f"These scores came from v{result['model_version']}, which the server served, not from the "
                   f"champion v{champion.version}.")
    st.caption(mlflow_links.ui_hint(settings))


@st.cache_data(show_spinner="Scoring the test set with the same model version…")
def test_reference(home: str, dataset: str, feature_set: str, version: str, _settings):
    return local.test_predictions(_settings, version)


@st.cache_data(show_spinner=False)
def training_data(path: str, mtime: float, _settings):
    return preparation.load_split(_settings, "train")


@st.cache_data(show_spinner="Scoring the test set with the same model version…")
def task_test_outputs(home: str, dataset: str, feature_set: str, version: str, _settings, _champion):
    return adherence.test_outputs(_settings, _champion)


def downloads(scored_path) -> None:
    """The scored rows to download, CSV or parquet (built only when clicked)."""
    for where, fmt in zip(st.columns([1, 1, 2.2])[:2], ("csv", "parquet")):
        where.download_button(f"Download {'CSV' if fmt == 'csv' else 'parquet'}",
                              lambda fmt=fmt: exports.scored_rows(settings, fmt, scored_path),
                              file_name=exports.file_name(settings, fmt, scored_path), mime=exports.MIME[fmt],
                              on_click="ignore", icon=":material/download:", width="stretch",
                              key=f"download-scored-{fmt}")
    st.caption(exports.CSV_NOTE)


def task_production(scored, scored_path, train) -> None:
    """The Production page's answer and figures for a multiclass or regression champion."""
    kind = champion.kind
    try:
        test_out, y_test = task_test_outputs(str(settings.home), spec.name, spec.feature_set, champion.version,
                                             settings, champion)
        prod_out = outputs.scored_outputs(scored, spec, champion)
    except WorkbenchError as err:
        st.error(md(err))
        st.stop()
    y_prod = spec.target.encode(scored[settings.target])[0] if labelled else None  # as the model's labels
    verdict = adherence.task_adherence(prod_out, y_prod, test_out, y_test, scored, train, spec, champion,
                                       settings.drift)
    what = ("the class probabilities (one column per class) and the predicted class" if kind.classifier else
            "the prediction and its interval's bounds")
    st.caption(f"**The scored {md(spec.rows_noun)}** ({len(scored):,} rows of {md(shown_path(scored_path))}, scored "
               f"by v{champion.version}): the features, {what}, "
               f"{f'the actual {md(settings.target)} as in the data, ' if labelled else ''}and the version, to download.")
    downloads(scored_path)
    if not labelled:
        st.info(f"**This batch has no labels** (no {md(settings.target)} values): the metrics need labels, so the "
                "answer below rests on the model's outputs alone. Score a batch with "
                f"{md(settings.target)} in it to measure the model.")
    st.subheader("Is the model adherent to the production data?")
    box = {"adherent": st.success, "not adherent": st.error}.get(verdict.verdict, st.warning)
    box(md(verdict.text))
    st.markdown("**Next step**")
    for step in verdict.steps:
        link(st, step.stage, md(step.label))
    st.subheader(f"Test vs production, model v{champion.version}")
    st.dataframe(adherence.metrics_table(verdict), hide_index=True, width="content",
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                for c in ("test", "production", "change")})
    target, unit = spec.target.column, spec.target.unit
    if kind.classifier:
        names = verdict.outputs["classes"]
        c1, c2 = st.columns(2)
        c1.plotly_chart(production_charts.class_shares(verdict.outputs), width="stretch")
        if y_prod is not None:
            known = np.isfinite(y_prod)
            c2.plotly_chart(production_charts.confusion(y_prod[known], prod_out[known], names), width="stretch")
            st.plotly_chart(production_charts.f1_per_class(verdict.test_metrics, verdict.prod_metrics, names),
                            width="stretch")
        return
    halfwidth, level = verdict.outputs.get("halfwidth"), verdict.outputs.get("level")
    if y_prod is not None:
        known = np.isfinite(y_prod)
        series = {"test": (y_test, test_out), "production": (y_prod[known], prod_out[known])}
        c1, c2 = st.columns(2)
        c1.plotly_chart(production_charts.predicted_vs_actual(series, halfwidth, level, target, unit), width="stretch")
        c2.plotly_chart(production_charts.coverage(verdict.test_metrics.get("interval_coverage"),
                                                   (verdict.prod_metrics or {}).get("interval_coverage"), level, target),
                        width="stretch")
        st.plotly_chart(production_charts.errors(series, halfwidth, target, unit), width="stretch")
    st.plotly_chart(production_charts.predictions({"test": test_out, "production": prod_out}, target, unit),
                    width="stretch")


# ---------------------------------------------------------------- run PipelineAplicacao
status = server.status(settings, with_champion=True)
stale_banner(settings, status, key="production_restart_on_champion")
where = (f"through the model server at {status.url} (v{status.model_version})" if status.running else
         "in-process (no model server runs: start one on the Serve page to score over HTTP)")
if source == SPLIT:
    with st.container(border=True):
        left, mid, right = st.columns([3, 1.3, 1])
        left.markdown(f"**Score the production batch** (PipelineAplicacao) with champion "
                      f"{mlflow_links.version_link(settings, champion.version)}, "
                      f"{where}. The scored batch is saved to `{settings.predictions_path.name}` and the run is "
                      f"logged to MLflow.")
        paths = (["Model server (HTTP)"] if status.running else []) + ["In-process"] + (
            ["Spark"] if spark.available() else [])
        path = mid.radio("Path", paths, index=0, label_visibility="collapsed",
                         help="Spark (local[*], or SPARK_MASTER) writes a partitioned parquet dataset; it pays off "
                              "only for batches of millions of rows.")
        if right.button("Score production", type="primary", width="stretch"):
            on_progress = progress.bar()
            try:
                if path == "Spark":
                    result = spark.score_spark(base, on_progress=on_progress, model=champion).to_dict()
                else:
                    result = local.score(base, champion, in_process=path == "In-process",
                                         on_progress=on_progress).to_dict()
                st.session_state[session_keys.PRODUCTION_RESULT] = result
            except WorkbenchError as err:
                st.error(md(err))
        result = st.session_state.get(session_keys.PRODUCTION_RESULT)
        if result:
            show_result(result)
            if result["path"] == "spark":
                parts = f"partitioned by {md(spec.partition_by)} " if spec.partition_by else ""
                st.caption(f"Spark wrote a parquet dataset {parts}to `{result['output']}`; the charts "
                           f"below show the last HTTP or in-process scoring ({settings.predictions_path.name}).")
    if not settings.predictions_path.exists():
        st.info("No scored batch yet: click **Score production** above.")
        st.stop()
    scored_path, batch_title = settings.predictions_path, f"production ({spec.prod_title})"
    scored = scored_batch(str(scored_path), scored_path.stat().st_mtime, settings)
else:
    with st.container(border=True):
        uploaded = st.file_uploader(
            f"Batch to score (parquet or CSV, up to {settings.max_upload_mb} MB): the raw file format or just the "
            f"features ({md(', '.join(spec.features))}), with or without {md(spec.target.column)}",
            type=["parquet", "csv"], key="production_upload")
        if uploaded is None:
            st.info(f"Upload a batch of {md(spec.rows_noun)} to score it with champion v{champion.version}. With "
                    f"{md(spec.target.column)} in it, the metrics and the verdict compare it with the test set.")
            st.stop()
        try:
            batch = validated_upload(uploaded.file_id, uploaded, settings)
        except batches.BatchError as err:
            st.error(md(err))  # every problem, one a line, with its column and rows
            st.stop()
        dest = local.upload_output_path(settings, batch)
        left, mid, right = st.columns([3, 1.3, 1])
        left.markdown(f"**Score {md(batch.name)}** ({batch.n_rows:,} rows, "
                      f"{f'{batch.n_labelled:,} labelled' if batch.has_labels else 'no labels'}) with champion "
                      f"{mlflow_links.version_link(settings, champion.version)}, {where}. The scored rows are saved "
                      f"to {md(shown_path(dest))}"
                      f"{f' (the production split’s `{settings.predictions_path.name}` is left alone)' if has_prod else ''}"
                      " and the run is logged to MLflow.")
        paths = (["Model server (HTTP)"] if status.running else []) + ["In-process"]
        path = mid.radio("Path", paths, index=0, label_visibility="collapsed", key="production_upload_path")
        if right.button("Score upload", type="primary", width="stretch"):
            try:
                result = local.score(base, champion, batch=batch, in_process=path == "In-process",
                                     output=dest, on_progress=progress.bar()).to_dict()
                st.session_state[session_keys.PRODUCTION_UPLOAD_RESULT] = {**result, "file_id": uploaded.file_id}
            except WorkbenchError as err:
                st.error(md(err))
        result = st.session_state.get(session_keys.PRODUCTION_UPLOAD_RESULT)
        if not result or result.get("file_id") != uploaded.file_id or result["output"] != str(dest):
            st.info("Not scored yet: click **Score upload** above.")
            st.stop()
        show_result(result)
    scored_path, batch_title = dest, f"uploaded ({batch.name})"
    try:
        scored = scored_batch(str(scored_path), scored_path.stat().st_mtime, settings)
    except FileNotFoundError:
        st.info("The scored rows are gone: click **Score upload** again.")
        st.stop()
version = local.scored_version(scored)
train = training_data(str(settings.train_path), settings.train_path.stat().st_mtime, settings)
labelled = settings.target in scored
if champion.task != "binary":  # a multiclass or regression model: its own figures, charts and words
    if version != champion.version:
        st.warning(f"The scored batch was scored by v{version}; the champion is now v{champion.version}. "
                   f"Score again to see the current champion.")
        st.stop()
    task_production(scored, scored_path, train)
    segment_tables.scored_section(scored, f"{scored_path}:{scored_path.stat().st_mtime}", base, champion, batch_title)
    st.stop()
try:
    test = test_reference(str(settings.home), spec.name, spec.feature_set, version, settings)
except WorkbenchError as err:
    st.error(md(err))
    st.stop()
left, csv_col, parquet_col = st.columns([2.2, 1, 1], vertical_alignment="center")
left.caption(f"**The scored {md(spec.rows_noun)}** ({len(scored):,} rows of {md(shown_path(scored_path))}, scored by "
             f"v{version}): the features, {md(spec.proba_label)}, the class at the version's threshold (as 1 / 0 "
             f"in {md(spec.pred_column)}, as the data holds it in {md(spec.predicted_class_column)}, by name in "
             f"{local.CLASS_NAME}), "
             f"{f'the actual {md(settings.target)} as in the data, ' if labelled else ''}and the version, to download.")
for where, fmt in ((csv_col, "csv"), (parquet_col, "parquet")):
    where.download_button(f"Download {'CSV' if fmt == 'csv' else 'parquet'}",
                          # built only when clicked
                          lambda fmt=fmt: exports.scored_rows(settings, fmt, scored_path),
                          file_name=exports.file_name(settings, fmt, scored_path), mime=exports.MIME[fmt], on_click="ignore",
                          icon=":material/download:", width="stretch", key=f"download-scored-{fmt}")
csv_col.caption(exports.CSV_NOTE)
if version != champion.version:
    st.warning(f"The scored batch was scored by v{version}; the champion is now v{champion.version}. "
               f"Score again to see the current champion.")

threshold = st.slider(f"Class threshold on {md(spec.proba_label)}", 0.01, 0.99,
                      min(max(champion.decision_threshold, 0.01), 0.99), 0.01,
                      # one slider per dataset and version: another's value is never carried over
                      key=f"{session_keys.PRODUCTION_THRESHOLD}:{spec.name}:v{champion.version}",
                      help=f"A {md(spec.row_noun)} is predicted {md(spec.positive_name)} when {md(spec.proba_label)} reaches this "
                           "threshold; moves the metrics, the confusion matrix, the charts and the verdict.")
verdict = adherence.adherence(scored, test, train, spec, threshold, settings.drift)
if not labelled:
    st.info(f"**This batch has no labels** (no {md(settings.target)} values): the metrics (F1, ROC AUC, the confusion "
            f"matrix) need labels, so the answer below rests on {md(spec.proba_label)} alone. Score a batch with "
            f"{md(settings.target)} in it to measure the model.")

# ---------------------------------------------------------------- the answer
st.subheader("Is the model adherent to the production data?")
box = {"adherent": st.success, "not adherent": st.error}.get(verdict.verdict, st.warning)
box(md(verdict.text))
st.markdown("**Next step**")
for step in verdict.steps:  # links to the pages that take them, one a line
    link(st, step.stage, md(step.label))

# ---------------------------------------------------------------- figures
st.subheader(f"Test vs production, model v{version}")
table = adherence.metrics_table(verdict)
st.dataframe(table, hide_index=True, width="content",
             column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in ("test", "production", "change")})

series = {f"test ({spec.dev_title})": (test[settings.target], test[col])}
histogram = scoring.proba_histogram({"test": test[col], "production": scored[col]}, threshold, words=words)
if labelled:
    rows = local.with_outcome(scored, spec, threshold)
    series[batch_title] = (rows[spec.actual_column], rows[col])
    c1, c2 = st.columns(2)
    c1.plotly_chart(evaluation.roc(series, title="ROC: test vs production", words=words), width="stretch")
    c2.plotly_chart(evaluation.pr(series, title="Precision-recall: test vs production", words=words),
                    width="stretch")
    c3, c4 = st.columns(2)
    c3.plotly_chart(evaluation.confusion(rows[spec.actual_column], rows[col], threshold, words=words,
                                         title=f"Production confusion matrix at threshold {threshold:.2f}"),
                    width="stretch")
    c4.plotly_chart(histogram, width="stretch")
    own = view_of(spec)
    if own is not None:
        st.plotly_chart(own.chart(rows, spec, color="outcome", title=f"Production {spec.rows_noun}: correct vs "
                                  f"incorrect at threshold {threshold:.2f}"), width="stretch")
else:
    st.info(f"This batch has no labels: only the {md(spec.proba_label)} distribution can be compared.")
    st.plotly_chart(histogram, width="stretch")
segment_tables.scored_section(scored, f"{scored_path}:{scored_path.stat().st_mtime}", base, champion, batch_title,
                              threshold)
