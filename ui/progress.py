"""Progress widgets: a core `on_progress` callback drawn as a bar with the step and elapsed time."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from core.errors import WorkbenchError
from core.progress import ProgressFn, Stopwatch
from ui.text import md


def _widget() -> tuple[Any, ProgressFn]:
    """A progress bar and the callback that moves it (step name and elapsed seconds)."""
    widget = st.progress(0.0, text="Starting…")
    clock = Stopwatch()
    return widget, lambda fraction, step: widget.progress(fraction, text=f"{step} · {clock.seconds:.1f} s")


def bar() -> ProgressFn:
    """A progress bar that stays on the page, and the callback that moves it."""
    return _widget()[1]


def run_with_progress(work: Callable[[ProgressFn], Any]) -> Any:
    """Run `work(on_progress)` under a progress bar; a WorkbenchError is shown as a message and
    stops the page. The bar is removed at the end."""
    widget, on_progress = _widget()
    try:
        return work(on_progress)
    except WorkbenchError as err:
        st.error(md(err))
        st.stop()
    finally:
        widget.empty()
