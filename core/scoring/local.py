"""Production scoring ("PipelineAplicacao"): apply the champion to a batch and save the result.

`score` reads a batch (the prepared production data by default, or any parquet/CSV file with the
feature columns), scores it through the model server's HTTP API in concurrent chunks when a
server runs (or `via` names one), else in-process from the registry, saves the scored batch
atomically (an earlier output is kept under a timestamped name) and logs a `PipelineAplicacao`
MLflow run with the metrics when the batch has labels. The output's probability and class
columns are named by the dataset definition (`spec.proba_column`, `spec.pred_column`, e.g.
`proba_made` and `pred_made`). `core/monitoring/adherence.py` judges the result.
"""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from core import tracking
from core.config import Settings
from core.data import batches, preparation
from core.errors import NotPreparedError, TrackingError, WorkbenchError
from core.files import atomic_write, keep_previous
from core.scoring import exports
from core.scoring.exports import load_scored  # noqa: F401 (its home is exports; local.load_scored is the API)
from core.modeling import metrics, model_io, registry
from core.modeling.model_version import ModelVersion
from core.modeling.tasks import BINARY
from core.progress import ProgressFn, Stopwatch, report, scaled
from core.serving import client, predict, server

APPLY_RUN = "PipelineAplicacao"
HTTP, IN_PROCESS = "http", "in-process"
# 3 requests of 50,000 rows at a time (parquet, `client.Client.predict_proba`), 2 server workers:
# 353,508 rows/s vs 318,342 with 2 at a time and 292,865 with 25,000-row chunks (bench/score.py)
CHUNK_ROWS = 50_000
HTTP_WORKERS = 3
#: the column of the predicted class's human name (the definition's `positive_name` / `negative_name`)
CLASS_NAME = "class_name"


class ScoringError(WorkbenchError):
    """A batch could not be scored."""


@dataclass(frozen=True)
class ScoreResult:
    """What `score` did: rows, model version, path used, metrics (None without labels), output."""

    rows: int
    labelled_rows: int
    model_version: str
    path: str
    url: str | None
    threshold: float
    batch_source: str
    batch_digest: str
    metrics: dict[str, float] | None
    output: str
    kept_previous: str | None
    mlflow_run_id: str
    seconds: float
    rows_per_s: float
    stale: bool = False  # scored over HTTP by a managed server serving another version than the champion
    # the scoring model is known to be this dataset's: loaded from its registry in-process, or a
    # server whose answer named it (`server_checked`); False: a server that names nothing
    checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- predicting
def predict_http(
    frame: pd.DataFrame,
    url: str,
    features: tuple[str, ...],
    chunk_rows: int = CHUNK_ROWS,
    workers: int = HTTP_WORKERS,
    timeout_s: float = 60.0,
    on_progress: ProgressFn = None,
) -> np.ndarray:
    """The positive class's probability for every row through the server at `url`, in chunks
    sent by `workers` threads (each with its own keep-alive session), in the frame's order."""
    starts = list(range(0, len(frame), max(int(chunk_rows), 1)))
    per_thread = threading.local()
    clients: list[client.Client] = []
    lock = threading.Lock()

    def thread_client() -> client.Client:
        if not hasattr(per_thread, "client"):
            per_thread.client = client.Client(url, timeout_s, features)
            with lock:
                clients.append(per_thread.client)
        return per_thread.client

    def one(start: int) -> np.ndarray:
        return thread_client().predict_proba(frame.iloc[start:start + chunk_rows])

    out: list[np.ndarray] = [np.empty(0)] * len(starts)
    try:
        with ThreadPoolExecutor(max(int(workers), 1)) as pool:
            futures = {pool.submit(one, s): i for i, s in enumerate(starts)}
            for done, fut in enumerate(as_completed(futures), start=1):
                out[futures[fut]] = fut.result()
                report(on_progress, done / len(starts), f"Scored chunk {done} of {len(starts)} over HTTP")
    finally:
        for c in clients:
            c.close()
    return np.concatenate(out) if out else np.empty(0)


def predict_in_process(model: Any, frame: pd.DataFrame, features: tuple[str, ...],
                       categorical: tuple[str, ...] = ()) -> np.ndarray:
    """The positive class's probability for every row, with the model loaded in this process
    (`categorical`: the features that are text categories)."""
    return model_io.predict_proba(model, frame, features, categorical)


def load_champion(settings: Settings, version: str | ModelVersion | None = None) -> tuple[str, Any]:
    """The champion (or `version`) as (version, model) for in-process scoring."""
    return registry.load_model(settings, version)


# --------------------------------------------------------------------------- batches
def read_batch(settings: Settings, batch: str | Path | batches.Batch | None = None) -> batches.Batch:
    """The validated batch: the prepared production data when None, else a parquet/CSV file
    (a `batches.Batch` already validated, e.g. an upload, is taken as it is).

    Raises `batches.BatchError` naming each missing or invalid column (nothing is written).
    """
    if isinstance(batch, batches.Batch):
        return batch
    if batch is None:
        if not settings.prod_filtered_path.exists():
            raise NotPreparedError(
                "There is no production batch yet: prepare the data first (Data page, or `python -m core prepare`)."
            )
        frame = pd.read_parquet(settings.prod_filtered_path)
        return batches.from_frame(frame, settings, "prod_filtered.parquet", encoded_labels=True)
    return batches.read_batch(Path(batch), settings)


# --------------------------------------------------------------------------- outputs
def upload_output_path(settings: Settings, batch: batches.Batch) -> Path:
    """Where an uploaded batch's scored rows are saved: `uploads/<name>-<digest>.parquet` in the
    model output folder (one file per distinct upload, never the production split's output)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(batch.name).stem).strip("._")[:80] or "batch"
    return settings.uploads_output_dir / f"{stem}-{batch.digest[:12]}.parquet"


def write_scored(frame: pd.DataFrame, path: Path) -> Path:
    """Write scored rows atomically as CSV (`exports.csv_bytes`, formulas neutralised) or parquet,
    by `path`'s suffix; the folder is created when missing. Raises `ScoringError` for another suffix."""
    problem = exports.output_problem(path)
    if problem:
        raise ScoringError(f"Cannot write {path}: {problem}.")
    if path.suffix.lower() == ".csv":
        data = exports.csv_bytes(frame)
        return atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _choose_path(settings: Settings, via: str | None) -> tuple[str, str | None, str | None]:
    """(path, url, version): the given server, else the managed server if running, else in-process.

    The given server's answer to /ping names what it serves (the workbench's servers do): another
    dataset's or model's server raises `client.WrongServerError` naming it; the version it names
    is the batch's version. A server naming nothing is used as before (its version assumed)."""
    if via:
        expected = client.ServerIdentity(settings.dataset.name, settings.model_name)
        probe = client.Client(via, 5.0, settings.features, expected=expected)
        try:
            if not probe.ping():  # WrongServerError when it serves another dataset's model
                raise client.ServerNotRunningError(
                    f"No model server answers at {via}: start it (Serve page or `python -m core serve`) "
                    f"or leave out --via to score in-process."
                )
            told = probe.last_identity
        finally:
            probe.close()
        return HTTP, via.rstrip("/"), predict.served_version(settings, via) or (told.version if told else None)
    now = server.status(settings)
    if now.running:
        return HTTP, now.url, now.model_version
    return IN_PROCESS, None, None


def server_checked(settings: Settings, url: str) -> bool:
    """True when the server at `url` names this dataset's model in its answer to /ping, False when
    it names nothing (as `predict`'s `checked`); `client.WrongServerError` when it names another."""
    expected = client.ServerIdentity(settings.dataset.name, settings.model_name)
    with client.Client(url, 5.0, settings.features, expected=expected) as probe:
        return probe.ping() and probe.last_checked


# --------------------------------------------------------------------------- PipelineAplicacao
def score(
    settings: Settings,
    model: ModelVersion | None,
    batch: str | Path | batches.Batch | None = None,
    via: str | None = None,
    threshold: float | None = None,
    in_process: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: ProgressFn = None,
    output: str | Path | None = None,
) -> ScoreResult:
    """Run "PipelineAplicacao": score a batch with `model` (the champion, read once by the caller:
    its inputs and its threshold), save it, log the MLflow run.

    The path is HTTP through `via` when given, else through the managed server when it runs,
    else in-process (`in_process=True` forces it). The output holds the inputs, the probability
    (`spec.proba_column`), the class at `threshold` as 1 / 0 (`spec.pred_column`, 1 = the positive
    class) and as the target's own value (`spec.predicted_class_column`), the target when present
    (its values as in the data, e.g. 0 where the positive class is 0) and the model version.
    The class's human name is beside them (`CLASS_NAME`, e.g. "churned").

    The rows are saved to `settings.predictions_path` (an earlier one kept under a timestamped
    name), or to `output` when given: a .csv (`exports.csv_bytes`) or .parquet file, its folder
    created when missing, the default output left alone. Another suffix raises `ScoringError`
    before any work.
    """
    if output is not None and exports.output_problem(output):
        raise ScoringError(f"Cannot write {output}: {exports.output_problem(output)}.")
    clock = Stopwatch()
    champ, settings = model, model.scoped(settings) if model else settings
    threshold = (champ.decision_threshold if champ else BINARY.default_threshold) if threshold is None \
        else float(threshold)
    report(on_progress, 0.0, "Reading and validating the batch")
    b = read_batch(settings, batch)
    if champ is None and (in_process or not via):  # refused after the batch's own problems
        raise TrackingError(registry.NO_CHAMPION)
    frame = b.frame
    if in_process:
        path, url, version = IN_PROCESS, None, None
    else:
        path, url, version = _choose_path(settings, via)
    predict_progress = scaled(on_progress, 0.1, 0.8)
    checked = path == IN_PROCESS or server_checked(settings, url)  # before any row is sent
    if path == HTTP:
        assert url is not None
        proba = predict_http(frame, url, settings.features, chunk_rows, on_progress=predict_progress)
        if version is None:  # an external server: assume it serves the champion, say so
            version = f"{champ.version} (assumed)" if champ else "unknown"
    else:
        report(on_progress, 0.1, "Loading the champion from the registry")
        version, model = load_champion(settings, champ)
        report(on_progress, 0.5, "Scoring in-process")
        proba = predict_in_process(model, frame, settings.features, settings.dataset.categorical_features)
    if len(proba) != len(frame):
        raise ScoringError(f"The server returned {len(proba)} probabilities for {len(frame)} rows.")

    report(on_progress, 0.8, "Computing metrics")
    out = frame.loc[:, list(settings.features)].copy()
    spec = settings.dataset
    out[spec.proba_column] = proba
    out[spec.pred_column] = (proba >= threshold).astype("int64")
    out[spec.predicted_class_column] = spec.target.decode(out[spec.pred_column].to_numpy()).to_numpy()
    out[CLASS_NAME] = np.where(out[spec.pred_column].to_numpy() == 1, spec.target.positive_name,
                               spec.target.negative_name).astype(object)
    scores: dict[str, float] | None = None
    if b.has_labels:
        y = frame[settings.target].to_numpy(dtype="float64")  # the batch's labels: 1 / 0 / NaN
        out[settings.target] = spec.target.decode(y).to_numpy()  # the target as the data holds it
        labelled = np.isfinite(y)
        scores = metrics.from_proba(y[labelled], proba[labelled], threshold)
    out["model_version"] = str(version)

    report(on_progress, 0.85, "Saving the scored batch")
    kept: list[Path | None] = [None]

    def write(tmp: Path) -> None:
        out.to_parquet(tmp, index=False)
        kept[0] = keep_previous(settings.predictions_path)

    if output is None:
        dest = settings.predictions_path
        atomic_write(dest, write)
    else:
        dest = write_scored(out, Path(output).resolve())

    report(on_progress, 0.9, "Logging the PipelineAplicacao run to MLflow")
    source = (f"upload:{batch.name}" if isinstance(batch, batches.Batch) else
              str(Path(batch).resolve()) if batch is not None else str(settings.prod_filtered_path))
    seconds = clock.seconds
    exp_id = tracking.use(settings)
    with mlflow.start_run(run_name=APPLY_RUN, experiment_id=exp_id) as run:
        mlflow.log_params({
            "model_version": version,
            "batch_source": source,
            "batch_digest": b.digest,
            "rows": len(out),
            "labelled_rows": b.n_labelled,
            "path": path,
            "url": url or "",
            "threshold": threshold,
        })
        mlflow.log_metrics({"seconds": seconds, "rows_per_s": len(out) / max(seconds, 1e-9),
                            "predicted_positive_share": float(out[spec.pred_column].mean()) if len(out) else 0.0})
        if scores is not None:
            mlflow.log_metrics({k: v for k, v in scores.items() if np.isfinite(v)})
        mlflow.log_artifact(str(dest), artifact_path="predictions")
        run_id = run.info.run_id
    report(on_progress, 1.0, "Done")
    return ScoreResult(
        rows=len(out), labelled_rows=b.n_labelled, model_version=str(version), path=path, url=url,
        threshold=threshold, batch_source=source, batch_digest=b.digest, metrics=scores,
        output=str(dest), kept_previous=str(kept[0]) if kept[0] else None,
        mlflow_run_id=run_id, seconds=round(clock.seconds, 3),
        rows_per_s=round(len(out) / max(seconds, 1e-9), 1),
        # a version the server was only assumed to serve (a server the workbench did not start) is not judged
        stale=path == HTTP and predict.staleness(settings, None if "(assumed)" in str(version) else str(version))[1],
        checked=checked,
    )


def test_predictions(settings: Settings, version: str) -> pd.DataFrame:
    """The test split with the probability column from model `version`, in-process (the dev-test reference)."""
    _, model = load_champion(settings, version)
    test = preparation.load_split(settings, "test")
    return test.assign(**{settings.dataset.proba_column: predict_in_process(model, test, settings.features,
                                                                                 settings.dataset.categorical_features)})


def labels(scored: pd.DataFrame, spec: Any) -> np.ndarray:
    """The scored rows' actual classes as the model's labels (1.0 positive, 0.0 negative, NaN
    unlabelled). A batch scored before the target was saved as the data holds it (no
    `spec.predicted_class_column`) holds the labels themselves."""
    target = spec.target.column
    if spec.predicted_class_column not in scored:
        return scored[target].to_numpy(dtype="float64")
    y, _ = spec.target.encode(scored[target])
    return y


def with_outcome(scored: pd.DataFrame, spec: Any, threshold: float) -> pd.DataFrame:
    """The labelled rows with the actual class as the model's label (`spec.actual_column`,
    1 = positive) and `outcome` = 'Correct'/'Incorrect' for the class at `threshold`."""
    target, actual = spec.target.column, spec.actual_column
    if target not in scored:
        return scored.iloc[0:0].assign(**{target: pd.Series(dtype="float64"), actual: pd.Series(dtype="float64"),
                                          "outcome": pd.Series(dtype="object")})
    y = labels(scored, spec)
    labelled = scored[np.isfinite(y)].assign(**{actual: y[np.isfinite(y)]})
    correct = (labelled[spec.proba_column] >= threshold).astype(int) == labelled[actual].astype(int)
    return labelled.assign(outcome=np.where(correct, "Correct", "Incorrect"))


def scored_version(scored: pd.DataFrame) -> str:
    """The registry version that scored a saved batch (e.g. '3' from '3' or '3 (assumed)')."""
    if "model_version" not in scored or scored.empty:
        raise ScoringError("The scored batch does not say which model version scored it: score it again.")
    return str(scored["model_version"].iloc[0]).split()[0]
