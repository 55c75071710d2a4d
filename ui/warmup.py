"""The other pages' heavy imports, done in the background once the home page is drawn.

A fresh app spends seconds (on two cores) importing plotly, scikit-learn, MLflow and building
plotly's validators the first time a page needs them; the home page needs none of them to show
its status. Started at the end of the home page, a daemon thread imports them while the analyst
reads it, so that the first Compare, Production or Drift page opens without that wait. Python's
import lock makes a page that needs a module mid-import simply wait for it, as it would have.
"""
from __future__ import annotations

import importlib
import threading

MODULES = ("plotly.graph_objects", "sklearn.metrics", "mlflow", "core.charts.evaluation", "core.charts.drift",
           "core.modeling.comparison", "core.modeling.registry", "core.monitoring.check")
_lock = threading.Lock()
_thread: threading.Thread | None = None  # once per process: imports are process-wide


def _warm() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing: the page that needs it says so itself
            continue
    import plotly.graph_objects as go

    # plotly builds its validators and loads the template on first use: a figure like the pages' does it
    go.Figure(go.Scatter(x=[0], y=[0]), layout=dict(template="plotly_white")).to_dict()


def start() -> None:
    """Start the background imports (once per process; later calls do nothing)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_warm, name="workbench-warmup", daemon=True)
            _thread.start()
