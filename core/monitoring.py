"""A drift check ("Monitoramento"): drift, model health, the stored batch and the MLflow run.

`check(batch, settings)` compares a validated batch with the training reference
(`core.drift`), estimates the champion's performance without labels (`core.health`), measures
it when labels exist, stores the batch (`core.batches`) and logs an MLflow run named
`Monitoramento` with the figures and the report as JSON and standalone HTML artifacts.
`history` and `last_check` read those runs back; `check_inference_log` monitors the Serve
page's requests the same way.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import drift, health
from core.config import Settings
from core.progress import ProgressFn, Stopwatch, report
from core.validation import Batch

RUN_NAME = "Monitoramento"


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

    from core import tracking
    from core.errors import TrackingError

    info = tracking.champion(settings)
    if info is None:
        raise TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")
    path = model_cache_path(settings, info.version, info.run_id)
    if path.exists():
        return info.version, joblib.load(path)
    version, model = tracking.load_model(settings, info.version)
    from core.files import atomic_write

    atomic_write(path, lambda tmp: joblib.dump(model, tmp))
    return version, model


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class DriftReport:
    """Everything one check found; `to_dict` is the JSON report, `summary` the CLI's object."""

    batch: dict[str, Any]
    model_version: str
    stats: drift.DriftStats
    prediction: drift.FeatureDrift
    label: dict[str, Any] | None
    domain_auc: float | None
    dataset_drift: bool
    estimate: health.Estimate
    realized: dict[str, float] | None
    estimate_error: dict[str, float] | None
    test_metrics: dict[str, float]
    estimated_on_test: dict[str, float]
    reliability_test: health.Reliability
    reliability_test_calibrated: health.Reliability
    reliability_batch: health.Reliability | None
    recommendation: str
    stored_path: str | None
    checked_at: str
    source: str
    seconds: float
    mlflow_run_id: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def n_drifted(self) -> int:
        return len(self.stats.drifted)

    @property
    def n_features(self) -> int:
        return len(self.stats.features)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = self.stats.to_dict()
        d["n_drifted"] = self.n_drifted
        d["n_features"] = self.n_features
        return d

    def summary(self) -> dict[str, Any]:
        """The `python -m core drift` JSON object."""
        est = self.estimate
        return {
            "dataset_drift": self.dataset_drift,
            "features": {k: v.summary() for k, v in self.stats.features.items()},
            "prediction_drift": {"psi": self.prediction.psi, "wasserstein": self.prediction.wasserstein,
                                 "p_value": self.prediction.p_value, "mean_test": self.prediction.mean_ref,
                                 "mean_batch": self.prediction.mean_batch, "drift": self.prediction.drift},
            "label_drift": self.label,
            "domain_auc": self.domain_auc,
            "estimated_performance": {"accuracy": est.accuracy, "f1": est.f1, "roc_auc": est.roc_auc,
                                      "trustworthy": est.trustworthy, "reasons": list(est.reasons)},
            "realized_performance": (None if self.realized is None else
                                     {k: self.realized[k] for k in ("accuracy", "f1", "roc_auc")}),
            "recommendation": self.recommendation,
            "model_version": self.model_version,
            "batch": {k: self.batch[k] for k in ("name", "digest", "n_rows", "n_labelled")},
            "stored_path": self.stored_path,
            "mlflow_run_id": self.mlflow_run_id,
            "seconds": self.seconds,
        }


def recommend(dataset_drift: bool, stats: drift.DriftStats, prediction: drift.FeatureDrift,
              est: health.Estimate, realized: dict[str, float] | None, test: dict[str, float],
              drop: float) -> str:
    """One sentence saying what to do about this batch."""
    drifted = ", ".join(stats.drifted) or "none"
    if realized is not None:
        f1_drop = test["f1"] - realized["f1"]
        auc_drop = test["roc_auc"] - realized["roc_auc"] if np.isfinite(realized["roc_auc"]) else 0.0
        if f1_drop >= drop or auc_drop >= drop:
            return (f"Retrain: on the labelled rows F1 is {realized['f1']:.3f} (test {test['f1']:.3f}) and "
                    f"ROC-AUC {realized['roc_auc']:.3f} (test {test['roc_auc']:.3f}); drifted features: {drifted}.")
    if not est.trustworthy:
        return ("Do not trust the model on batches like this one without labels: it lies outside the "
                f"training data ({est.reasons[0]}). Collect labels for these shots and retrain on data "
                "that covers them.")
    if est.f1 <= test["f1"] - drop or est.roc_auc <= test["roc_auc"] - drop:
        return (f"Plan a retrain: the estimated F1 is {est.f1:.3f} (test {test['f1']:.3f}) and ROC-AUC "
                f"{est.roc_auc:.3f} (test {test['roc_auc']:.3f}); drifted features: {drifted}.")
    if dataset_drift or prediction.drift:
        return (f"Watch the next batches and collect labels: features drifted ({drifted}) but the estimated "
                f"performance holds (F1 {est.f1:.3f}, test {test['f1']:.3f}).")
    return "No action needed: the batch looks like the training data and the estimated performance holds."


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
    """
    from core import tracking
    from core.files import timestamp

    clock = Stopwatch()
    t = settings.drift
    report(on_progress, 0.05, "Loading the training reference")
    ref = drift.load_reference(settings)
    report(on_progress, 0.15, "Loading the champion")
    version, model = champion_model(settings)
    mref = health.load_model_reference(settings, model, version)

    report(on_progress, 0.3, "Per-feature drift")
    frame = batch.frame
    stats = drift.feature_drift(frame, ref, settings)

    report(on_progress, 0.4, "Scoring the batch with the champion")
    proba = tracking.predict_proba(model, frame, settings.features)
    prediction = drift.column_drift("P(made)", mref.prediction, proba, t)

    label = realized = error = rel_batch = None
    if batch.has_labels:
        y_all = frame[settings.target].to_numpy(dtype="float64")
        labelled = np.isfinite(y_all)
        y = y_all[labelled]
        if ref.positive_rate is not None:
            label = drift.label_drift(y, ref.positive_rate, ref.n_rows, t)
        realized = health.realized(y, proba[labelled], settings.threshold)
        rel_batch = health.reliability(y, proba[labelled], t.calibration_bins)

    auc = None
    if domain:
        report(on_progress, 0.55, "Domain classifier (training vs batch)")
        train = pd.read_parquet(settings.train_path, columns=list(settings.features))
        auc = drift.domain_auc(train, frame, settings.features, t, settings.seed)
    dataset_drift = bool(stats.dataset_drift or (auc is not None and auc >= t.domain_auc))

    report(on_progress, 0.75, "Estimating performance without labels")
    reasons = health.trust({k: v.out_of_range for k, v in stats.features.items()}, auc, settings)
    est = health.estimate(proba, mref, reasons)
    if realized is not None:
        error = {k: getattr(est, k) - realized[k] for k in ("accuracy", "f1", "roc_auc")}
    advice = recommend(dataset_drift, stats, prediction, est, realized, mref.test_metrics, t.performance_drop)

    stored = None
    if store:
        from core import batches

        report(on_progress, 0.85, "Storing the batch")
        stored = batches.store(batch, settings).path
    result = DriftReport(
        batch=batch.to_dict(), model_version=version, stats=stats, prediction=prediction, label=label,
        domain_auc=auc, dataset_drift=dataset_drift, estimate=est, realized=realized,
        estimate_error=error, test_metrics=mref.test_metrics, estimated_on_test=mref.estimated_on_test,
        reliability_test=mref.reliability_raw, reliability_test_calibrated=mref.reliability_calibrated,
        reliability_batch=rel_batch, recommendation=advice, stored_path=stored, checked_at=timestamp(),
        source=source, seconds=round(clock.seconds, 3), thresholds=asdict(t),
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
    """Log a check as an MLflow run named `Monitoramento`; return the report with its run id."""
    import dataclasses

    import mlflow

    from core import tracking
    from core.drift_html import report_html

    exp = tracking.use(settings)
    with mlflow.start_run(run_name=RUN_NAME, experiment_id=exp) as run:
        mlflow.log_params({
            "batch_name": r.batch["name"][:250], "batch_digest": r.batch["digest"],
            "model_version": r.model_version, "source": r.source,
            "stored_path": (r.stored_path or "")[:500],
        })
        mlflow.set_tags({"dataset_drift": str(r.dataset_drift).lower(),
                         "drifted_features": ",".join(r.stats.drifted),
                         "recommendation": r.recommendation[:4900]})
        mlflow.log_metrics(run_metrics(r))
        done = dataclasses.replace(r, mlflow_run_id=run.info.run_id)
        mlflow.log_text(json.dumps(done.to_dict(), default=str, indent=1), "drift_report.json")
        mlflow.log_text(report_html(done), "drift_report.html")
    return done


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _runs(settings: Settings, max_results: int) -> list[Any]:
    from core import tracking

    return tracking.runs(settings, RUN_NAME, status="FINISHED", max_results=max_results)


def _summary(run: Any) -> CheckSummary:
    m, p, tg = run.data.metrics, run.data.params, run.data.tags
    drifted = tuple(x for x in tg.get("drifted_features", "").split(",") if x)
    return CheckSummary(
        run_id=run.info.run_id, when_ms=int(run.info.start_time or 0), batch_name=p.get("batch_name", ""),
        source=p.get("source", ""), model_version=p.get("model_version", ""),
        dataset_drift=tg.get("dataset_drift") == "true", n_drifted=int(m.get("n_drifted", len(drifted))),
        drifted_features=drifted, est_f1=m.get("est_f1"), real_f1=m.get("real_f1"),
        trustworthy=None if "est_trustworthy" not in m else bool(m["est_trustworthy"]),
        recommendation=tg.get("recommendation", ""),
    )


def last_check(settings: Settings) -> CheckSummary | None:
    """The latest `Monitoramento` run as a summary, or None when no batch was checked yet."""
    runs = _runs(settings, 1)
    return _summary(runs[0]) if runs else None


def history(settings: Settings, max_results: int = 500) -> pd.DataFrame:
    """One row per check, oldest first: time, batch, verdict, estimated/realised F1 and per-feature
    effect sizes (`effect_<feature>`: normalised Wasserstein, or JS for discrete features)."""
    rows = []
    for run in _runs(settings, max_results):
        s = _summary(run)
        m = run.data.metrics
        row: dict[str, Any] = {
            "time": pd.Timestamp(s.when_ms, unit="ms", tz="UTC"), "batch": s.batch_name, "source": s.source,
            "model_version": s.model_version, "rows": m.get("rows"), "dataset_drift": s.dataset_drift,
            "n_drifted": s.n_drifted, "domain_auc": m.get("domain_auc"), "est_f1": s.est_f1,
            "real_f1": s.real_f1, "est_roc_auc": m.get("est_roc_auc"), "real_roc_auc": m.get("real_roc_auc"),
            "trustworthy": s.trustworthy, "run_id": s.run_id,
        }
        for key, value in m.items():
            for prefix in ("wasserstein_", "js_"):
                if key.startswith(prefix):
                    row[f"effect_{key[len(prefix):]}"] = value
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["time", "batch", "dataset_drift", "est_f1", "real_f1"])
    return pd.DataFrame(rows).sort_values("time").reset_index(drop=True)


# --------------------------------------------------------------------------- inference log
def inference_log_batch(settings: Settings, n: int = 1000) -> Batch:
    """The Serve page's last `n` requests as a batch (features only; the log has no labels)."""
    from core import inference_log
    from core.validation import from_frame

    logged = inference_log.read_last(settings, n)
    return from_frame(logged.loc[:, list(settings.features)], settings, f"inference log (last {len(logged)} requests)")


def check_inference_log(settings: Settings, n: int = 1000, on_progress: ProgressFn = None) -> DriftReport:
    """Check the last `n` logged requests like an uploaded batch (stored and logged)."""
    return check(inference_log_batch(settings, n), settings, source="inference_log", on_progress=on_progress)


def feature_rows(r: DriftReport) -> list[dict[str, Any]]:
    """One display row per feature (Drift page table)."""
    rows = []
    for name, f in r.stats.features.items():
        rows.append({
            "feature": name, "kind": f.kind, "drift": f.drift, "PSI": f.psi, "Wasserstein / σ": f.wasserstein,
            "JS distance": f.js, "p-value (info only)": f"{f.p_value:.2g} ({'KS' if f.test == 'ks' else 'χ²'})",
            "outside training range": f.out_of_range, "mean (training)": f.mean_ref, "mean (batch)": f.mean_batch,
        })
    return rows


def health_rows(r: DriftReport) -> list[dict[str, Any]]:
    """Test, estimated and realised figures per metric (Drift page table)."""
    rows = []
    for key, label in (("accuracy", "accuracy"), ("f1", "F1"), ("roc_auc", "ROC-AUC")):
        rows.append({
            "metric": label, "test split": r.test_metrics[key],
            "estimated (no labels)": getattr(r.estimate, key),
            "realised (labels)": None if r.realized is None else r.realized[key],
            "estimate error": None if r.estimate_error is None else r.estimate_error[key],
        })
    return rows
