"""Links from the pages into the MLflow UI: a run, a registered model version, and a hint to
start the UI (`python -m core mlflow-ui`) when nothing listens at its address."""
from __future__ import annotations

from core import tracking
from core.config import Settings
from core.serving.ports import port_in_use


def run_url(settings: Settings, run_id: str) -> str:
    """The MLflow UI's page of a run of the dataset's experiment."""
    return tracking.ui_run_url(tracking.ui_base_url(settings), tracking.use(settings), run_id)


def run_urls(settings: Settings, run_ids: list[str]) -> list[str]:
    """`run_url` of each run, looking the experiment up once (not once per run)."""
    base, experiment = tracking.ui_base_url(settings), tracking.use(settings)
    return [tracking.ui_run_url(base, experiment, run_id) for run_id in run_ids]


def version_url(settings: Settings, version: str) -> str:
    """The MLflow UI's page of a registered version of the dataset's model."""
    return tracking.ui_model_version_url(tracking.ui_base_url(settings), settings.model_name, str(version))


def run_link(settings: Settings, run_id: str) -> str:
    """Markdown: the run id, linked to its MLflow UI page."""
    return f"[`{run_id}`]({run_url(settings, run_id)})"


def version_link(settings: Settings, version: str, text: str | None = None) -> str:
    """Markdown: 'vN' (or `text`), linked to the version's MLflow UI page."""
    return f"[{text or f'v{version}'}]({version_url(settings, version)})"


def ui_hint(settings: Settings) -> str:
    """Where the links lead, and how to open the UI when it is not running."""
    if tracking.is_tracking_server(settings):
        return f"Links open the tracking server's MLflow UI at {tracking.ui_base_url(settings)}."
    if port_in_use("127.0.0.1", settings.mlflow_ui_port):
        return f"Links open the MLflow UI at {tracking.ui_base_url(settings)}."
    return (f"Links open the MLflow UI at {tracking.ui_base_url(settings)}: start it with "
            f"`python -m core mlflow-ui` (port: `--port`, or WORKBENCH_MLFLOW_UI_PORT).")
