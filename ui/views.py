"""The active dataset's own view module (e.g. Kobe's court), loaded once per dataset."""
from __future__ import annotations

from types import ModuleType

import streamlit as st

from core import catalog
from core.dataset import DatasetSpec


@st.cache_resource(show_spinner=False)
def _view(name: str, folder: str, _spec: DatasetSpec) -> ModuleType | None:
    # keyed by the dataset's name and folder; the spec itself is not hashed (leading underscore)
    return catalog.load_view(_spec)


def view_of(spec: DatasetSpec) -> ModuleType | None:
    """The dataset's view (None when its definition names none)."""
    if not spec.view:
        return None
    return _view(spec.name, str(spec.folder), spec)
