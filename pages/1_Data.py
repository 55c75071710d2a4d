"""Data: acquire and prepare the active dataset; rows per step, class balance, distributions, and the
dataset's own chart when it has a view (Kobe: the shot chart)."""
import streamlit as st
from streamlit_option_menu import option_menu

from core.charts import data as data_charts
from core.charts.words import Words
from core.config import Settings
from core.data import preparation
from ui import progress, session_keys
from ui.views import view_of

st.set_page_config(page_title="Data · Kobe Workbench", layout="wide")
settings = Settings.from_env()
spec = settings.dataset
dev_name, prod_name = f"Dev: {spec.dev_title}", f"Prod: {spec.prod_title}"
st.title("Data")
st.caption(f"{spec.title}: acquire the raw files, prepare the train/test split, and see how dev "
           f"({spec.dev_title}) and prod ({spec.prod_title}) differ. {spec.description}")

with st.container(border=True):
    left, right = st.columns([3, 1])
    left.markdown(f"**Prepare data** (PreparacaoDados): keep the {len(spec.features)} features and the label "
                  f"`{spec.target.column}`, drop rows with "
                  f"missing values, stratified split with test share {settings.test_size:.0%} and seed "
                  f"{settings.seed}, log the run to MLflow.")
    if right.button("Prepare data", type="primary", width="stretch"):
        summary = progress.run_with_progress(lambda on_progress: preparation.prepare(settings, on_progress=on_progress))
        st.session_state[session_keys.PREP_SUMMARY] = summary.to_dict()
        st.cache_data.clear()
    summary = st.session_state.get(session_keys.PREP_SUMMARY)
    if summary:
        st.success(f"Prepared {summary['rows']:,} labelled rows ({summary['train_rows']:,} train, "
                   f"{summary['test_rows']:,} test) and {summary['prod_rows']:,} prod rows in "
                   f"{summary['seconds']:.1f} s. MLflow run `{summary['mlflow_run_id']}`.")

if not preparation.is_prepared(settings):
    st.info("No prepared data yet: click **Prepare data** above (the raw files are downloaded on first use).")
    st.stop()


@st.cache_data(show_spinner=False)
def load(home: str, name: str):
    return preparation.load_split(settings, name)


@st.cache_data(show_spinner=False)
def load_overview(home: str):
    return preparation.overview(settings)


home = str(settings.home)
ov = load_overview(home)
own = view_of(spec)
tabs = ["Overview", *([own.CHART_TITLE] if own is not None else []), "Distributions"]
icons = ["table", *(["bullseye"] if own is not None else []), "bar-chart"]
view = option_menu(None, tabs, icons=icons, orientation="horizontal", key="data_view")

if view == "Overview":
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Labelled dev rows", f"{ov.steps['dev labelled (no missing values)']:,}")
    m2.metric("Train rows", f"{ov.split_rows['train']:,}")
    m3.metric("Test rows", f"{ov.split_rows['test']:,}")
    m4.metric("Prod rows (labelled)", f"{ov.split_rows['prod']:,}" if "prod" in ov.split_rows else "none",
              help=None if "prod" in ov.split_rows else "This dataset sets no production batch apart.")
    m5.metric("Duplicate feature rows", f"{ov.duplicates:,}", help="Counted, not dropped: identical "
              "feature values with possibly different outcomes.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(data_charts.row_funnel(ov.steps), width="stretch")
    c2.plotly_chart(data_charts.class_balance(ov.positive_rate, ov.split_rows, Words.of(spec)), width="stretch")
elif own is not None and view == own.CHART_TITLE:
    c1, c2 = st.columns(2)
    c1.plotly_chart(own.chart(load(home, "filtered"), spec, title=dev_name), width="stretch")
    if preparation.has_prod(settings):
        c2.plotly_chart(own.chart(load(home, "prod"), spec, title=prod_name), width="stretch")
else:
    sets = {"Dev": load(home, "filtered"), **({"Prod": load(home, "prod")} if preparation.has_prod(settings) else {})}
    st.plotly_chart(data_charts.distributions(sets,
                                              settings.features), width="stretch")
