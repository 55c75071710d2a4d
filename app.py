"""Kobe Workbench: page setup and the one navigation (Home, then the pages/ files); the home page
shows the pipeline's status at a glance."""

import streamlit as st

from ui.pages import NAVIGATION, link, page_of
from ui.text import md


def home() -> None:
    """The home page: what is done, what runs, and the next step."""
    # the title first: everything below reads the dataset definitions and imports pandas and the
    # rest, which a fresh app pays for once (about a second on two cores)
    st.title("Kobe Workbench")
    from core.data.target_task import predicts
    from ui.dataset_picker import active_settings

    settings = active_settings()
    spec = settings.dataset
    st.caption(f"From raw data to a served, monitored model: prepare → train → compare → serve → score production "
               f"→ watch for drift. Dataset: **{md(spec.title)}**, which "
               f"predicts {md(predicts(spec.target))}.")
    from core.pipeline import pipeline_status
    from core.serving import server
    from ui import mlflow_links, warmup
    from ui.served_version import stale_banner

    status = pipeline_status(settings, with_checks=False)  # without MLflow: shown at once
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Data", "ready" if status.data_prepared else "not ready", help=status.data_detail)
    c2.metric("Champion model", f"v{status.champion_version}" if status.champion_version else "none",
              help=md(status.champion_detail))
    served = server.status(settings, with_champion=True)
    c3.metric("Model server", ("stale" if served.stale else "up") if status.server_running else "down",
              help=f"{status.server_detail} ({served.in_step_text})" if served.running else status.server_detail)
    last_check = c4.empty()
    last_check.metric("Last drift check", status.last_check, help=md(status.last_check_detail))
    stale_banner(settings, served, key="home_restart_on_champion")
    # each dataset's server has a port of its own: several run at once
    st.caption(f"Model server of {md(spec.title)}: port {served.port} (`{served.url}`)"
               + (" · running" if served.running else " · its port when started"))
    if status.champion_version:
        st.caption(f"Champion {mlflow_links.version_link(settings, status.champion_version)} in the MLflow UI · "
                   + mlflow_links.ui_hint(settings))

    status = pipeline_status(settings)  # now with the last drift check (MLflow's runs)
    last_check.metric("Last drift check", status.last_check, help=md(status.last_check_detail))
    if status.last_check != "none":
        st.caption(f"Last drift check: {md(status.last_check_detail)}")
    st.info(f"**Next step:** {status.next_step}.")
    link(st, status.next_stage, f"Go: {status.next_step}")

    st.subheader("Pages")
    st.markdown(
        "- **Data**: acquire and prepare the data, see dev vs prod distributions (and the dataset's own chart).\n"
        "- **Train**: train candidate models with PyCaret, logged to MLflow.\n"
        "- **Compare**: compare candidates' curves, promote a version to champion.\n"
        f"- **Serve**: serve the champion over HTTP and query it {md(spec.row_noun)} by {md(spec.row_noun)}.\n"
        "- **Production**: score the production batch and see whether the model holds.\n"
        "- **Drift**: upload a new batch and check drift and model health, with or without labels."
    )
    st.caption(f"MLflow store: {md(status.store)}")
    warmup.start()  # the other pages' imports, while the analyst reads this one


st.set_page_config(page_title="Kobe Workbench", layout="wide")
# no icons: the sidebar would fetch each one from a font server (the app works offline)
pages = [st.Page(home, title="Home", default=True)] + [
    st.Page(path, title=title, url_path=url_path)
    for stage, (path, title, url_path) in NAVIGATION.items() if page_of(stage)]
st.navigation(pages).run()
