"""Single-request inference: validate one row against the definition's rules, score it on a
model server, log it to the inference log (`predict_one`), and the same request as `curl`.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from core.config import Settings
from core.data import profile
from core.serving import inference_log
from core.serving.client import Client
from core.serving.server import status


# --------------------------------------------------------------------------- single-shot inference
@dataclass(frozen=True)
class Prediction:
    """One scored row: the positive class's probability, the class at the threshold, version,
    latency and warnings."""

    proba: float
    label: int
    threshold: float
    model_version: str | None
    latency_ms: float
    url: str
    inputs: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    log_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def served_version(settings: Settings, url: str) -> str | None:
    """The model version behind `url` when it is the managed server, else None (unknown)."""
    now = status(settings)
    if now.running and now.url.rstrip("/") == url.rstrip("/"):
        return now.model_version
    return None


def predict_one(
    settings: Settings,
    row: Mapping[str, Any],
    url: str | None = None,
    threshold: float | None = None,
    client: Client | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    log_source: str | None = "serve-page",
) -> Prediction:
    """Validate one row, score it on the server and append it to the inference log.

    `url` defaults to the managed server's address; `ranges` (training min/max per feature)
    adds warnings for values the model never saw; `log_source=None` skips the log.
    Raises `core.data.rules.InvalidInputError` before any request, `ServerNotRunningError` or
    `PredictionError` after.
    """
    clean = settings.dataset.rules.validate_row(row, what=settings.dataset.row_noun)
    threshold = settings.threshold if threshold is None else float(threshold)
    url = url or status(settings).url
    own = client is None
    client = client or Client(url, settings.request_timeout_s, settings.features)
    try:
        t0 = time.perf_counter()
        proba = float(client.predict_rows([list(clean.values())])[0])
        latency_ms = (time.perf_counter() - t0) * 1000.0
    finally:
        if own:
            client.close()
    version = served_version(settings, client.url)
    warnings = tuple(profile.out_of_training_range(clean, ranges, settings.dataset.row_noun)) if ranges else ()
    log_id = None
    if log_source is not None:
        log_id = inference_log.append(settings, clean, proba, threshold, version, latency_ms, log_source)
    return Prediction(
        proba=proba, label=int(proba >= threshold), threshold=threshold, model_version=version,
        latency_ms=round(latency_ms, 3), url=client.url, inputs=clean, warnings=warnings, log_id=log_id,
    )


def curl_example(url: str, row: Mapping[str, float], features: tuple[str, ...]) -> str:
    """The exact request as a copyable `curl` command."""
    body = json.dumps({"dataframe_split": {"columns": list(features), "data": [[row[f] for f in features]]}})
    return (
        f"curl -s -X POST {url.rstrip('/')}/invocations \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )
