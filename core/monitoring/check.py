"""A drift check ("Monitoramento"): drift, model health, the stored batch and the MLflow run.

`check(batch, settings)` compares a validated batch with the training reference
(`reference`, `statistics`, `domain`), estimates the champion's performance without labels
(`health`), measures it when labels exist, takes every verdict from `policy`, stores the batch (`core.data.batch_store`) and logs an MLflow
run named `Monitoramento` with the figures and the report (`drift_report.DriftReport`) as JSON
and standalone HTML artifacts. `check_inference_log` monitors the served requests the same way;
`history` reads the runs back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.data.batches import Batch
from core.monitoring import domain as domain_classifier
from core.monitoring import health, policy, reference, statistics
from core.monitoring.drift_report import RUN_NAME, DriftReport
from core.progress import ProgressFn, Stopwatch, report


# --------------------------------------------------------------------------- the champion
def model_cache_path(settings: Settings, version: str, run_id: str | None) -> Path:
    """Local copy of a registered version for fast loading (see `champion_model`)."""
    return settings.monitoring_dir / "models" / f"{settings.model_name}-v{version}-{(run_id or 'x')[:12]}.joblib"


def champion_model(settings: Settings) -> tuple[str, Any]:
    """The champion's version and model, resolved in the registry (an alias can move).

    The registry's artifact is in skops format, whose import alone takes seconds; a local
    joblib copy of each version, written by this function from the registry's model, is loaded
    instead on later checks (keyed by model name, version and run id).
    """
    import joblib

    from core.errors import TrackingError
    from core.modeling import registry

    info = registry.champion(settings)
    if info is None:
        raise TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")
    path = model_cache_path(settings, info.version, info.run_id)
    if path.exists():
        return info.version, joblib.load(path)
    version, model = registry.load_model(settings, info.version)
    from core.files import atomic_write

    atomic_write(path, lambda tmp: joblib.dump(model, tmp))
    return version, model


def check(
    batch: Batch,
    settings: Settings,
    *,
    source: str = "upload",
    store: bool = True,
    log: bool = True,
    domain: bool = True,
    on_progress: ProgressFn = None,
) -> DriftReport:
    """Check a validated batch against the training data and the champion; store and log it.

    `store=False` keeps the batch out of `data/08_batches/`; `log=False` skips the MLflow run.
    A parquet file too large for memory is checked in record batches by `stream.check_file`,
    with the same result.
    """
    from core.modeling import model_io

    clock = Stopwatch()
    report(on_progress, 0.05, "Loading the training reference")
    ref = reference.load_reference(settings)
    report(on_progress, 0.15, "Loading the champion")
    version, model = champion_model(settings)
    report(on_progress, 0.3, "Per-feature drift")
    frame = batch.frame
    counted = statistics.count_features(frame, ref, settings.features)
    report(on_progress, 0.4, "Scoring the batch with the champion")
    proba = model_io.predict_proba(model, frame, settings.features, settings.dataset.categorical_features)
    y = frame[settings.target].to_numpy(dtype="float64") if batch.has_labels else None
    rows = None
    if domain:
        rows = frame.iloc[domain_classifier.batch_positions(len(frame), settings.drift.domain_sample, settings.seed)]
    measured = Measured(counted=counted, n_rows=len(frame), proba=proba, labels=y, domain_rows=rows)
    return conclude(batch, measured, settings, ref, version, model, clock, source=source, store=store, log=log,
                    on_progress=on_progress)


@dataclass(frozen=True)
class Measured:
    """What a pass over a batch gathers (at once, or record batch by record batch): the features'
    counts, the champion's probabilities, the labels (NaN where missing; None without labels)
    and the domain classifier's sample of rows (None: no domain classifier)."""

    counted: dict[str, Any]
    n_rows: int
    proba: np.ndarray
    labels: np.ndarray | None
    domain_rows: Any


def conclude(batch: Batch, m: Measured, settings: Settings, ref: reference.TrainingReference, version: str,
             model: Any, clock: Stopwatch, *, source: str, store: bool, log: bool,
             on_progress: ProgressFn = None) -> DriftReport:
    """The statistics, the health estimate and the policy's verdict from a pass over a batch
    (`Measured`); store the batch and log the run (`check`)."""
    from core.files import timestamp

    t = settings.drift
    categorical = settings.dataset.categorical_features
    mref = health.load_model_reference(settings, model, version)
    stats = statistics.drift_from_counts(m.counted, m.n_rows, settings)
    prediction = statistics.column_drift(settings.dataset.proba_label, mref.prediction, m.proba, t)
    label = realized = error = rel_batch = None
    proba = m.proba
    if m.labels is not None:
        labelled = np.isfinite(m.labels)
        every = bool(labelled.all())  # no copies then (80 MB at 5,000,000 rows)
        y = m.labels if every else m.labels[labelled]
        p_labelled = proba if every else proba[labelled]
        if ref.positive_rate is not None:
            label = statistics.label_drift(y, ref.positive_rate, ref.n_rows, t)
        realized = health.realized(y, p_labelled, settings.threshold)
        rel_batch = health.reliability(y, p_labelled, t.calibration_bins)
        del y, p_labelled, labelled

    dom = None
    if m.domain_rows is not None:
        report(on_progress, 0.55, "Domain classifier (training vs batch)")
        train = reference.training_sample(settings, ref, settings.features)
        dom = domain_classifier.domain_check(train, m.domain_rows, settings.features, t, settings.seed, categorical,
                                             sampled=True)
    auc = None if dom is None else dom.auc
    dataset_drift, rules = policy.dataset_drift(len(stats.drifted), len(stats.features), dom, t)

    report(on_progress, 0.75, "Estimating performance without labels")
    oor = {k: v.out_of_range for k, v in stats.features.items()}
    est = health.estimate(proba, mref, policy.trust(oor, auc, settings))
    if realized is not None:
        error = {k: getattr(est, k) - realized[k] for k in ("accuracy", "f1", "roc_auc")}
    verdict = policy.judge(test=mref.test_metrics, realized=realized, out_of_range=oor, categorical=categorical,
                           t=t, estimate=est, drift=(dataset_drift, rules), drifted=stats.drifted,
                           prediction_drift=prediction.drift, rows_noun=settings.dataset.rows_noun)

    stored = None
    if store:
        from core.data import batch_store

        report(on_progress, 0.85, "Storing the batch")
        stored = batch_store.store(batch, settings).path
    result = DriftReport(
        batch=batch.to_dict(), model_version=version, stats=stats, prediction=prediction, label=label,
        domain_auc=auc, dataset_drift=dataset_drift, estimate=est, realized=realized,
        estimate_error=error, test_metrics=mref.test_metrics, estimated_on_test=mref.estimated_on_test,
        reliability_test=mref.reliability_raw, reliability_test_calibrated=mref.reliability_calibrated,
        reliability_batch=rel_batch, recommendation=verdict.recommendation, stored_path=stored,
        checked_at=timestamp(), source=source, seconds=round(clock.seconds, 3), thresholds=asdict(t),
        domain=None if dom is None else dom.to_dict(), dataset_drift_rules=rules, verdict=verdict.to_dict(),
    )
    if log:
        report(on_progress, 0.9, "Logging the Monitoramento run to MLflow")
        result = log_run(result, settings)
    report(on_progress, 1.0, "Done")
    return result


# --------------------------------------------------------------------------- MLflow record
def run_metrics(r: DriftReport) -> dict[str, float]:
    """The figures of a check as MLflow metrics (NaN and None left out)."""
    m: dict[str, float | None] = {
        "dataset_drift": float(r.dataset_drift),
        "share_drifted": r.stats.share_drifted,
        "n_drifted": float(r.n_drifted),
        "rows": float(r.batch["n_rows"]),
        "domain_auc": r.domain_auc,
        "domain_auc_low": None if r.domain is None else r.domain["low"],
        "domain_auc_high": None if r.domain is None else r.domain["high"],
        "alarm": float(bool(r.verdict.get("alarm"))) if r.verdict else None,
        "prediction_psi": r.prediction.psi,
        "prediction_wasserstein": r.prediction.wasserstein,
        "prediction_drift": float(r.prediction.drift),
        "est_accuracy": r.estimate.accuracy,
        "est_f1": r.estimate.f1,
        "est_roc_auc": r.estimate.roc_auc,
        "est_trustworthy": float(r.estimate.trustworthy),
        "check_seconds": r.seconds,
    }
    for name, f in r.stats.features.items():
        m[f"psi_{name}"] = f.psi
        m[f"wasserstein_{name}"] = f.wasserstein
        m[f"js_{name}"] = f.js
        m[f"p_value_{name}"] = f.p_value
        m[f"out_of_range_{name}"] = f.out_of_range
        m[f"drift_{name}"] = float(f.drift)
        if f.reports_missing:
            m[f"missing_{name}"] = f.missing_batch
    if r.label is not None:
        m["label_js"] = r.label["js"]
        m["label_drift"] = float(r.label["drift"])
        m["positive_rate"] = r.label["positive_rate_batch"]
    if r.realized is not None:
        for k in ("accuracy", "f1", "roc_auc"):
            m[f"real_{k}"] = r.realized[k]
            m[f"est_error_{k}"] = (r.estimate_error or {}).get(k)
    return {k: float(v) for k, v in m.items() if v is not None and np.isfinite(v)}


def log_run(r: DriftReport, settings: Settings) -> DriftReport:
    """Log a check as an MLflow run named `Monitoramento`; return the report with its run id.

    Through `MlflowClient` in one `log_batch` (params, tags and metrics in one transaction)
    rather than the fluent API's one call each and its source/git context lookup: a third of a
    second less per check."""
    import dataclasses
    import time

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from core import tracking
    from core.monitoring.html import report_html

    exp = tracking.use(settings)
    c = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    params = {"batch_name": r.batch["name"][:250], "batch_digest": r.batch["digest"],
              "model_version": r.model_version, "source": r.source, "stored_path": (r.stored_path or "")[:500]}
    tags = {"dataset_drift": str(r.dataset_drift).lower(), "drifted_features": ",".join(r.stats.drifted),
            "recommendation": r.recommendation[:4900], "alarm": "; ".join(r.verdict.get("alarm", ()))[:4900],
            "dataset_drift_rules": "; ".join(r.dataset_drift_rules)[:4900]}
    run_id = c.create_run(exp, run_name=RUN_NAME).info.run_id
    try:
        now = int(time.time() * 1000)
        c.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in run_metrics(r).items()],
                    params=[Param(k, str(v)) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in tags.items()])
        done = dataclasses.replace(r, mlflow_run_id=run_id)
        c.log_text(run_id, json.dumps(done.to_dict(), default=str, indent=1), "drift_report.json")
        c.log_text(run_id, report_html(done), "drift_report.html")
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    c.set_terminated(run_id, "FINISHED")
    return done


# --------------------------------------------------------------------------- inference log
def inference_log_batch(settings: Settings, n: int = 1000) -> Batch:
    """The Serve page's last `n` requests as a batch (features only; the log has no labels)."""
    from core.data.batches import from_frame
    from core.serving import inference_log

    logged = inference_log.read_last(settings, n)
    if logged.empty:
        from core.data.batches import BatchError

        raise BatchError(["inference log: no request has been logged yet"], "the inference log",
                         fix="Send requests first (Serve page, or `python -m core predict`), then check again")
    return from_frame(logged.loc[:, list(settings.features)], settings, f"inference log (last {len(logged)} requests)")


def check_inference_log(settings: Settings, n: int = 1000, on_progress: ProgressFn = None) -> DriftReport:
    """Check the last `n` logged requests like an uploaded batch (stored and logged)."""
    return check(inference_log_batch(settings, n), settings, source="inference_log", on_progress=on_progress)
