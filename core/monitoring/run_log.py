"""The `Monitoramento` run of a check: its record, logged to MLflow at once or after the command.

A check's record (`record`) holds what its MLflow run gets: params, tags, metrics and the report
as JSON and standalone HTML artifacts. A feature whose name MLflow refuses in a key (e.g.
`<img src=x>`) is keyed by `core.tracking.metric_key`; the mapping goes with the run (the
`feature_keys.json` artifact, and the `workbench.feature_keys` tag that the history reads). `log_record` logs it in the calling process
(`check.log_run`: the pages, the API, `drift --wait-for-mlflow`). The command line instead queues
it (`enqueue`: one JSON file under `data/09_monitoring/pending_runs/`, written atomically before
the command prints anything) and starts a detached process (`spawn_drain`) that waits for the
command to exit, then logs every queued record and deletes its file (`drain`): importing MLflow
and opening its store take 2-4 s, more than the rest of a 1,000,000-row check.

Nothing is lost: a record leaves the queue only once its run is FINISHED in the store. A drain
killed half-way leaves its record queued; the next drain (started by the next `drift` command,
or by any check that logs at once) finds the run by the record's `workbench.check_id` tag:
a FINISHED run is kept (the file just goes), an unfinished one is deleted and logged again, so
no check is logged twice. Until then the queued checks are part of the history
(`core.monitoring.history`), so the pages and the retraining policy see them at once. A record
whose store differs from the current one (`MLFLOW_TRACKING_URI` changed) waits for a process
that uses its store.

The run's id is known once it is logged: the CLI prints `mlflow_pending: true` with the check's
`check_id`; the run is the one tagged `workbench.check_id = <check_id>` (e.g.
`MlflowClient.search_runs(..., filter_string="tags.\\`workbench.check_id\\` = '<check_id>'")`),
or run `drift --wait-for-mlflow` to log it before the output.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings
from core.monitoring.drift_report import RUN_NAME, DriftReport
from core.tracking import FEATURE_KEYS_FILE, FEATURE_KEYS_TAG, TAG_MAX, key_map

CHECK_ID_TAG = "workbench.check_id"
FORMAT = 1
REPORT_JSON = "drift_report.json"
REPORT_HTML = "drift_report.html"
PARENT_WAIT_S = 120.0  # a drain waits this long at most for the command that started it to exit
LOCK_WAIT_S = 600.0  # ... and for another drain to finish


# --------------------------------------------------------------------------- the record
def run_metrics(r: DriftReport) -> dict[str, float]:
    """The figures of a check as MLflow metrics (NaN and None left out); a feature's figures are
    keyed by `core.tracking.metric_key` of its name (`psi_<key>`, ...)."""
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
        "prediction_js": r.prediction.js,
        "prediction_wasserstein": r.prediction.wasserstein,
        "prediction_drift": float(r.prediction.drift),
        "est_accuracy": r.estimate.accuracy,
        "est_f1": r.estimate.f1,
        "est_roc_auc": r.estimate.roc_auc,
        "est_trustworthy": float(r.estimate.trustworthy),
        "check_seconds": r.seconds,
    }
    keys = key_map(r.stats.features)  # a feature's name as MLflow takes it in a key
    for name, f in r.stats.features.items():
        key = keys[name]
        m[f"psi_{key}"] = f.psi
        m[f"wasserstein_{key}"] = f.wasserstein
        m[f"js_{key}"] = f.js
        m[f"p_value_{key}"] = f.p_value
        m[f"out_of_range_{key}"] = f.out_of_range
        m[f"drift_{key}"] = float(f.drift)
        if f.reports_missing:
            m[f"missing_{key}"] = f.missing_batch
    if r.label is not None:
        m["label_js"] = r.label.get("js")  # binary and multiclass (regression: PSI and Wasserstein)
        m["label_drift"] = float(r.label["drift"])
        m["positive_rate"] = r.label.get("positive_rate_batch")
        m["label_psi"] = r.label.get("psi")
    for k, v in r.estimate.figures.items():  # multiclass and regression: the task's estimated figures
        m[f"est_{k}"] = v
    if r.realized is not None:
        for k in r.keys:
            m[f"real_{k}"] = r.realized.get(k)
            m[f"est_error_{k}"] = (r.estimate_error or {}).get(k)
    for i, f in enumerate(r.prediction_detail.values()):  # multiclass: class i's probability's drift
        m[f"prediction_class{i}_psi"] = f.psi
        m[f"prediction_class{i}_drift"] = float(f.drift)
    return {k: float(v) for k, v in m.items() if v is not None and np.isfinite(v)}


def placeholder(check_id: str) -> str:
    """What stands for the run id in a record's artifacts until the run exists."""
    return f"mlflow-run-of-check-{check_id}"


def record(r: DriftReport, settings: Settings) -> dict[str, Any]:
    """The check's MLflow run as plain data (JSON-ready): params, tags, metrics, artifacts (whose
    run id is `placeholder(check_id)` until logged), when and where it goes."""
    import dataclasses

    from core.monitoring.html import report_html

    token = placeholder(r.check_id)
    shown = dataclasses.replace(r, mlflow_run_id=token, mlflow_pending=False)
    params = {"batch_name": r.batch["name"][:250], "batch_digest": r.batch["digest"],
              "model_version": r.model_version, "source": r.source, "stored_path": (r.stored_path or "")[:500]}
    tags = {"dataset_drift": str(r.dataset_drift).lower(), "drifted_features": ",".join(r.stats.drifted),
            "recommendation": r.recommendation[:4900], "alarm": "; ".join(r.verdict.get("alarm", ()))[:4900],
            "dataset_drift_rules": "; ".join(r.dataset_drift_rules)[:4900], CHECK_ID_TAG: r.check_id}
    artifacts = {REPORT_JSON: json.dumps(shown.to_dict(), default=str, indent=1), REPORT_HTML: report_html(shown)}
    keys = key_map(r.stats.features)
    changed = {key: name for name, key in keys.items() if key != name}
    if changed:  # names MLflow refuses in a key: the mapping goes with the run
        artifacts[FEATURE_KEYS_FILE] = json.dumps(keys, indent=1)
        if len(json.dumps(changed)) <= TAG_MAX:
            tags[FEATURE_KEYS_TAG] = json.dumps(changed)
    return {
        "format": FORMAT, "check_id": r.check_id, "start_ms": int(time.time() * 1000),
        "tracking_uri": settings.tracking_uri, "experiment": settings.experiment_name, "run_name": RUN_NAME,
        "params": {k: str(v) for k, v in params.items()}, "tags": tags, "metrics": run_metrics(r), "placeholder": token,
        "artifacts": artifacts,
    }


def log_record(rec: dict[str, Any], settings: Settings, *, fresh: bool = False) -> str:
    """Log a record as a FINISHED `Monitoramento` run and return its id. Unless `fresh` (a record
    never handed to a drain), a run already holding its check id is reused when FINISHED, or
    deleted and logged again when not (a drain killed half-way)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from core import tracking

    exp = tracking.use(settings)  # the store and the settings' experiment exist
    c = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    if rec["experiment"] != settings.experiment_name:  # queued under another definition's experiment
        found = c.get_experiment_by_name(rec["experiment"])
        exp = found.experiment_id if found else c.create_experiment(
            rec["experiment"], artifact_location=settings.artifact_location)
    if not fresh:
        for run in c.search_runs([exp], filter_string=f"tags.`{CHECK_ID_TAG}` = '{rec['check_id']}'",
                                 max_results=10):
            if run.info.status == "FINISHED":
                return run.info.run_id
            c.delete_run(run.info.run_id)
    start = int(rec["start_ms"])
    run_id = c.create_run(exp, start_time=start, run_name=rec["run_name"]).info.run_id
    try:
        c.log_batch(run_id, metrics=[Metric(k, float(v), start, 0) for k, v in rec["metrics"].items()],
                    params=[Param(k, v) for k, v in rec["params"].items()],
                    tags=[RunTag(k, v) for k, v in rec["tags"].items()])
        for name, text in rec["artifacts"].items():
            c.log_text(run_id, text.replace(rec["placeholder"], run_id), name)
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    c.set_terminated(run_id, "FINISHED")
    return run_id


# --------------------------------------------------------------------------- the queue
def queue_dir(settings: Settings) -> Path:
    """Where the checks waiting for their MLflow run are kept."""
    return settings.monitoring_dir / "pending_runs"


def enqueue(rec: dict[str, Any], settings: Settings) -> Path:
    """Queue a record (atomically: a file is whole or absent)."""
    from core.files import atomic_write_text

    return atomic_write_text(queue_dir(settings) / f"{rec['start_ms']:013d}-{rec['check_id']}.json", json.dumps(rec))


def _files(settings: Settings) -> list[Path]:
    folder = queue_dir(settings)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def queued(settings: Settings) -> list[dict[str, Any]]:
    """The queued records of the settings' store, oldest first, without their artifacts (a file
    that does not read, being written or damaged, is left out)."""
    out = []
    for path in _files(settings):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("tracking_uri") == settings.tracking_uri:
            rec.pop("artifacts", None)
            out.append(rec)
    return out


def drain(settings: Settings, *, wait_s: float = LOCK_WAIT_S) -> list[str]:
    """Log every queued record of the settings' store, oldest first, deleting each file once its
    run is FINISHED; returns the run ids. One drain at a time (a file lock): another waits up to
    `wait_s` for it, then drains what is left (0: give up at once when one runs)."""
    from filelock import FileLock, Timeout

    if not _files(settings):
        return []
    folder = queue_dir(settings)
    done: list[str] = []
    try:
        with FileLock(str(folder / ".drain.lock"), timeout=wait_s):
            skipped: set[Path] = set()
            while todo := [p for p in _files(settings) if p not in skipped]:
                for path in todo:
                    try:
                        rec = json.loads(path.read_text())
                    except (OSError, ValueError):
                        skipped.add(path)  # a damaged file stays for a person to look at
                        continue
                    if rec.get("format") != FORMAT or rec.get("tracking_uri") != settings.tracking_uri:
                        skipped.add(path)
                        continue
                    done.append(log_record(rec, settings))
                    path.unlink(missing_ok=True)
    except Timeout:
        pass
    return done


def spawn_drain(settings: Settings) -> subprocess.Popen:
    """Start a detached `python -m core.monitoring.run_log` that waits for this process to exit,
    then drains the queue (its output goes to `pending_runs/drain.log`)."""
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home), "WORKBENCH_DATASET": settings.dataset.name}
    if settings.embedded_tracking:
        env.pop("MLFLOW_TRACKING_URI", None)
    else:
        env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    folder = queue_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    log = folder / "drain.log"
    mode = "wb" if log.exists() and log.stat().st_size > 1_000_000 else "ab"  # a line a drain: kept small
    with open(log, mode) as out:
        return subprocess.Popen([sys.executable, "-m", "core.monitoring.run_log", "--after-pid", str(os.getpid())],
                                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, close_fds=True)


def _wait_for_exit(pid: int, timeout: float) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout=timeout)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass


def main(argv: list[str] | None = None) -> int:
    """`python -m core.monitoring.run_log [--after-pid PID]`: drain the queue of the environment's
    home and dataset (after PID exits)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m core.monitoring.run_log", description=main.__doc__)
    p.add_argument("--after-pid", type=int, default=None)
    args = p.parse_args(argv)
    if args.after_pid:
        _wait_for_exit(args.after_pid, PARENT_WAIT_S)
    settings = Settings.from_env()
    ids = drain(settings)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} logged {len(ids)} run(s): {' '.join(ids)}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
