"""Reading training runs back from MLflow for the Compare page: the candidates table, one
candidate's test predictions and diagnostics (the data its charts are drawn from), and the
registry with its aliases. The figures shown are the dataset's task kind's (`metric_columns`,
`registry_columns`): binary log loss, ROC-AUC, F1 and the threshold as always; multiclass log
loss, accuracy and macro F1; regression RMSE, MAE, R² and the interval's coverage.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from core import tracking
from core.config import Settings
from core.errors import TrackingError
from core.modeling import registry, run_log
from core.modeling.tasks import BINARY, task_kind
from core.modeling.candidates import MODEL_TAG, MODELS, ROLE_TAG, model_label
from core.modeling.metrics import label
from core.modeling.results import Diagnostics, HeldOutPredictions

# MLflow metric name: table column ("test ROC-AUC", "CV log loss"), in the metrics' own labels
METRIC_COLUMNS: dict[str, str] = {
    **{f"test_{m}": f"test {label(m)}" for m in ("log_loss", "brier", "roc_auc", "f1", "accuracy", "precision",
                                                 "recall")},
    "cv_log_loss": f"CV {label('log_loss')}", "decision_threshold": "threshold",
}
TASK_METRIC_COLUMNS: dict[str, dict[str, str]] = {
    "binary": METRIC_COLUMNS,
    "multiclass": {**{f"test_{m}": f"test {label(m)}" for m in ("log_loss", "accuracy", "f1_macro")},
                   **{f"cv_{m}": f"CV {label(m)}" for m in ("log_loss", "accuracy", "f1_macro")}},
    "regression": {**{f"test_{m}": f"test {label(m)}" for m in ("rmse", "mae", "r2", "mape", "interval_coverage")},
                   **{f"cv_{m}": f"CV {label(m)}" for m in ("rmse", "mae", "r2")},
                   "interval_halfwidth": "interval ±"},
}


def metric_columns(task: str = "binary") -> dict[str, str]:
    """{MLflow metric name: table column} of a task kind's candidates table."""
    return TASK_METRIC_COLUMNS[task]


def criterion_column(task: str = "binary") -> str:
    """The table column of a task's own criterion on cross-validation ('CV log loss', 'CV RMSE'):
    what chose each training's best candidate (unless the training named another)."""
    return f"CV {label(task_kind(task).criterion)}"


@dataclass(frozen=True)
class CandidateEval:
    """One candidate's held-out test labels and predicted probabilities, its decision threshold
    and its diagnostics (feature importance, learning curve): the data its charts are drawn from
    (`core.charts.evaluation`). A run logged before diagnostics were stored as data has
    `diagnostics=None` and may hold its figures as plotly JSON in `figures` instead."""

    run_id: str
    name: str
    label: str
    y_true: np.ndarray
    proba: np.ndarray  # binary P(positive) (n); multiclass every class's (n x k); regression the prediction
    figures: dict[str, str]  # legacy plotly JSON by name ('importance', 'learning_curve'); empty for new runs
    # the candidate's own decision threshold (0.5 for runs logged before they had one; None: not binary)
    threshold: float | None = 0.5
    diagnostics: Diagnostics | None = None
    held_out: HeldOutPredictions | None = None  # everything stored (a regression's interval bounds too)
    # the global view of its explanations (issue 31: `run_log.EXPLANATIONS`), None for runs logged without
    explanations: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return self.held_out.task if self.held_out is not None else "binary"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["y_true"], out["proba"] = self.y_true.tolist(), self.proba.tolist()
        out["diagnostics"] = self.diagnostics.to_dict() if self.diagnostics else None
        out["held_out"] = self.held_out.to_dict() if self.held_out else None
        return out


def training_runs(settings: Settings) -> pd.DataFrame:
    """Every finished candidate run, newest first: model, test and CV metrics, budget, version."""
    exp_id = tracking.use(settings)
    client = tracking.client(settings)
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`{ROLE_TAG}` = 'candidate' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1000,
    )
    by_run = {v.run_id: v for v in registry.versions(settings)}
    task = settings.dataset.task
    metric_cols = metric_columns(task)
    rows = []
    for r in runs:
        model = r.data.tags.get(MODEL_TAG, r.info.run_name)
        version = by_run.get(r.info.run_id)
        row = {
            "run_id": r.info.run_id,
            "started": pd.Timestamp(r.info.start_time, unit="ms", tz="UTC").tz_convert(None),
            "model": model_label(model, task),
            "model_id": model,
            **{col: r.data.metrics.get(key, np.nan) for key, col in metric_cols.items()},
            "folds": int(r.data.params.get("folds", 0)) or None,
            "iterations": int(r.data.params.get("iterations", 0)) or None,
            "version": version.version if version else "",
            "aliases": ", ".join(version.aliases) if version else "",
            "training": r.data.tags.get("mlflow.parentRunId", "")[:8],
            "training_id": r.data.tags.get("mlflow.parentRunId", ""),
            "parameters": key_parameters(r.data.params),
            "calibration": r.data.params.get("calibration", ""),
        }
        rows.append(row)
    columns = ["run_id", "started", "model", "model_id", *metric_cols.values(), "folds", "iterations",
               "version", "aliases", "training", "training_id", "parameters", "calibration"]
    return pd.DataFrame(rows, columns=columns)


def store_stamp(settings: Settings) -> str | None:
    """A token that changes whenever the embedded tracking store is written (size and
    modification time of its SQLite file and of any write-ahead log beside it), for caching
    what is read from it; None for a tracking server, which has no such cheap token."""
    if not settings.embedded_tracking:
        return None
    db = settings.embedded_db_path
    parts = []
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            st = path.stat()
        except FileNotFoundError:
            parts.append("-")
        else:
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
    return "/".join(parts)


def version_with_alias(versions: pd.DataFrame, alias: str) -> str | None:
    """The version holding `alias` in a `registry_table`, or None."""
    for version, aliases in zip(versions["version"], versions["aliases"]):
        if alias in [a.strip() for a in str(aliases).split(",")]:
            return str(version)
    return None


def runs_export(runs: pd.DataFrame) -> pd.DataFrame:
    """The candidate runs as they are exported: every column but the internal model id (written
    as CSV by `core.scoring.exports.csv_bytes`, which neutralises formulas)."""
    return runs.drop(columns=["model_id"])


def key_parameters(params: dict[str, str]) -> str:
    """The tuned hyper-parameters of a candidate run as 'name=value, ...' (those its search varied)."""
    names = [n for n in params.get("tuned", "").split(",") if n]
    return ", ".join(f"{n}={params[n]}" for n in names if n in params)


def trainings(runs: pd.DataFrame, task: str = "binary") -> list[dict[str, Any]]:
    """The candidate runs grouped by training, newest first: when, how many candidates, the best by
    the task's CV criterion (binary: log loss, what chose it), the version it registered and
    whether it became champion, and the candidates' rows. `best CV` / `best test` hold the best's
    criterion (a binary training's also as `best CV log loss` / `best test log loss`)."""
    cv_col = criterion_column(task)
    test_col = cv_col.replace("CV ", "test ", 1)
    ascending = task_kind(task).criterion in task_kind(task).lower_is_better
    out = []
    for training_id, group in runs.groupby("training_id", sort=False):
        group = group.sort_values(cv_col, ascending=ascending, na_position="last")
        best = group.iloc[0]
        registered = group[group["version"] != ""]
        out.append({
            "training_id": training_id, "started": group["started"].min(), "candidates": len(group),
            "best": best["model"], f"best {cv_col}": best[cv_col], f"best {test_col}": best[test_col],
            "best CV": best[cv_col], "best test": best[test_col], "criterion": label(task_kind(task).criterion),
            "version": registered["version"].iloc[0] if len(registered) else "",
            "aliases": registered["aliases"].iloc[0] if len(registered) else "",
            "folds": best["folds"], "iterations": best["iterations"], "rows": group,
        })
    return sorted(out, key=lambda t: t["started"], reverse=True)


def _artifact_text(settings: Settings, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp,
                                                    tracking_uri=settings.tracking_uri)
        return Path(local).read_text()


def _listed(settings: Settings, run_id: str, folder: str) -> set[str]:
    """The artifact paths directly under `folder` of a run (empty when there is none)."""
    return {a.path for a in tracking.client(settings).list_artifacts(run_id, folder)}


def load_candidate(settings: Settings, run_id: str) -> CandidateEval:
    """A candidate's test predictions and diagnostics (immutable: cache by run id).

    Runs logged before diagnostics were stored as data give their plotly figures instead
    (`figures`); TrackingError, saying where to look, when a run holds no test predictions
    (not a candidate, or logged when only `figures/evaluation.html` was stored)."""
    tracking.use(settings)
    try:
        run = tracking.client(settings).get_run(run_id)
        model = run.data.tags.get(MODEL_TAG, run.info.run_name)
        held = _listed(settings, run_id, "eval")
        if run_log.PREDICTIONS not in held:
            if run_log.LEGACY_HTML in _listed(settings, run_id, run_log.LEGACY_FIGURES):
                raise TrackingError(
                    f"{MODELS.get(model, model)} (run {run_id[:8]}) was logged by an older workbench that kept its "
                    f"curves only as a page, {run_log.LEGACY_HTML}: open the run in MLflow to see them.")
            raise TrackingError(f"Run {run_id} has no training artifacts; pick a candidate from the table.")
        preds = HeldOutPredictions.from_dict(json.loads(_artifact_text(settings, run_id, run_log.PREDICTIONS)),
                                             BINARY.default_threshold)  # for runs logged without theirs
        diagnostics, figures, explained = None, {}, None
        if run_log.EXPLANATIONS in held:
            try:
                explained = json.loads(_artifact_text(settings, run_id, run_log.EXPLANATIONS))
            except ValueError:
                explained = None  # malformed: shown as not stored
        if run_log.DIAGNOSTICS in held:
            try:
                diagnostics = Diagnostics.from_dict(json.loads(_artifact_text(settings, run_id, run_log.DIAGNOSTICS)))
            except (KeyError, TypeError, ValueError):
                diagnostics = None  # malformed: the logged figures below, if any
        if diagnostics is None:
            logged = _listed(settings, run_id, run_log.LEGACY_FIGURES)
            figures = {name: _artifact_text(settings, run_id, f"{run_log.LEGACY_FIGURES}/{name}.json")
                       for name in ("importance", "learning_curve")
                       if f"{run_log.LEGACY_FIGURES}/{name}.json" in logged}
    except (mlflow.exceptions.MlflowException, OSError, KeyError, ValueError) as err:
        raise TrackingError(
            f"Run {run_id} has no readable training artifacts ({err}); pick a candidate from the table."
        ) from err
    return CandidateEval(run_id=run_id, name=model, label=model_label(model, preds.task), y_true=preds.y_true,
                         proba=preds.proba, figures=figures, threshold=preds.threshold, diagnostics=diagnostics,
                         held_out=preds, explanations=explained if isinstance(explained, dict) else None)


REGISTRY_COLUMNS = ["version", "aliases", "model", "parameters", "CV log loss", "test log loss", "test F1",
                    "threshold", "feature set", "train rows", "registered", "run_id"]
# each task's figures in the registry table: (column, MLflow metric of a training's candidate run,
# of a retraining's run)
REGISTRY_FIGURES: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "binary": (("CV log loss", "cv_log_loss", None), ("test log loss", "test_log_loss", "challenger_old_log_loss"),
               ("test F1", "test_f1", "challenger_old_f1")),
    "multiclass": (("CV log loss", "cv_log_loss", None), ("test log loss", "test_log_loss", "challenger_old_log_loss"),
                   ("test accuracy", "test_accuracy", "challenger_old_accuracy"),
                   ("test macro F1", "test_f1_macro", "challenger_old_f1_macro")),
    "regression": (("CV RMSE", "cv_rmse", None), ("test RMSE", "test_rmse", "challenger_old_rmse"),
                   ("test R²", "test_r2", "challenger_old_r2"),
                   ("test interval coverage", "test_interval_coverage", "challenger_old_interval_coverage")),
}


def registry_columns(task: str = "binary") -> list[str]:
    """The registry table's columns for a task kind (binary: `REGISTRY_COLUMNS`; a regression's
    `threshold` column holds the interval's halfwidth as `interval ±`)."""
    if task == "binary":
        return REGISTRY_COLUMNS
    figures = [c for c, _, _ in REGISTRY_FIGURES[task]]
    policy = ["interval ±"] if task == "regression" else []
    return ["version", "aliases", "model", "parameters", *figures, *policy, "feature set", "train rows",
            "registered", "run_id"]


def registry_table(settings: Settings) -> pd.DataFrame:
    """Registered versions, newest first: aliases, model, CV and test figures (the task's: a binary
    model's test F1 at its own threshold), decision policy (threshold; a regression's interval
    halfwidth), feature set, registration time, run."""
    client = tracking.client(settings)
    task = settings.dataset.task
    rows = []
    for v in registry.versions(settings):
        model, figures, params = v.model or "", {}, {}
        if v.run_id:
            try:
                run = client.get_run(v.run_id)
                model = model or run.data.tags.get(MODEL_TAG, run.info.run_name or "")
                figures, params = run.data.metrics, run.data.params
                parent = run.data.tags.get("mlflow.parentRunId")
                if parent:  # a candidate: its training's parent run holds the data sizes
                    params = {**client.get_run(parent).data.params, **params}
            except mlflow.exceptions.MlflowException:
                pass  # the run was deleted: the version stays usable
        # a retraining's version: its figures are the challenger's on the old (dev test) slice
        row = {"version": v.version, "aliases": ", ".join(v.aliases), "model": model_label(model, task)}
        for column, key, retrained in REGISTRY_FIGURES[task]:
            row[column] = figures.get(key, figures.get(retrained, np.nan) if retrained else np.nan)
        if task == "binary":
            row["threshold"] = v.threshold if v.threshold is not None else np.nan
        if task == "regression":
            row["interval ±"] = (v.interval or {}).get("halfwidth", np.nan)
        row.update({"feature set": v.feature_set,
                    "parameters": key_parameters(params),
                    "train rows": int(params.get("train_rows", params.get("rows_train", 0))) or None,
                    "registered": pd.Timestamp(v.created_ms, unit="ms", tz="UTC").tz_convert(None),
                    "run_id": v.run_id or ""})
        rows.append(row)
    return pd.DataFrame(rows, columns=registry_columns(task))
