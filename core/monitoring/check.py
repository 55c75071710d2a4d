"""A drift check ("Monitoramento"): drift, model health, the stored batch and the MLflow run.

`check(batch, settings)` compares a validated batch with the training reference
(`reference`, `statistics`, `domain`), estimates the champion's performance without labels
(`health`), measures it when labels exist, takes every verdict from `policy`, stores the batch
(`core.data.batch_store`) and logs an MLflow run named `Monitoramento` with the figures and the
report (`drift_report.DriftReport`) as JSON and standalone HTML artifacts (`run_log`: at once, or
queued and logged after the command's output). The champion comes from `champion`.
`check_inference_log` monitors the served requests the same way; `history` reads the runs back.
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.config import Settings
from core.data.batches import Batch
from core.monitoring import domain as domain_classifier
from core.monitoring import health, monitors, policy, reference, statistics
from core.modeling.model_version import ModelVersion
from core.monitoring.champion import champion_model, model_cache_path  # noqa: F401 (their home before)
from core.monitoring.drift_report import RUN_NAME, DriftReport  # noqa: F401
from core.monitoring.run_log import run_metrics  # noqa: F401 (its home before)
from core.progress import ProgressFn, Stopwatch, report


def check(
    batch: Batch,
    settings: Settings,
    *,
    model: ModelVersion,
    source: str = "upload",
    store: bool = True,
    log: bool | str = True,
    domain: bool = True,
    chunking: Any = None,
    on_progress: ProgressFn = None,
) -> DriftReport:
    """Check a validated batch against the training data and `model` (the champion, read once by the
    caller: its version, feature set and threshold); store and log it.

    `store=False` keeps the batch out of `data/08_batches/`; `log=False` skips the MLflow run;
    `log="queue"` queues it, to be logged by `run_log.spawn_drain`'s process (the command line).
    A parquet file too large for memory is checked in record batches by `stream.check_file`,
    with the same result. `chunking` (`chunks.Chunking`, or None): each chunk of the batch is
    judged too (`DriftReport.chunks`), by size or by period (`batch.times`).
    """
    from core.monitoring import outputs

    clock = Stopwatch()
    champ, settings = model, model.scoped(settings)
    report(on_progress, 0.05, "Loading the training reference")
    ref = reference.load_reference(settings)
    report(on_progress, 0.15, "Loading the champion")
    version, model = champion_model(settings, champ)
    report(on_progress, 0.3, "Per-feature drift")
    frame = batch.frame
    counted = statistics.count_features(frame, ref, settings.features)
    report(on_progress, 0.4, "Scoring the batch with the champion")
    out = outputs.model_outputs(model, frame, settings.features, settings.dataset.categorical_features, champ)
    y = frame[settings.target].to_numpy(dtype="float64") if batch.has_labels else None
    mon, mref, rows = monitors.monitor_of(champ), None, None
    if mon.needs_rows:  # the estimate needs each row's features (regression): the reference first
        mref = mon.reference(settings, model, champ)
        rows = mon.rows(mref, frame, out)
    dom_rows = None
    if domain:
        dom_rows = frame.iloc[domain_classifier.batch_positions(len(frame), settings.drift.domain_sample, settings.seed)]
    found: tuple = ()
    if chunking is not None:
        from core.monitoring import chunks

        report(on_progress, 0.45, f"Checking each chunk of {chunking.text()}")
        mref = mref if mref is not None else mon.reference(settings, model, champ)
        found = chunks.judge(frame, out, y, rows, batch.times, chunking, settings=settings, ref=ref, mon=mon,
                             mref=mref, champ=champ, what=batch.name)
    measured = Measured(counted=counted, n_rows=len(frame), proba=out, labels=y, domain_rows=dom_rows,
                        reference=mref, rows=rows)
    return conclude(batch, measured, settings, ref, champ, model, clock, source=source, store=store, log=log,
                    on_progress=on_progress, chunks=found)


@dataclass(frozen=True)
class Measured:
    """What a pass over a batch gathers (at once, or record batch by record batch): the features'
    counts, the champion's outputs (`core.monitoring.outputs`: binary the positive class's
    probability), the labels (NaN where missing; None without labels) and the domain
    classifier's sample of rows (None: no domain classifier)."""

    counted: dict[str, Any]
    n_rows: int
    proba: np.ndarray  # the model's outputs (the name it had when every model was binary)
    labels: np.ndarray | None
    domain_rows: Any
    domain_future: Any = None  # or the domain classifier already running on them (`start_domain`)
    reference: Any = None  # the version's monitoring reference, when loaded before the pass (regression)
    rows: np.ndarray | None = None  # per-row figures of the estimate (regression: `task_health.row_figures`)


def conclude(batch: Batch, m: Measured, settings: Settings, ref: reference.TrainingReference, champ: ModelVersion,
             model: Any, clock: Stopwatch, *, source: str, store: bool, log: bool | str,
             on_progress: ProgressFn = None, chunks: tuple = ()) -> DriftReport:
    """The statistics, the health estimate and the policy's verdict from a pass over a batch
    (`Measured`) by `model`, the fitted model of version `champ`; store the batch and log the run
    (`check`)."""
    from core.files import timestamp

    version = champ.version
    t = settings.drift
    dom_future = m.domain_future
    if dom_future is None and m.domain_rows is not None:
        dom_future = start_domain(settings, ref, m.domain_rows)
    report(on_progress, 0.55, "Statistics and health figures" + ("" if dom_future is None else
                                                                  ", beside the domain classifier"))
    mon = monitors.monitor_of(champ)  # the task kind's monitor: binary, multiclass or regression
    mref = m.reference if m.reference is not None else mon.reference(settings, model, champ)
    stats = statistics.drift_from_counts(m.counted, m.n_rows, settings)
    report(on_progress, 0.7, "Estimating performance without labels")
    parts = mon.measure(mref, m.proba, m.labels, m.rows, champ, settings, ref)
    est, realized, error = parts.estimate, parts.realized, None
    dom = None if dom_future is None else dom_future.result()
    auc = None if dom is None else dom.auc
    judged = policy.batch_verdict(stats, parts, dom, settings, mon.task)
    est, error, verdict, dataset_drift, rules = (judged.estimate, judged.error, judged.verdict, judged.dataset_drift,
                                                 judged.rules)

    stored = None
    if store:
        from core.data import batch_store

        report(on_progress, 0.85, "Storing the batch")
        stored = batch_store.store(batch, settings).path
    result = DriftReport(
        batch=batch.to_dict(), model_version=version, stats=stats, prediction=parts.prediction, label=parts.label,
        domain_auc=auc, dataset_drift=dataset_drift, estimate=est, realized=realized,
        estimate_error=error, test_metrics=parts.test_metrics, estimated_on_test=parts.estimated_on_test,
        reliability_test=parts.reliability_test, reliability_test_calibrated=parts.reliability_test_calibrated,
        reliability_batch=parts.reliability_batch, recommendation=verdict.recommendation, stored_path=stored,
        checked_at=timestamp(), source=source, seconds=round(clock.seconds, 3), thresholds=asdict(t),
        domain=None if dom is None else dom.to_dict(), dataset_drift_rules=rules, verdict=verdict.to_dict(),
        check_id=uuid.uuid4().hex, task=mon.task, prediction_detail=parts.prediction_detail,
        outputs=parts.outputs, words=mon.words(parts, est, settings), chunks=tuple(chunks),
    )
    if log == "queue":
        from core.monitoring import run_log

        report(on_progress, 0.9, "Queueing the Monitoramento run (logged to MLflow after the output)")
        run_log.enqueue(run_log.record(result, settings), settings)
        result = dataclasses.replace(result, mlflow_pending=True)
    elif log:
        report(on_progress, 0.9, "Logging the Monitoramento run to MLflow")
        result = log_run(result, settings)
    if log:  # a recorded check (its id in the history): alerted when it alarms and a receiver is set
        from core.monitoring import alerts

        alerts.send_in_background(result, settings)
    report(on_progress, 1.0, "Done")
    return result


def start_domain(settings: Settings, ref: reference.TrainingReference, rows: Any) -> Any:
    """Start the domain classifier on the batch's sampled rows (`domain.batch_positions`) in a
    thread; returns its `Future` (of a `DomainResult` or None).

    Its trees grow outside the GIL, so it runs beside the statistics, the health figures and,
    for a file read in record batches, the scoring (a second core, when one is free)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="domain")
    try:
        return pool.submit(_domain, settings, ref, rows)
    finally:
        pool.shutdown(wait=False)  # no other task: the thread ends with this one


def _domain(settings: Settings, ref: reference.TrainingReference, rows: Any) -> domain_classifier.DomainResult | None:
    """The domain classifier on the batch's sampled rows against the stored training sample."""
    train = reference.training_sample(settings, ref, settings.features)
    return domain_classifier.domain_check(train, rows, settings.features, settings.drift, settings.seed,
                                          settings.dataset.categorical_features, sampled=True)


# --------------------------------------------------------------------------- MLflow record
def log_run(r: DriftReport, settings: Settings) -> DriftReport:
    """Log a check as an MLflow run named `Monitoramento` now (`run_log.record` / `log_record`:
    one `log_batch` through `MlflowClient`); return the report with its run id. Checks the
    command line queued and whose drain did not finish are logged first (`run_log.drain`,
    skipped while another drain runs)."""
    import dataclasses

    from core.monitoring import run_log

    run_log.drain(settings, wait_s=0)
    run_id = run_log.log_record(run_log.record(r, settings), settings, fresh=True)
    return dataclasses.replace(r, mlflow_run_id=run_id, mlflow_pending=False)


# --------------------------------------------------------------------------- inference log
def inference_log_batch(settings: Settings, n: int = 1000) -> Batch:
    """The inference log's last `n` rows as a batch (features only; the log has no labels). A
    row is one scored row, not one request: a request of 100 rows logs 100 (a sample of a larger one)."""
    from core.data.batches import from_frame
    from core.serving import inference_log

    # in the order the requests were answered: the server's workers write their rows every 0.25 s,
    # each its own, so ids can interleave two workers' requests (chunks by size follow this order)
    logged = inference_log.read_last(settings, n).sort_values(["timestamp", "id"], kind="stable")
    logged = logged.reset_index(drop=True)
    if logged.empty:
        from core.data.batches import BatchError

        raise BatchError(["inference log: no row has been logged yet"], "the inference log",
                         fix="Send requests first (Serve page, or `python -m core predict`), then check again")
    batch = from_frame(logged.loc[:, list(settings.features)], settings, f"inference log (last {len(logged):,} rows)")
    return dataclasses.replace(batch, times=logged["timestamp"].reset_index(drop=True))  # request times


def check_inference_log(settings: Settings, n: int = 1000, on_progress: ProgressFn = None, *,
                        model: ModelVersion) -> DriftReport:
    """Check the last `n` logged rows like an uploaded batch (stored and logged)."""
    return check(inference_log_batch(model.scoped(settings), n), settings, model=model, source="inference_log",
                 on_progress=on_progress)
