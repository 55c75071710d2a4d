"""The pipeline's status at a glance, for the home page."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core import data, monitoring, serving, tracking
from core.config import Settings


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
    next_page: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pipeline_status(settings: Settings) -> PipelineStatus:
    """Read the status of data, registry and store (cheap: no model is loaded)."""
    prepared = data.is_prepared(settings)
    data_detail = "Prepared splits found in data/05_model_input" if prepared else "Not prepared yet"
    champ = tracking.champion(settings)
    champ_detail = f"{settings.model_name} v{champ.version}" if champ else "No champion registered"
    server = serving.status(settings)
    server_detail = (f"serving v{server.model_version} at {server.url}" if server.running
                     else f"not running (would listen on {server.url})")
    check = monitoring.last_check(settings)
    if check is None:
        last, last_detail = "none", "No batch checked yet (Drift page)"
    else:
        last = "drift" if check.dataset_drift else "no drift"
        last_detail = (f"{check.batch_name}: {check.n_drifted} drifted feature(s)"
                       f"{' (' + ', '.join(check.drifted_features) + ')' if check.drifted_features else ''}. "
                       f"{check.recommendation}")
    store = tracking.store_description(settings)
    if not prepared:
        nxt, page = "Prepare the data", "pages/1_Data.py"
    elif champ is None:
        nxt, page = "Train and register a champion", "pages/2_Train.py"
    elif not server.running:
        nxt, page = "Serve the champion and try a shot", "pages/4_Serve.py"
    else:
        nxt, page = "Score the production batch", "pages/5_Production.py"
    return PipelineStatus(prepared, data_detail, champ.version if champ else None, champ_detail,
                          server.running, server_detail, last, last_detail, store, nxt, page)
