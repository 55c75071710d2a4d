"""Kobe Workbench home: page setup and the pipeline's status at a glance."""

import streamlit as st

from core.pipeline import pipeline_status
from ui.dataset_picker import active_settings
from ui.pages import page_of

st.set_page_config(page_title="Kobe Workbench", layout="wide")

settings = active_settings()
spec = settings.dataset
st.title("Kobe Workbench")
st.caption(f"From raw data to a served, monitored model: prepare → train → compare → serve → score production → "
           f"watch for drift. Dataset: **{spec.title}** (predict `{spec.target.column}` = {spec.positive_name}).")

status = pipeline_status(settings)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Data", "ready" if status.data_prepared else "not prepared", help=status.data_detail)
c2.metric("Champion model", f"v{status.champion_version}" if status.champion_version else "none",
          help=status.champion_detail)
c3.metric("Model server", "up" if status.server_running else "down", help=status.server_detail)
c4.metric("Last drift check", status.last_check, help=status.last_check_detail)

if status.last_check != "none":
    st.caption(f"Last drift check: {status.last_check_detail}")
st.info(f"**Next step:** {status.next_step}.")
next_page = page_of(status.next_stage)
if next_page:
    st.page_link(next_page, label=f"Go: {status.next_step}", icon=":material/arrow_forward:")

st.subheader("Pages")
st.markdown(
    "- **Data**: acquire and prepare the data, see dev vs prod distributions (and the dataset's own chart).\n"
    "- **Train**: train candidate models with PyCaret, logged to MLflow.\n"
    "- **Compare**: compare candidates' curves, promote a version to champion.\n"
    f"- **Serve**: serve the champion over HTTP and query it {spec.row_noun} by {spec.row_noun}.\n"
    "- **Production**: score the production batch and see whether the model holds.\n"
    "- **Drift**: upload a new batch and check drift and model health, with or without labels."
)
st.caption(f"MLflow store: {status.store}")
