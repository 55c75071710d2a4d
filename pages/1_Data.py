"""Data: acquire and prepare the Kobe data; rows per step, class balance, distributions, shot chart."""
import streamlit as st
from streamlit_option_menu import option_menu

from core import charts, data, session_keys
from core.config import Settings
from core.errors import WorkbenchError
from core.progress import Stopwatch

st.set_page_config(page_title="Data · Kobe Workbench", layout="wide")
settings = Settings.from_env()
st.title("Data")
st.caption("Acquire the raw Kobe shot files, prepare the train/test split, and see how dev (2-point shots) "
           "and prod (3-point shots) differ.")

with st.container(border=True):
    left, right = st.columns([3, 1])
    left.markdown(f"**Prepare data** (PreparacaoDados): keep the six features and the label, drop rows with "
                  f"missing values, stratified split with test share {settings.test_size:.0%} and seed "
                  f"{settings.seed}, log the run to MLflow.")
    if right.button("Prepare data", type="primary", width="stretch"):
        bar = st.progress(0.0, text="Starting…")
        clock = Stopwatch()
        try:
            summary = data.prepare(settings, on_progress=lambda f, step: bar.progress(
                f, text=f"{step} · {clock.seconds:.1f} s"))
        except WorkbenchError as err:
            bar.empty()
            st.error(str(err))
            st.stop()
        st.session_state[session_keys.PREP_SUMMARY] = summary.to_dict()
        st.cache_data.clear()
    summary = st.session_state.get(session_keys.PREP_SUMMARY)
    if summary:
        st.success(f"Prepared {summary['rows']:,} labelled rows ({summary['train_rows']:,} train, "
                   f"{summary['test_rows']:,} test) and {summary['prod_rows']:,} prod rows in "
                   f"{summary['seconds']:.1f} s. MLflow run `{summary['mlflow_run_id']}`.")

if not data.is_prepared(settings):
    st.info("No prepared data yet: click **Prepare data** above (the raw files are downloaded on first use).")
    st.stop()


@st.cache_data(show_spinner=False)
def load(home: str, name: str):
    return data.load_split(settings, name)


@st.cache_data(show_spinner=False)
def load_overview(home: str):
    return data.overview(settings)


home = str(settings.home)
ov = load_overview(home)
view = option_menu(None, ["Overview", "Shot chart", "Distributions"],
                   icons=["table", "bullseye", "bar-chart"], orientation="horizontal", key="data_view")

if view == "Overview":
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Labelled dev rows", f"{ov.steps['dev labelled (no missing values)']:,}")
    m2.metric("Train rows", f"{ov.split_rows['train']:,}")
    m3.metric("Test rows", f"{ov.split_rows['test']:,}")
    m4.metric("Prod rows (labelled)", f"{ov.split_rows['prod']:,}")
    m5.metric("Duplicate feature rows", f"{ov.duplicates:,}", help="Counted, not dropped: identical "
              "feature values with possibly different outcomes.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.row_funnel(ov.steps), width="stretch")
    c2.plotly_chart(charts.class_balance(ov.positive_rate, ov.split_rows), width="stretch")
elif view == "Shot chart":
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.shot_chart(load(home, "filtered"), title="Dev: 2-point shots"),
                    width="stretch")
    c2.plotly_chart(charts.shot_chart(load(home, "prod"), title="Prod: 3-point shots"),
                    width="stretch")
else:
    st.plotly_chart(charts.distributions({"Dev": load(home, "filtered"), "Prod": load(home, "prod")},
                                         settings.features), width="stretch")
