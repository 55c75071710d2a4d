"""The pipeline's status at a glance (data, champion, model server, last check), for the home page."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.config import Settings
from core.data import preparation
from core.monitoring import history
from core.serving import server
from core.modeling.registry import champion_version


@dataclass(frozen=True)
class PipelineStatus:
    """Each stage of the pipeline: done or not, with a short detail and where to go next."""

    data_prepared: bool
    data_detail: str
    champion_version: str | None
    champion_detail: str
    server_running: bool
    server_detail: str
    last_check: str
    last_check_detail: str
    store: str
    next_step: str
    next_stage: str  # data, train, serve or production: the page that takes the next step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pipeline_status(settings: Settings, with_checks: bool = True) -> PipelineStatus:
    """Read the status of data, registry and store (cheap: no model is loaded, and on the
    embedded store not even MLflow: the Home page is the first thing a fresh app shows).
    `with_checks=False` leaves the last drift check out ("…"): that one reads MLflow's runs, so
    the Home page shows the rest first."""
    from core import tracking  # MLflow, imported here for the store's description only

    prepared = preparation.is_prepared(settings)
    data_detail = "Prepared splits found in data/05_model_input" if prepared else "Not prepared yet"
    version = champion_version(settings)
    champ_detail = f"{settings.model_name} v{version}" if version else "No champion registered"
    served = server.status(settings)
    server_detail = (f"serving v{served.model_version} at {served.url}" if served.running
                     else f"not running (would listen on {served.url})")
    check = history.last_check(settings) if with_checks else None
    if not with_checks:
        last, last_detail = "…", "Reading the drift checks"
    elif check is None:
        last, last_detail = "none", "No batch checked yet (Drift page)"
    else:
        last = "drift" if check.dataset_drift else "no drift"
        last_detail = (f"{check.batch_name}: {check.n_drifted} drifted feature(s)"
                       f"{' (' + ', '.join(check.drifted_features) + ')' if check.drifted_features else ''}. "
                       f"{check.recommendation}")
    store = tracking.store_description(settings)
    if not prepared:
        nxt, page = "Prepare the data", "data"
    elif version is None:
        nxt, page = "Train and register a champion", "train"
    elif not served.running:
        nxt, page = f"Serve the champion and try a {settings.dataset.row_noun}", "serve"
    elif preparation.has_prod(settings):
        nxt, page = "Score the production batch", "production"
    else:  # no production split: the analyst brings the batch
        nxt, page = f"Upload a batch of {settings.dataset.rows_noun} and score it", "production"
    return PipelineStatus(prepared, data_detail, version, champ_detail,
                          served.running, server_detail, last, last_detail, store, nxt, page)
