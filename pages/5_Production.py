"""Production: score the production batch with the champion and judge whether the model holds up."""
import streamlit as st

from core.charts import evaluation, scoring
from core.charts.words import Words
from core.data import preparation
from core.errors import WorkbenchError
from core.modeling import registry
from core.monitoring import adherence
from core.scoring import exports, local, spark
from core.serving import server
from ui import mlflow_links, progress, session_keys
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
if preparation.has_prod(settings):
    st.caption(f"Apply the champion to the production batch ({md(spec.prod_title)}, never seen in training), compare "
               "it with the test set, and answer: is the model adherent to the production data?")
else:
    st.caption("Score the dataset's production batch with the champion and judge whether the model holds up.")

if not preparation.has_prod(settings):
    st.info(f"**{md(spec.title)} has no production batch**: its definition sets no production {md(spec.rows_noun)} "
            f"apart, so there is nothing to score here. Upload a batch of {md(spec.rows_noun)} on the **Drift** page instead: "
            "it is scored by the champion and compared with the training data, with or without labels.")
    st.stop()
if not preparation.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first.")
    st.stop()
if champion is None:
    st.info("No champion yet — train one on the Train page (or `python -m core train`), then score production here.")
    st.stop()


# keyed by their inputs only: a file and its age, or a home, dataset, feature set and version
# (`_settings` is what those keys were read for, not hashed)
@st.cache_data(show_spinner=False)
def scored_batch(path: str, mtime: float, _settings):
    return local.load_scored(_settings)


@st.cache_data(show_spinner="Scoring the test set with the same model version…")
def test_reference(home: str, dataset: str, feature_set: str, version: str, _settings):
    return local.test_predictions(_settings, version)


@st.cache_data(show_spinner=False)
def training_data(path: str, mtime: float, _settings):
    return preparation.load_split(_settings, "train")


# ---------------------------------------------------------------- run PipelineAplicacao
status = server.status(settings, with_champion=True)
stale_banner(settings, status, key="production_restart_on_champion")
with st.container(border=True):
    left, mid, right = st.columns([3, 1.3, 1])
    where = (f"through the model server at {status.url} (v{status.model_version})" if status.running else
             "in-process (no model server runs: start one on the Serve page to score over HTTP)")
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
        how = {"http": "over HTTP", "spark": "on Spark"}.get(result["path"], "in-process")
        st.success(f"Scored {result['rows']:,} rows {how} with model v{result['model_version']} in "
                   f"{result['seconds']:.1f} s ({result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s). "
                   f"MLflow run {mlflow_links.run_link(settings, result['mlflow_run_id'])}.")
        if result.get("stale"):
            st.warning(f"These scores came from v{result['model_version']}, which the server served, not from the "
                       f"champion v{champion.version}.")
        st.caption(mlflow_links.ui_hint(settings))
        if result["path"] == "spark":
            parts = f"partitioned by {md(spec.partition_by)} " if spec.partition_by else ""
            st.caption(f"Spark wrote a parquet dataset {parts}to `{result['output']}`; the charts "
                       f"below show the last HTTP or in-process scoring ({settings.predictions_path.name}).")

if not settings.predictions_path.exists():
    st.info("No scored batch yet: click **Score production** above.")
    st.stop()

scored = scored_batch(str(settings.predictions_path), settings.predictions_path.stat().st_mtime, settings)
version = local.scored_version(scored)
try:
    test = test_reference(str(settings.home), spec.name, spec.feature_set, version, settings)
except WorkbenchError as err:
    st.error(md(err))
    st.stop()
train = training_data(str(settings.train_path), settings.train_path.stat().st_mtime, settings)
labelled = settings.target in scored
left, csv_col, parquet_col = st.columns([2.2, 1, 1], vertical_alignment="center")
left.caption(f"**The scored {md(spec.rows_noun)}** ({len(scored):,} rows of `{settings.predictions_path.name}`, scored by "
             f"v{version}): the features, {md(spec.proba_label)}, the class at the version's threshold (as 1 / 0 "
             f"in {md(spec.pred_column)}, as the data holds it in {md(spec.predicted_class_column)}), "
             f"{f'the actual {md(settings.target)} as in the data, ' if labelled else ''}and the version, to download.")
for where, fmt in ((csv_col, "csv"), (parquet_col, "parquet")):
    where.download_button(f"Download {'CSV' if fmt == 'csv' else 'parquet'}",
                          lambda fmt=fmt: exports.scored_rows(settings, fmt),  # built only when clicked
                          file_name=exports.file_name(settings, fmt), mime=exports.MIME[fmt], on_click="ignore",
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
    series[f"production ({spec.prod_title})"] = (rows[spec.actual_column], rows[col])
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
