"""Progress widgets: a core `on_progress` callback drawn as a bar with the step and elapsed time."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from core.errors import WorkbenchError
from core.progress import ProgressFn, Stopwatch


def bar() -> ProgressFn:
    """A progress bar and the callback that moves it (step name and elapsed seconds)."""
    widget = st.progress(0.0, text="Starting…")
    clock = Stopwatch()
    return lambda fraction, step: widget.progress(fraction, text=f"{step} · {clock.seconds:.1f} s")


def run_with_progress(work: Callable[[ProgressFn], Any]) -> Any:
    """Run `work(on_progress)` under a progress bar; a WorkbenchError is shown as a message and
    stops the page. The bar is removed at the end."""
    widget = st.progress(0.0, text="Starting…")
    clock = Stopwatch()
    try:
        return work(lambda f, step: widget.progress(f, text=f"{step} · {clock.seconds:.1f} s"))
    except WorkbenchError as err:
        st.error(str(err))
        st.stop()
    finally:
        widget.empty()
