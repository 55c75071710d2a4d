"""What a training writes to MLflow: the parent run's budget and baselines (`log_training`),
each candidate's parameters, metrics, evaluation data and model (`log_candidate`), and the
outcome on the parent run (`log_outcome`).

A candidate's charts are stored as data, never drawn: its test predictions
(`PREDICTIONS`, from which ROC, precision-recall, calibration and confusion charts are drawn) and
its diagnostics (`DIAGNOSTICS`: feature importance, learning curve). The Compare page draws them
with `core.charts.evaluation`, plotly.js loaded once by the page. (Runs logged before this
also hold `figures/*.json`, plotly figures, and `figures/evaluation.html`, about 5 MB each with
plotly.js inlined: a 3-candidate training added ~16 MB; now ~0.4 MB a candidate, the model
included.)
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from core.config import Settings
from core.modeling import model_io
from core.modeling.candidates import TUNE_MAX_ROWS
from core.modeling.results import Choice, EvaluatedCandidate, TrainingData

PREDICTIONS = "eval/test_predictions.json"  # HeldOutPredictions.to_dict()
DIAGNOSTICS = "eval/diagnostics.json"  # Diagnostics.to_dict()
EXPLANATIONS = "eval/explanations.json"  # explanations.global_importance (issue 31), when computed
LEGACY_FIGURES = "figures"  # runs logged before figures were stored as data: plotly JSON + evaluation.html
LEGACY_HTML = "figures/evaluation.html"


def log_training(settings: Settings, data: TrainingData, ids: tuple[str, ...], folds: int, n_iter: int,
                 criterion: str, promote: str) -> None:
    """The parent run's parameters (budget, criterion, data sizes, task kind and its decision
    policy) and the baselines' test figures."""
    task = settings.dataset.task
    params = {"models": ",".join(ids), "folds": folds, "iterations": n_iter,
              "seed": settings.seed, "criterion": criterion, "selected_by": f"cv_{criterion}",
              "promote": promote, "train_rows": len(data.train), "test_rows": len(data.test),
              "feature_set": settings.dataset.feature_set,
              "tuning_rows": min(len(data.train), TUNE_MAX_ROWS)}
    if task == "binary":
        params["threshold_rule"] = settings.promotion.threshold_rule
    else:
        params["task"] = task
    if task == "regression":
        params["interval_level"] = settings.promotion.interval_level
    mlflow.log_params(params)
    mlflow.log_metrics({f"baseline_{b}_{k}": v for b, m in data.baselines.items() for k, v in m.items()})


def task_info(settings: Settings, evaluated: EvaluatedCandidate) -> dict[str, Any] | None:
    """What the logged model's `code/task.json` says of its task (`model_io.log_model`'s `task`):
    None for a binary model (as always); multiclass its classes in label order; regression its
    interval."""
    task = settings.dataset.task
    if task == "multiclass":
        return {"task": task, "classes": list(settings.dataset.target.names)}
    if task == "regression":
        return {"task": task, "interval": evaluated.decision.interval}
    return None


def log_candidate(evaluated: EvaluatedCandidate, settings: Settings, folds: int, n_iter: int,
                  example: pd.DataFrame) -> str:
    """In the active (candidate) run: parameters, metrics, the evaluation data (`PREDICTIONS`,
    `DIAGNOSTICS`, JSON numbers only) and the model (`example` gives its input example);
    returns the model's URI."""
    decision, tuned = evaluated.decision, evaluated.tuned
    choice = decision.threshold
    params = {k: str(v)[:500] for k, v in tuned.all_params.items()}
    params.update({"model": tuned.name, "folds": folds, "iterations": n_iter, "seed": settings.seed,
                   "tuned": ",".join(tuned.params), "calibration": decision.calibration})
    policy: dict[str, float] = {}
    if choice is not None:  # binary: the threshold and the rule that chose it
        params["threshold_rule"] = choice.rule
        policy = {"decision_threshold": choice.value, "cv_f1_at_threshold": choice.f1}
    if decision.interval is not None:  # regression: the interval
        params["interval_level"] = decision.interval["level"]
        policy = {"interval_halfwidth": decision.interval["halfwidth"]}
    mlflow.log_params(params)
    finite = {f"test_{k}": v for k, v in evaluated.test.items()} | {f"cv_{k}": v for k, v in decision.cv.items()}
    mlflow.log_metrics(finite
                       | {f"tuning_cv_{k}": v for k, v in tuned.tuning_cv.items()}
                       | policy
                       | {f"cv_log_loss_{k}_calibration": v for k, v in decision.calibration_log_loss.items()})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stored = [(PREDICTIONS, evaluated.predictions.to_dict()), (DIAGNOSTICS, evaluated.diagnostics.to_dict())]
        if evaluated.explanations is not None:
            stored.append((EXPLANATIONS, evaluated.explanations))
        for path, data in stored:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(json.dumps(data, separators=(",", ":")))
        mlflow.log_artifacts(tmp)
    task = task_info(settings, evaluated)
    info = model_io.log_model(evaluated.model, settings.features, example, rules=settings.dataset.rules,
                              categorical=settings.dataset.categorical_features,
                              **({"task": task} if task is not None else {}))
    return str(info.model_uri)


def log_outcome(choice: Choice, version: str, seconds: float) -> None:
    """On the parent run: which version is champion after the training, the challenger, the
    gate's reason, and both versions' test figures."""
    winner, before, ok = choice.winner, choice.before, choice.promoted
    mlflow.set_tags({"champion_name": winner.name if ok else (before.model or "") if before else "",
                     "champion_version": version if ok else before.version if before else "",
                     "champion_run_id": winner.run_id if ok else (before.run_id or "") if before else "",
                     "challenger_version": version, "promoted": str(ok).lower(),
                     "gate_reason": choice.reason[:5000]})
    mlflow.log_metrics({f"challenger_test_{k}": v for k, v in winner.test.items() if np.isfinite(v)}
                       | {f"champion_before_test_{k}": v for k, v in (choice.before_test or {}).items()
                          if np.isfinite(v)}
                       | {"seconds": seconds})
