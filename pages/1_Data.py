"""Data: acquire and prepare the active dataset; rows per step, the label per split (class balance,
or a number's spread), distributions, and the dataset's own chart when it has a view (Kobe: the
shot chart)."""
import streamlit as st
from streamlit_option_menu import option_menu

from core.charts import data as data_charts
from core.charts.words import Words
from core.data import acquire, preparation, profile
from core.modeling.tasks import task_kind
from ui import add_dataset, progress, session_keys
from ui.dataset_picker import active_settings
from ui.text import md
from ui.views import view_of

st.set_page_config(page_title="Data · Kobe Workbench", layout="wide")
settings = active_settings()
spec = settings.dataset
dev_name, prod_name = f"Dev: {spec.dev_title}", f"Prod: {spec.prod_title}"
prod_part = (f"and see how dev ({md(spec.dev_title)}) and prod ({md(spec.prod_title)}) differ"
             if preparation.has_prod(settings)
             else f"and see the dev data ({md(spec.dev_title)}); this dataset sets no production batch apart")
st.title(f"Data: {md(spec.title)}")
st.caption(f"Acquire the raw files, prepare the train/test split, {prod_part}. {md(spec.description)}")

with st.expander("Add a dataset: your own CSV or parquet file", expanded=add_dataset.in_progress()):
    add_dataset.panel(settings)

with st.container(border=True):
    left, size_col, seed_col, right = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    kept = (f"the {len(spec.features)} features" if set(spec.model_columns) == set(spec.features) else
            f"the features of every feature set ({len(spec.model_columns)}; the default set uses {len(spec.features)})")
    left.markdown(f"**Prepare data** (PreparacaoDados): keep {kept} and the label "
                  f"{md(spec.target.column)}, drop unlabelled rows and rows missing a feature that may not be "
                  f"missing, {'stratified' if task_kind(spec.task).classifier else 'random'} train/test split, "
                  "log the run to MLflow.")
    test_size = size_col.number_input("Test share", min_value=0.05, max_value=0.5, value=settings.test_size,
                                      step=0.05, format="%.2f", key="prep_test_size",
                                      help="Share of the labelled dev rows held out as the test split "
                                           f"(the CLI's `prepare --test-size`, default {settings.test_size:g}).")
    seed = seed_col.number_input("Seed", min_value=0, max_value=2**31 - 1, value=settings.seed, step=1,
                                 key="prep_seed", help=f"Seed of the split (`prepare --seed`, default {settings.seed}).")
    if right.button("Prepare data", type="primary", width="stretch"):
        summary = progress.run_with_progress(lambda on_progress: preparation.prepare(
            settings, test_size=float(test_size), seed=int(seed), on_progress=on_progress))
        st.session_state[session_keys.PREP_SUMMARY] = summary.to_dict()
        st.cache_data.clear()
    summary = st.session_state.get(session_keys.PREP_SUMMARY)
    if summary:
        prod_rows = f"{summary['prod_rows']:,} prod rows" if preparation.has_prod(settings) else "no prod rows"
        st.success(f"Prepared {summary['rows']:,} labelled rows ({summary['train_rows']:,} train, "
                   f"{summary['test_rows']:,} test"
                   + (f": share {summary['test_size']:g}, seed {summary['seed']}" if "seed" in summary else "")
                   + f") and {prod_rows} in "
                   f"{summary['seconds']:.1f} s. MLflow run `{summary['mlflow_run_id']}`.")

if not preparation.is_prepared(settings):
    st.info(f"No prepared data yet: click **Prepare data** above ({md(acquire.origin_text(settings))}).")
    st.stop()


# keyed by the home, the dataset and its prepared file's time: another dataset or a new preparation is a new entry
@st.cache_data(show_spinner=False, max_entries=32)
def load(home: str, dataset: str, prepared: float, name: str, _settings):
    # keyed by home, dataset and preparation time (`_settings` is what they name, not hashed)
    return preparation.load_split(_settings, name)


@st.cache_data(show_spinner=False, max_entries=16)
def load_overview(home: str, dataset: str, prepared: float, _settings):
    return preparation.overview(_settings)


@st.cache_data(show_spinner=False, max_entries=16)
def load_labels(home: str, dataset: str, prepared: float, splits: tuple[str, ...], _settings):
    # the label of each split, per the target's task (keyed as `load_overview`)
    return profile.label_summary({name: load(home, dataset, prepared, name, _settings)[_settings.target]
                                  for name in splits}, _settings.dataset.target)


key = (str(settings.home), spec.name, settings.train_path.stat().st_mtime)
ov = load_overview(*key, settings)
no_prod = (f"{md(spec.title)} sets no production batch apart: upload a batch on the **Drift** page to compare it "
           "with the training data.")
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
    m5.metric("Duplicate feature rows", f"{ov.duplicates:,}")
    st.caption(f"Labelled dev rows: {md(spec.rows_noun)} with a label and no missing required feature, split into "
               "train and test. Prod rows: the production batch set apart by the definition, with labels. "
               f"Duplicate feature rows: {md(spec.rows_noun)} whose feature values repeat another's (counted, not "
               "dropped; their outcomes may differ).")
    c1, c2 = st.columns(2)
    c1.plotly_chart(data_charts.row_funnel(ov.steps), width="stretch")
    labels = load_labels(*key, tuple(ov.split_rows), settings)
    c2.plotly_chart(data_charts.label_balance(labels, Words.of(spec)), width="stretch")
elif own is not None and view == own.CHART_TITLE:
    c1, c2 = st.columns(2)
    dev_fig = own.chart(load(*key, "filtered", settings), spec, title=dev_name)
    if preparation.has_prod(settings):
        dev_fig, prod_fig = data_charts.same_axes(dev_fig, own.chart(load(*key, "prod", settings), spec, title=prod_name))
        c2.plotly_chart(prod_fig, width="stretch")
    else:
        c2.info(no_prod)
    c1.plotly_chart(dev_fig, width="stretch")
else:
    sets = {"Dev": load(*key, "filtered", settings), **({"Prod": load(*key, "prod", settings)} if preparation.has_prod(settings) else {})}
    if not preparation.has_prod(settings):
        st.info(no_prod)
    st.plotly_chart(data_charts.distributions(sets, spec.features_spec), width="stretch")
