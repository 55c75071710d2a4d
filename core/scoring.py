"""Production scoring ("PipelineAplicacao"): apply the champion to a batch and judge its adherence.

`score` reads a batch (the prepared production data by default, or any parquet/CSV file with the
feature columns), scores it through the model server's HTTP API in concurrent chunks when a
server runs (or `via` names one), else in-process from the registry, saves the scored batch
atomically (an earlier output is kept under a timestamped name) and logs a `PipelineAplicacao`
MLflow run with the metrics when the batch has labels. `adherence` compares the production
figures with the test set's and says in plain words whether the model holds up.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from core import data, inputs, metrics, serving, tracking, validation
from core.config import Settings
from core.errors import NotPreparedError, WorkbenchError
from core.files import atomic_write, keep_previous
from core.progress import ProgressFn, Stopwatch, report, scaled

APPLY_RUN = "PipelineAplicacao"
PROBA = "proba_made"
PRED = "pred_made"
HTTP, IN_PROCESS = "http", "in-process"
CHUNK_ROWS = 20_000
HTTP_WORKERS = 2


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
    """P(made) of every row through the server at `url`, in chunks sent by `workers` threads
    (each with its own keep-alive session), in the frame's order."""
    starts = list(range(0, len(frame), max(int(chunk_rows), 1)))
    local = threading.local()
    clients: list[serving.Client] = []
    lock = threading.Lock()

    def client() -> serving.Client:
        if not hasattr(local, "client"):
            local.client = serving.Client(url, timeout_s, features)
            with lock:
                clients.append(local.client)
        return local.client

    def one(start: int) -> np.ndarray:
        return client().predict_proba(frame.iloc[start:start + chunk_rows])

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


def predict_in_process(model: Any, frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """P(made) of every row with the model loaded in this process."""
    return tracking.predict_proba(model, frame, features)


def load_champion(settings: Settings, version: str | None = None) -> tuple[str, Any]:
    """The champion (or `version`) as (version, model) for in-process scoring."""
    return tracking.load_model(settings, version)


# --------------------------------------------------------------------------- batches
def read_batch(settings: Settings, batch: str | Path | None = None) -> validation.Batch:
    """The validated batch: the prepared production data when None, else a parquet/CSV file.

    Raises `validation.BatchError` naming each missing or invalid column (nothing is written).
    """
    if batch is None:
        if not settings.prod_filtered_path.exists():
            raise NotPreparedError(
                "There is no production batch yet: prepare the data first (Data page, or `python -m core prepare`)."
            )
        frame = pd.read_parquet(settings.prod_filtered_path)
        return validation.from_frame(frame, settings, "prod_filtered.parquet")
    return validation.read_batch(Path(batch), settings)


def _choose_path(settings: Settings, via: str | None) -> tuple[str, str | None, str | None]:
    """(path, url, version): the given server, else the managed server if running, else in-process."""
    if via:
        client = serving.Client(via, 5.0, settings.features)
        try:
            if not client.ping():
                raise serving.ServerNotRunningError(
                    f"No model server answers at {via}: start it (Serve page or `python -m core serve`) "
                    f"or leave out --via to score in-process."
                )
        finally:
            client.close()
        return HTTP, via.rstrip("/"), serving.served_version(settings, via)
    now = serving.status(settings)
    if now.running:
        return HTTP, now.url, now.model_version
    return IN_PROCESS, None, None


# --------------------------------------------------------------------------- PipelineAplicacao
def score(
    settings: Settings,
    batch: str | Path | None = None,
    via: str | None = None,
    threshold: float | None = None,
    in_process: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: ProgressFn = None,
) -> ScoreResult:
    """Run "PipelineAplicacao": score a batch with the champion, save it, log the MLflow run.

    The path is HTTP through `via` when given, else through the managed server when it runs,
    else in-process (`in_process=True` forces it). The output holds the inputs, `proba_made`,
    `pred_made` (class at `threshold`), the label when present and the model version.
    """
    clock = Stopwatch()
    threshold = settings.threshold if threshold is None else float(threshold)
    report(on_progress, 0.0, "Reading and validating the batch")
    b = read_batch(settings, batch)
    frame = b.frame
    if in_process:
        path, url, version = IN_PROCESS, None, None
    else:
        path, url, version = _choose_path(settings, via)
    predict_progress = scaled(on_progress, 0.1, 0.8)
    if path == HTTP:
        assert url is not None
        proba = predict_http(frame, url, settings.features, chunk_rows, on_progress=predict_progress)
        if version is None:  # an external server: assume it serves the champion, say so
            champ = tracking.champion(settings)
            version = f"{champ.version} (assumed)" if champ else "unknown"
    else:
        report(on_progress, 0.1, "Loading the champion from the registry")
        version, model = load_champion(settings)
        report(on_progress, 0.5, "Scoring in-process")
        proba = predict_in_process(model, frame, settings.features)
    if len(proba) != len(frame):
        raise ScoringError(f"The server returned {len(proba)} probabilities for {len(frame)} rows.")

    report(on_progress, 0.8, "Computing metrics")
    out = frame.loc[:, list(settings.features)].copy()
    out[PROBA] = proba
    out[PRED] = (proba >= threshold).astype("int64")
    scores: dict[str, float] | None = None
    if b.has_labels:
        out[settings.target] = frame[settings.target]
        labelled = np.isfinite(frame[settings.target].to_numpy())
        scores = metrics.from_proba(frame[settings.target].to_numpy()[labelled], proba[labelled], threshold)
    out["model_version"] = str(version)

    report(on_progress, 0.85, "Saving the scored batch")
    kept: list[Path | None] = [None]

    def write(tmp: Path) -> None:
        out.to_parquet(tmp, index=False)
        kept[0] = keep_previous(settings.predictions_path)

    atomic_write(settings.predictions_path, write)

    report(on_progress, 0.9, "Logging the PipelineAplicacao run to MLflow")
    source = str(Path(batch).resolve()) if batch is not None else str(settings.prod_filtered_path)
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
                            "predicted_made_share": float(out[PRED].mean()) if len(out) else 0.0})
        if scores is not None:
            mlflow.log_metrics({k: v for k, v in scores.items() if np.isfinite(v)})
        mlflow.log_artifact(str(settings.predictions_path), artifact_path="predictions")
        run_id = run.info.run_id
    report(on_progress, 1.0, "Done")
    return ScoreResult(
        rows=len(out), labelled_rows=b.n_labelled, model_version=str(version), path=path, url=url,
        threshold=threshold, batch_source=source, batch_digest=b.digest, metrics=scores,
        output=str(settings.predictions_path), kept_previous=str(kept[0]) if kept[0] else None,
        mlflow_run_id=run_id, seconds=round(clock.seconds, 3),
        rows_per_s=round(len(out) / max(seconds, 1e-9), 1),
    )


def load_scored(settings: Settings) -> pd.DataFrame:
    """The last scored batch (`prod_predictions.parquet`)."""
    if not settings.predictions_path.exists():
        raise NotPreparedError("No scored batch yet: score the production batch on the Production page "
                               "(or `python -m core apply`).")
    return pd.read_parquet(settings.predictions_path)


def test_predictions(settings: Settings, version: str) -> pd.DataFrame:
    """The test split with `proba_made` from model `version`, in-process (the dev-test reference)."""
    _, model = load_champion(settings, version)
    test = data.load_split(settings, "test")
    return test.assign(**{PROBA: predict_in_process(model, test, settings.features)})


def with_outcome(scored: pd.DataFrame, target: str, threshold: float) -> pd.DataFrame:
    """The labelled rows with `outcome` = 'Correct'/'Incorrect' for the class at `threshold`."""
    if target not in scored:
        return scored.iloc[0:0].assign(**{target: pd.Series(dtype="float64"), "outcome": pd.Series(dtype="object")})
    labelled = scored[np.isfinite(scored[target])]
    correct = (labelled[PROBA] >= threshold).astype(int) == labelled[target].astype(int)
    return labelled.assign(outcome=np.where(correct, "Correct", "Incorrect"))


# --------------------------------------------------------------------------- adherence
@dataclass(frozen=True)
class Adherence:
    """Test vs production figures and the plain-language answer to "does the model hold up?"."""

    verdict: str  # "adherent", "not adherent" or "unknown (no labels)"
    text: str
    next_steps: tuple[str, ...]
    threshold: float
    test_metrics: dict[str, float]
    prod_metrics: dict[str, float] | None
    test_predicted_made: float
    prod_predicted_made: float
    prod_actual_made: float | None
    prod_mean_proba: float
    prod_max_proba: float
    out_of_range: dict[str, float] = field(default_factory=dict)
    shifted: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _join(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def metrics_table(a: Adherence) -> pd.DataFrame:
    """Test and production metrics side by side, with the change."""
    rows = []
    for name in metrics.METRIC_NAMES:
        test = a.test_metrics.get(name, float("nan"))
        prod = (a.prod_metrics or {}).get(name, float("nan"))
        rows.append({"metric": name, "test": test, "production": prod, "change": prod - test})
    return pd.DataFrame(rows)


def adherence(
    scored: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame,
    features: tuple[str, ...],
    target: str,
    threshold: float,
) -> Adherence:
    """Compare production with the test set at `threshold` and explain the result in words.

    The model is judged not adherent when F1 falls by more than 0.1 (absolute) or 20 %
    (relative), ROC-AUC by more than 0.05, log loss rises by more than 10 %, or a feature lies
    outside the training range for more than 5 % of the production rows.
    """
    test_m = metrics.from_proba(test[target].to_numpy(), test[PROBA].to_numpy(), threshold)
    labelled = with_outcome(scored, target, threshold)
    prod_m = (metrics.from_proba(labelled[target].to_numpy(), labelled[PROBA].to_numpy(), threshold)
              if len(labelled) else None)
    proba = scored[PROBA].to_numpy()
    test_pred = float((test[PROBA] >= threshold).mean())
    prod_pred = float((proba >= threshold).mean()) if len(proba) else 0.0
    actual = float(labelled[target].mean()) if len(labelled) else None
    ranges = inputs.training_ranges(train, features)
    oor = inputs.share_out_of_range(scored, ranges)
    shifted = {}
    for f in features:
        std = float(train[f].std()) or 1.0
        t_med, p_med = float(train[f].median()), float(scored[f].median())
        if abs(p_med - t_med) / std > 0.5:
            shifted[f] = (t_med, p_med)

    reasons: list[str] = []
    degraded = False
    if prod_m is not None:
        f1_drop = test_m["f1"] - prod_m["f1"]
        auc_drop = test_m["roc_auc"] - prod_m["roc_auc"]
        ll_rise = prod_m["log_loss"] / max(test_m["log_loss"], 1e-12) - 1
        degraded = (f1_drop > 0.1 or (test_m["f1"] > 0 and f1_drop / test_m["f1"] > 0.2)
                    or auc_drop > 0.05 or ll_rise > 0.10)
        direction = "falls" if f1_drop > 0.005 else ("rises" if f1_drop < -0.005 else "stays")
        sentence = (f"F1 {direction} from {test_m['f1']:.2f} on the test set to {prod_m['f1']:.2f} in production "
                    f"(ROC-AUC {test_m['roc_auc']:.2f} → {prod_m['roc_auc']:.2f}, log loss "
                    f"{test_m['log_loss']:.3f} → {prod_m['log_loss']:.3f})")
        if prod_pred < 0.05 and actual is not None and actual > 0.05:
            n_made = int((proba >= threshold).sum())
            sentence += (f" because almost every production shot gets P(made) below the threshold {threshold:.2f}: "
                         f"only {n_made:,} of {len(proba):,} are predicted made (highest P(made) "
                         f"{proba.max():.2f}), while {actual:.1%} were actually made")
            if prod_m["accuracy"] > test_m["accuracy"]:
                sentence += (f". Accuracy rises to {prod_m['accuracy']:.2f} only because {1 - actual:.0%} of "
                             f"these shots are misses and the model calls nearly every shot a miss")
        elif actual is not None:
            sentence += (f"; {prod_pred:.1%} of production shots are predicted made at threshold {threshold:.2f} "
                         f"against {actual:.1%} actually made (test: {test_pred:.1%} predicted made)")
        reasons.append(sentence + ".")
    else:
        reasons.append(f"The batch has no labels, so its accuracy cannot be measured: {prod_pred:.1%} of its shots "
                       f"are predicted made at threshold {threshold:.2f} (test: {test_pred:.1%}); mean P(made) "
                       f"is {proba.mean():.2f}.")
    outside = sorted(((f, sh) for f, sh in oor.items() if sh > 0.0), key=lambda kv: -kv[1])
    if outside:
        parts = [f"`{f}` lies outside the training range [{ranges[f][0]:g}, {ranges[f][1]:g}] for {sh:.1%} of rows"
                 for f, sh in outside]
        reasons.append("In production, " + _join(parts) + ".")
    if shifted:
        parts = [f"`{f}` from {t:g} to {p:g}" for f, (t, p) in shifted.items()]
        reasons.append("The typical shot moved (median in training → production): " + _join(parts)
                       + "; the model is extrapolating to shots it rarely saw.")
    far_out = any(s > 0.05 for s in oor.values())
    if prod_m is None:
        verdict = "unknown (no labels)"
    elif degraded or far_out:
        verdict = "not adherent"
    else:
        verdict = "adherent"
    headline = {
        "adherent": "**Yes, the champion holds up on this batch**: its production figures stay close to the test set's.",
        "not adherent": "**No, the champion is not adherent to the production data.**",
        "unknown (no labels)": "**Unknown**: without labels the model's accuracy on this batch cannot be measured.",
    }[verdict]
    steps = ["See the Drift page for the per-feature drift and the label-free health estimate."]
    if verdict != "adherent":
        steps.append("Retrain with production labels (`python -m core retrain`), then compare the challenger "
                     "with the champion before promoting it.")
    text = "\n\n".join([headline, *reasons, "**Next step:** " + " ".join(steps)])
    return Adherence(
        verdict=verdict, text=text, next_steps=tuple(steps), threshold=threshold, test_metrics=test_m,
        prod_metrics=prod_m, test_predicted_made=test_pred, prod_predicted_made=prod_pred,
        prod_actual_made=actual, prod_mean_proba=float(proba.mean()) if len(proba) else float("nan"),
        prod_max_proba=float(proba.max()) if len(proba) else float("nan"), out_of_range=oor, shifted=shifted,
    )


def scored_version(scored: pd.DataFrame) -> str:
    """The registry version that scored a saved batch (e.g. '3' from '3' or '3 (assumed)')."""
    if "model_version" not in scored or scored.empty:
        raise ScoringError("The scored batch does not say which model version scored it: score it again.")
    return str(scored["model_version"].iloc[0]).split()[0]
