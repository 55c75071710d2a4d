"""The sidebar's dataset picker: which dataset this browser session works on.

Every page calls `active_settings()` instead of `Settings.from_env()`. It draws a select box of
the known datasets (the built-in ones and the analyst's own, under `catalog.user_dir(home)`)
and returns the settings of the chosen one. The choice lives in this session's
`st.session_state`, so two people using the app never switch each other's dataset; its default
is the environment's (`WORKBENCH_DATASET`, else the home's active dataset, else Kobe).

Switching drops every other key of the session state: results, forms and uploads belong to the
dataset they were made on and must never be shown beside another one.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core import catalog
from core.config import Settings, dataset_from_env, home_from_env
from core.data.target_task import predicts
from core.dataset import DatasetError, DatasetSpec
from ui import session_keys
from ui.pages import ensure_navigation
from ui.text import md

LABEL_ROOM = 32  # characters the sidebar's select box shows of an option


@st.cache_resource(show_spinner=False, max_entries=256)
def _load(path: str, mtime: float) -> DatasetSpec:
    """One definition, parsed once per version of its file (specs are frozen: safe to share)."""
    return catalog.load(Path(path))


def known_datasets(home: Path) -> tuple[dict[str, DatasetSpec], dict[str, str]]:
    """({name: definition} of every readable dataset, {name: error} of the unreadable ones)."""
    specs: dict[str, DatasetSpec] = {}
    broken: dict[str, str] = {}
    for name, path in sorted(catalog.available([catalog.user_dir(home)]).items()):
        try:
            specs[name] = _load(str(path), path.stat().st_mtime)
        except (DatasetError, OSError) as err:
            broken[name] = str(err)
    return specs, broken


def option_label(spec: DatasetSpec, room: int = LABEL_ROOM) -> str:
    """A dataset as the select box shows it: its title and its name, e.g. 'Kobe Bryant shots (kobe)';
    a long title is shortened so that the whole label fits in `room` characters and the name stays in view."""
    width = max(10, room - len(spec.name) - 3)
    title = spec.title if len(spec.title) <= width else spec.title[:width - 1].rstrip(" ,;:-") + "…"
    return f"{title} ({spec.name})"


def _default_dataset(home: Path) -> DatasetSpec:
    """The environment's dataset (WORKBENCH_DATASET, else the home's active one); the built-in
    default when that one cannot be read."""
    try:
        return dataset_from_env(os.environ, home)
    except DatasetError as err:
        st.sidebar.error(f"{md(err)} Using the built-in {catalog.DEFAULT_DATASET!r} dataset instead.")
        return catalog.find(catalog.DEFAULT_DATASET)


def _on_switch() -> None:
    """The select box changed: keep the new choice, drop the old dataset's session state."""
    choice = st.session_state.get(session_keys.DATASET_CHOICE)
    if choice == st.session_state.get(session_keys.DATASET):
        return
    for key in list(st.session_state.keys()):
        if key not in session_keys.KEEP_ON_DATASET_SWITCH:
            del st.session_state[key]
    st.session_state[session_keys.DATASET] = choice


def use_dataset(name: str) -> None:
    """Make `name` this session's dataset (e.g. one just added) and drop the old one's state;
    the caller reruns the page."""
    for key in list(st.session_state.keys()):
        if key != session_keys.DATASET:
            del st.session_state[key]
    st.session_state[session_keys.DATASET] = name


def active_settings() -> Settings:
    """Draw the sidebar's dataset select box and return the settings of this session's dataset."""
    ensure_navigation()  # every page starts here: a first deep link joins the app's navigation
    home = home_from_env()
    specs, broken = known_datasets(home)
    chosen = st.session_state.get(session_keys.DATASET)
    if chosen not in specs:  # first visit, or the chosen dataset was removed
        default = _default_dataset(home)
        specs.setdefault(default.name, default)
        chosen = default.name
        st.session_state[session_keys.DATASET] = chosen
    # Set the box's value on every run, even when its key already holds it: Streamlit tells the
    # select boxes of different pages apart (the page is part of a widget's identity), so after a
    # page switch this page's box is a new widget that would show its first option (Kobe) while
    # the key still held the old page's value. Through the state (not `index`), so that the
    # browser's box shows it as well.
    st.session_state[session_keys.DATASET_CHOICE] = chosen
    names = list(specs)
    with st.sidebar:
        st.selectbox("Dataset", names, key=session_keys.DATASET_CHOICE,
                     format_func=lambda n: option_label(specs[n]), on_change=_on_switch,
                     help="The dataset every page of this browser session works on. Your choice does not "
                          "change anyone else's. Add your own dataset on the Data page.")
        spec = specs[chosen]
        st.caption(f"**{spec.name}**: predicts {md(predicts(spec.target))} from "
                   f"{len(spec.features)} feature{'s' if len(spec.features) != 1 else ''}.")
        if broken:
            with st.expander(f"{len(broken)} dataset(s) could not be read"):
                for name, error in broken.items():
                    st.caption(f"**{md(name)}**: {md(error)}")
    return Settings.from_env(dataset=spec)
