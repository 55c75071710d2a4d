"""The app's pages by lifecycle stage: the navigation's entries (file, title, URL path) and the
page of a stage (for links such as the home page's next step)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# stage: (file relative to the app, title in the sidebar, URL path: the one Streamlit's discovery
# of pages/ gave, so that old links and bookmarks still open the same page)
NAVIGATION: dict[str, tuple[str, str, str]] = {
    "data": ("pages/1_Data.py", "Data", "Data"),
    "train": ("pages/2_Train.py", "Train", "Train"),
    "compare": ("pages/3_Compare.py", "Compare", "Compare"),
    "serve": ("pages/4_Serve.py", "Serve", "Serve"),
    "production": ("pages/5_Production.py", "Production", "Production"),
    "drift": ("pages/6_Drift.py", "Drift", "Drift"),
}
PAGES: dict[str, str] = {stage: entry[0] for stage, entry in NAVIGATION.items()}


def page_of(stage: str) -> str | None:
    """The page of a stage, relative to the app (None when there is no such page)."""
    page = PAGES.get(stage)
    return page if page and (ROOT / page).exists() else None


def ensure_navigation() -> None:
    """Make a page opened by its URL as the very first request of a fresh app run inside the
    app's navigation (Home, then the pages), not inside Streamlit's own listing of `pages/`.

    Streamlit decides per process whether a `pages/` folder is listed automatically, and only
    the first `st.navigation` call turns that off; a first request for `/Compare` runs the page
    directly, with a sidebar naming the home page "app". There is no public switch for it: the
    flag is set here as `st.navigation` sets it, and the run starts again, now through `app.py`
    (the page keeps its URL path, so the same page opens).
    """
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def link(where, stage: str, label: str) -> None:
    """A link to the page of `stage` in `where` (a container or `st`), with an arrow; nothing when the
    app has no such page. A page run on its own, outside the app's navigation (AppTest on one page
    file), has no pages to link: the label is shown as text instead."""
    from streamlit.errors import StreamlitPageNotFoundError

    page = page_of(stage)
    if page is None:
        return
    try:
        where.page_link(page, label=label, icon=":material/arrow_forward:")
    except StreamlitPageNotFoundError:
        where.markdown(f":material/arrow_forward: {label} (the {NAVIGATION[stage][1]} page)")
