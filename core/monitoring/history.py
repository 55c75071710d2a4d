"""The monitoring history: the `Monitoramento` runs read back from MLflow (`last_check` for the
home page, `history` for the Drift page's charts and the retraining policy's F1 forecast), with
the checks whose run is still queued (`core.monitoring.run_log`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from core.config import Settings
from core.monitoring.drift_report import RUN_NAME


@dataclass(frozen=True)
class CheckSummary:
    """The latest check at a glance (home page)."""

    run_id: str
    when_ms: int
    batch_name: str
    source: str
    model_version: str
    dataset_drift: bool
    n_drifted: int
    drifted_features: tuple[str, ...]
    est_f1: float | None
    real_f1: float | None
    trustworthy: bool | None
    recommendation: str
    mlflow_pending: bool = False  # queued: its MLflow run is being logged (`run_id` is "" until then)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _runs(settings: Settings, max_results: int) -> list[Any]:
    """The finished `Monitoramento` runs and the checks still queued for theirs
    (`core.monitoring.run_log`: the command line logs its run after its output), newest first."""
    from types import SimpleNamespace

    from core import tracking
    from core.monitoring import run_log

    runs = []
    if tracking.store_exists(settings):  # nothing checked yet; looking creates no store
        runs = tracking.runs(settings, RUN_NAME, status="FINISHED", max_results=max_results)
    queued = run_log.queued(settings)
    if not queued:
        return runs
    logged = {r.data.tags.get(run_log.CHECK_ID_TAG) for r in runs}
    waiting = [SimpleNamespace(info=SimpleNamespace(run_id="", start_time=rec["start_ms"]),
                               data=SimpleNamespace(metrics=rec["metrics"], params=rec["params"], tags=rec["tags"]),
                               pending=True)
               for rec in queued if rec["check_id"] not in logged]
    every = sorted([*runs, *waiting], key=lambda r: int(r.info.start_time or 0), reverse=True)
    return every[:max_results]


def _summary(run: Any) -> CheckSummary:
    m, p, tg = run.data.metrics, run.data.params, run.data.tags
    drifted = tuple(x for x in tg.get("drifted_features", "").split(",") if x)
    return CheckSummary(
        run_id=run.info.run_id, when_ms=int(run.info.start_time or 0), batch_name=p.get("batch_name", ""),
        source=p.get("source", ""), model_version=p.get("model_version", ""),
        dataset_drift=tg.get("dataset_drift") == "true", n_drifted=int(m.get("n_drifted", len(drifted))),
        drifted_features=drifted, est_f1=m.get("est_f1"), real_f1=m.get("real_f1"),
        trustworthy=None if "est_trustworthy" not in m else bool(m["est_trustworthy"]),
        recommendation=tg.get("recommendation", ""), mlflow_pending=bool(getattr(run, "pending", False)),
    )


def last_check(settings: Settings) -> CheckSummary | None:
    """The latest `Monitoramento` run as a summary, or None when no batch was checked yet."""
    runs = _runs(settings, 1)
    return _summary(runs[0]) if runs else None


def history(settings: Settings, max_results: int = 500) -> pd.DataFrame:
    """One row per check, oldest first: time, batch, verdict, estimated/realised F1 and per-feature
    effect sizes (`effect_<feature>`: normalised Wasserstein, or JS for discrete features) and
    verdicts (`drifted_<feature>`: 1.0 when it drifted), under the feature's own name (a run's keys mapped back: `core.tracking.feature_names`)."""
    from core import tracking

    rows = []
    for run in _runs(settings, max_results):
        s = _summary(run)
        m = run.data.metrics
        row: dict[str, Any] = {
            "time": pd.Timestamp(s.when_ms, unit="ms", tz="UTC"), "batch": s.batch_name, "source": s.source,
            "model_version": s.model_version, "rows": m.get("rows"), "dataset_drift": s.dataset_drift,
            "n_drifted": s.n_drifted, "domain_auc": m.get("domain_auc"), "est_f1": s.est_f1,
            "real_f1": s.real_f1, "est_roc_auc": m.get("est_roc_auc"), "real_roc_auc": m.get("real_roc_auc"),
            "trustworthy": s.trustworthy, "run_id": s.run_id, "mlflow_pending": s.mlflow_pending,
        }
        # every estimated and realised figure (multiclass and regression checks log their task's:
        # est_f1_macro, real_rmse, ...), beside the binary columns above
        row.update({k: v for k, v in m.items() if k.startswith(("est_", "real_")) and k not in row})
        effects = {key[len(prefix):]: value for key, value in m.items()
                   for prefix in ("wasserstein_", "js_") if key.startswith(prefix)}
        names = tracking.feature_names(effects, run.data.tags, settings.dataset.features)
        row.update({f"effect_{names[k]}": v for k, v in effects.items()})
        # each feature's verdict (1.0 drifted), under `drifted_<feature>` (the trends' red points)
        flags = {key[len("drift_"):]: value for key, value in m.items() if key.startswith("drift_")}
        flag_names = tracking.feature_names(flags, run.data.tags, settings.dataset.features)
        row.update({f"drifted_{flag_names[k]}": v for k, v in flags.items()})
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["time", "batch", "dataset_drift", "est_f1", "real_f1"])
    return pd.DataFrame(rows).sort_values("time").reset_index(drop=True)


def check_of_batch(settings: Settings, digest: str, model_version: str) -> CheckSummary | None:
    """The latest finished check of the batch with this content digest (`Batch.digest`, the
    SHA-256 its stored file is named after) by this model version, or None: a page re-checking
    the same batch with the same champion reuses that check instead of adding a history point."""
    import re

    from core import tracking

    if not re.fullmatch(r"[0-9a-f]{16,64}", digest) or not re.fullmatch(r"[0-9A-Za-z._-]+", str(model_version)):
        return None  # not a digest or a version: no run can hold it (and nothing unsafe goes into the filter)
    if not tracking.store_exists(settings):
        return None
    flt = (f"attributes.run_name = '{RUN_NAME}' and attributes.status = 'FINISHED' and "
           f"params.batch_digest = '{digest}' and params.model_version = '{model_version}'")
    runs = tracking.client(settings).search_runs([tracking.use(settings)], filter_string=flt,
                                                 order_by=["attributes.start_time DESC"], max_results=1)
    return _summary(runs[0]) if runs else None
