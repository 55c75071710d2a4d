"""Production: score the production batch with the champion and judge whether the model holds up."""
import streamlit as st

from core import charts, curves, data, scoring, scoring_charts, serving, session_keys, spark_scoring, tracking
from core.config import Settings
from core.errors import WorkbenchError
from core.progress import Stopwatch

st.set_page_config(page_title="Production · Kobe Workbench", layout="wide")
settings = Settings.from_env()
st.title("Production")
st.caption("Apply the champion to the production batch (3-point shots, never seen in training), compare it with "
           "the test set, and answer: is the model adherent to the production data?")

if not data.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first.")
    st.stop()
champion = tracking.champion(settings)
if champion is None:
    st.info("No champion yet — train one on the Train page (or `python -m core train`), then score production here.")
    st.stop()


@st.cache_data(show_spinner=False)
def scored_batch(path: str, mtime: float):
    return scoring.load_scored(settings)


@st.cache_data(show_spinner="Scoring the test set with the same model version…")
def test_reference(home: str, version: str):
    return scoring.test_predictions(settings, version)


@st.cache_data(show_spinner=False)
def training_data(path: str, mtime: float):
    return data.load_split(settings, "train")


# ---------------------------------------------------------------- run PipelineAplicacao
status = serving.status(settings)
with st.container(border=True):
    left, mid, right = st.columns([3, 1.3, 1])
    where = (f"through the model server at {status.url} (v{status.model_version})" if status.running else
             "in-process (no model server runs: start one on the Serve page to score over HTTP)")
    left.markdown(f"**Score the production batch** (PipelineAplicacao) with champion v{champion.version}, "
                  f"{where}. The scored batch is saved to `{settings.predictions_path.name}` and the run is "
                  f"logged to MLflow.")
    paths = (["Model server (HTTP)"] if status.running else []) + ["In-process"] + (
        ["Spark"] if spark_scoring.available() else [])
    path = mid.radio("Path", paths, index=0, label_visibility="collapsed",
                     help="Spark (local[*], or SPARK_MASTER) writes a partitioned parquet dataset; it pays off "
                          "only for batches of millions of rows.")
    if right.button("Score production", type="primary", width="stretch"):
        bar = st.progress(0.0, text="Starting…")
        clock = Stopwatch()
        on_progress = lambda f, step: bar.progress(f, text=f"{step} · {clock.seconds:.1f} s")  # noqa: E731
        try:
            if path == "Spark":
                result = spark_scoring.score_spark(settings, on_progress=on_progress).to_dict()
            else:
                result = scoring.score(settings, in_process=path == "In-process", on_progress=on_progress).to_dict()
            st.session_state[session_keys.PRODUCTION_RESULT] = result
        except WorkbenchError as err:
            st.error(str(err))
    result = st.session_state.get(session_keys.PRODUCTION_RESULT)
    if result:
        how = {"http": "over HTTP", "spark": "on Spark"}.get(result["path"], "in-process")
        st.success(f"Scored {result['rows']:,} rows {how} with model v{result['model_version']} in "
                   f"{result['seconds']:.1f} s ({result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s). "
                   f"MLflow run `{result['mlflow_run_id']}`.")
        if result["path"] == "spark":
            st.caption(f"Spark wrote a parquet dataset partitioned by period to `{result['output']}`; the charts "
                       f"below show the last HTTP or in-process scoring ({settings.predictions_path.name}).")

if not settings.predictions_path.exists():
    st.info("No scored batch yet: click **Score production** above.")
    st.stop()

scored = scored_batch(str(settings.predictions_path), settings.predictions_path.stat().st_mtime)
version = scoring.scored_version(scored)
try:
    test = test_reference(str(settings.home), version)
except WorkbenchError as err:
    st.error(str(err))
    st.stop()
train = training_data(str(settings.train_path), settings.train_path.stat().st_mtime)
labelled = settings.target in scored
if version != champion.version:
    st.warning(f"The scored batch was scored by v{version}; the champion is now v{champion.version}. "
               f"Score again to see the current champion.")

threshold = st.slider("Class threshold on P(made)", 0.05, 0.95, settings.threshold, 0.01,
                      key=session_keys.PRODUCTION_THRESHOLD,
                      help="A shot is predicted made when P(made) reaches this threshold; moves the metrics, "
                           "the confusion matrix, the shot chart and the verdict.")
verdict = scoring.adherence(scored, test, train, settings.features, settings.target, threshold)

# ---------------------------------------------------------------- the answer
st.subheader("Is the model adherent to the production data?")
box = {"adherent": st.success, "not adherent": st.error}.get(verdict.verdict, st.warning)
box(verdict.text)

# ---------------------------------------------------------------- figures
st.subheader(f"Test vs production, model v{version}")
table = scoring.metrics_table(verdict)
st.dataframe(table, hide_index=True, width="content",
             column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in ("test", "production", "change")})

series = {"test (2-point shots)": (test[settings.target], test[scoring.PROBA])}
if labelled:
    rows = scoring.with_outcome(scored, settings.target, threshold)
    series["production (3-point shots)"] = (rows[settings.target], rows[scoring.PROBA])
    c1, c2 = st.columns(2)
    c1.plotly_chart(curves.roc(series, title="ROC: test vs production"), width="stretch")
    c2.plotly_chart(curves.pr(series, title="Precision-recall: test vs production"), width="stretch")
    c3, c4 = st.columns(2)
    c3.plotly_chart(curves.confusion(rows[settings.target], rows[scoring.PROBA], threshold,
                                     title=f"Production confusion matrix at threshold {threshold:.2f}"),
                    width="stretch")
    c4.plotly_chart(scoring_charts.proba_histogram(
        {"test": test[scoring.PROBA], "production": scored[scoring.PROBA]}, threshold), width="stretch")
    st.plotly_chart(charts.shot_chart(rows, color="outcome",
                                      title=f"Production shots: correct vs incorrect at threshold {threshold:.2f}"),
                    width="stretch")
else:
    st.info("This batch has no labels: only the P(made) distribution can be compared.")
    st.plotly_chart(scoring_charts.proba_histogram(
        {"test": test[scoring.PROBA], "production": scored[scoring.PROBA]}, threshold), width="stretch")
