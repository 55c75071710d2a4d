"""Training ("Treinamento"): PyCaret candidates tuned by the task's CV criterion, evaluated on
the held-out test set with the task's metrics (`core.modeling.tasks`: binary from the positive
class's probability at its threshold, multiclass from the class probabilities, regression from
the predictions and their conformal interval), logged to MLflow (one nested run per candidate)
and the best registered as `champion` when it passes the gate.

`train` runs small steps, each returning a frozen result (`core.modeling.results`):

1. `tuning.load_data` -> `TrainingData`, `tuning.set_up` -> `TrainingSetup` (PyCaret's experiment);
2. per candidate: `tuning.tune` -> `TunedCandidate`, `fitting.evaluate` -> `EvaluatedCandidate`
   (threshold, calibration, refit, test figures, predictions and diagnostics),
   `run_log.log_candidate` (its data and model, no figure) -> `CandidateResult`;
3. `selection.choose` -> `Choice` (best by CV, gated against the champion);
4. `selection.record`: `selection.register` -> version, `selection.promote` (aliases), in a `promotion.change` journal.

Charts are drawn from the stored data when shown (`core.charts.evaluation`), never here.
"""
from __future__ import annotations

import gc
import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import mlflow
from mlflow.exceptions import MlflowException

from core import tracking
from core.config import Settings
from core.errors import TrainingError
from core.modeling import fitting, promotion, run_log, selection, threshold, tuning
from core.modeling.candidates import (
    DEFAULT_FOLDS,
    DEFAULT_N_ITER,
    MODEL_TAG,
    PROMOTE_MODES,
    ROLE_TAG,
    WEIGHTS,
    check_budget,
    model_label,
    resolve_models,
)
from core.modeling.metrics import label as metric_label
from core.modeling.tasks import task_kind
from core.modeling.fitting import plain_pipeline  # noqa: F401 (re-exported)
from core.modeling.lock import training_lock
from core.modeling.results import (  # noqa: F401
    CandidateResult,
    ChampionInfo,
    Choice,
    TrainingData,
    TrainingSetup,
    TrainResult,
)
from core.modeling.selection import best  # noqa: F401 (re-exported)
from core.modeling.tuning import tuning_sample  # noqa: F401 (re-exported)
from core.progress import ProgressFn, Stopwatch, report, scaled

TRAIN_RUN = "Treinamento"
# a candidate's share of its progress: tuning, then evaluating, then logging
TUNED_AT, EVALUATED_AT = 0.55, 0.9


def train(
    settings: Settings,
    models: Sequence[str] | None = None,
    n_iter: int = DEFAULT_N_ITER,
    folds: int = DEFAULT_FOLDS,
    criterion: str | None = None,
    on_progress: ProgressFn = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
    promote: str = "gate",
) -> TrainResult:
    """Run "Treinamento": tune each candidate, log it, register the best (by cross-validated
    `criterion`) and gate it against the champion (`core.modeling.promotion`).

    The best candidate is registered as a new version; it becomes `champion` when it passes the
    gate (or `promote="always"`), else it keeps the alias `challenger` and the champion stays.
    The task kind is the dataset's target's (`settings.dataset.task`); `criterion` is one of its
    criteria (None: its own, log loss for a classifier, RMSE for a regression), else
    TrainingError. The task's pair is always trained (`candidates.always_for`: lr and dt; ridge
    and dt for a regression); `models` adds any of its models. Nothing is registered unless
    every candidate finished; a failure ends the runs FAILED, an interruption KILLED; a kill
    leaves a journal the next training, retraining or promotion repairs (`promotion.repair`).
    Raises TrainingBusyError while a training, retraining or promotion runs, NotPreparedError
    without data.
    """
    task = settings.dataset.task
    kind = task_kind(task)
    criterion = criterion or kind.criterion
    ids = resolve_models(models, task)
    folds, n_iter = int(folds), int(n_iter)
    check_budget(folds, n_iter, criterion)
    try:
        kind.check_criterion(criterion)
    except ValueError as err:
        raise TrainingError(f"{err} (`train --criterion`; the dataset's target is {task}).") from None
    if promote not in PROMOTE_MODES:
        raise TrainingError(f"promote must be one of {', '.join(PROMOTE_MODES)}, not {promote!r}.")
    data = tuning.load_data(settings)
    clock = Stopwatch()
    with training_lock(settings), _frozen_gc():
        report(on_progress, 0.0, "Checking the registry")
        repaired = tuple(promotion.repair(settings))
        report(on_progress, 0.01, "Loading PyCaret")
        setup = tuning.set_up(settings, data, folds)
        exp_id = tracking.use(settings)
        with _run(run_name=TRAIN_RUN, experiment_id=exp_id, tags={ROLE_TAG: "training", "pid": str(os.getpid())}) as parent:
            run_log.log_training(settings, data, ids, folds, n_iter, criterion, promote)
            total, start, done = sum(WEIGHTS.get(m, 1.5) for m in ids), 0.05, []
            for model_id in ids:
                end = start + 0.85 * WEIGHTS.get(model_id, 1.5) / total
                done.append(train_candidate(setup, model_id, settings, n_iter, exp_id, scaled(on_progress, start, end)))
                report(on_progress, end, f"{model_label(model_id, task)}: done")
                if on_candidate is not None:
                    on_candidate(done[-1])
                start = end
            report(on_progress, 0.92, f"Comparing {selection.best(done, criterion).label} with the champion on "
                                      "the test split")
            choice = selection.choose(settings, done, criterion, promote)
            report(on_progress, 0.96, f"Registering {choice.winner.label} as {settings.model_name}"
                   + (" and promoting it" if choice.promoted else " (challenger)"))
            version = selection.record(settings, choice.winner, choice.promoted, parent.info.run_id)
            run_log.log_outcome(choice, version, clock.seconds)
    report(on_progress, 1.0, "Done")
    return _result(settings, choice, version, tuple(done), parent.info.run_id, criterion, folds, n_iter,
                   data, clock.seconds, repaired)


def train_candidate(setup: TrainingSetup, model_id: str, settings: Settings, n_iter: int, experiment_id: str,
                    on_progress: ProgressFn = None) -> CandidateResult:
    """Tune, evaluate and log candidate `model_id` in a run of its own, nested in the active
    training run. TrainingError (nothing registered) when the candidate fails."""
    t0 = time.perf_counter()
    task = settings.dataset.task
    with _run(run_name=model_id, experiment_id=experiment_id, nested=True,
              tags={ROLE_TAG: "candidate", MODEL_TAG: model_id, "pid": str(os.getpid())}) as run:
        try:
            tuned = tuning.tune(setup, model_id, n_iter, scaled(on_progress, 0.0, TUNED_AT))
            evaluated = fitting.evaluate(setup, tuned, settings, scaled(on_progress, TUNED_AT, EVALUATED_AT))
            report(on_progress, EVALUATED_AT, f"{tuned.label}: logging to MLflow")
            uri = run_log.log_candidate(evaluated, settings, setup.folds, n_iter, setup.data.train)
        except (ValueError, RuntimeError, MemoryError, MlflowException) as err:
            raise TrainingError(
                f"{model_label(model_id, task)} failed ({type(err).__name__}: {str(err)[:300]}). Nothing was "
                "registered; try again without this model or with a smaller budget."
            ) from err
    common = dict(name=model_id, label=tuned.label, test=evaluated.test, cv=evaluated.decision.cv, params=tuned.params,
                  run_id=run.info.run_id, model_uri=uri, seconds=round(time.perf_counter() - t0, 2),
                  calibration=evaluated.decision.calibration)
    if task == "regression":  # no class to compare with the majority's; its interval instead
        return CandidateResult(**common, threshold=None, threshold_rule=None, below_majority=None,
                               interval=evaluated.decision.interval)
    majority_accuracy, majority_class = majority(settings, setup.data)
    if task == "multiclass":  # the most probable class: its accuracy against always the majority's
        check = multiclass_against_majority(evaluated.test, majority_accuracy, majority_class)
        return CandidateResult(**common, threshold=None, threshold_rule=None, below_majority=check.below,
                               majority_accuracy=check.majority_accuracy, majority_class=majority_class,
                               why_below_majority=check.why)
    choice = evaluated.decision.threshold
    held_out = evaluated.predictions
    check = threshold.against_majority(
        evaluated.test, majority_accuracy, majority_class, choice.rule, choice.value, choice,
        positive_share=float((held_out.proba >= held_out.threshold).mean()) if len(held_out.proba) else None,
        positive_name=settings.dataset.positive_name)
    return CandidateResult(**common, threshold=choice.value, threshold_rule=choice.rule,
                           below_majority=check.below, majority_accuracy=check.majority_accuracy,
                           majority_class=majority_class, why_below_majority=check.why)


def multiclass_against_majority(test: dict[str, float], majority_accuracy: float,
                                majority_class: str) -> threshold.MajorityCheck:
    """Whether a multiclass model's test accuracy (its most probable class) is below always
    answering the training split's majority class, and that in words."""
    accuracy = float(test.get("accuracy", float("nan")))
    below = bool(accuracy < majority_accuracy - 1e-9)
    why = (f"accuracy {accuracy:.3f} is below the {majority_accuracy:.3f} of always answering '{majority_class}' "
           "on this test split: the model barely separates the classes" if below else "")
    return threshold.MajorityCheck(below, accuracy, float(majority_accuracy), majority_class, why)


def majority(settings: Settings, data: TrainingData) -> tuple[float, str]:
    """The test accuracy of always answering the training split's majority class, and its name
    (a classifier's: binary or multiclass)."""
    target = settings.dataset.target
    if settings.dataset.task == "multiclass":
        counts = data.train[settings.target].value_counts()
        top = int(counts.idxmax()) if len(counts) else 0
        return float(data.baselines["majority_class"]["accuracy"]), target.name_of(top)
    rate = float(data.train[settings.target].mean()) if len(data.train) else 0.0
    return (float(data.baselines["majority_class"]["accuracy"]),
            target.positive_name if rate >= 0.5 else target.negative_name)


def _result(settings: Settings, choice: Choice, version: str, done: tuple[CandidateResult, ...], parent_run_id: str,
            criterion: str, folds: int, n_iter: int, data: TrainingData, seconds: float,
            repaired: tuple[str, ...]) -> TrainResult:
    """The `TrainResult` of a finished training."""
    task = settings.dataset.task
    winner, before, ok = choice.winner, choice.before, choice.promoted
    challenger = ChampionInfo(name=winner.name, version=version, run_id=winner.run_id, test=winner.test,
                              threshold=winner.threshold, cv=winner.cv, below_majority=winner.below_majority,
                              majority_accuracy=winner.majority_accuracy, why_below_majority=winner.why_below_majority,
                              interval=winner.interval)
    champion_before = None
    if before is not None:
        before_test = choice.before_test or {}
        compared = "accuracy" in before_test
        if task == "binary":
            check = threshold.against_majority(before_test, *majority(settings, data), before.threshold_rule,
                                               before.threshold, positive_name=settings.dataset.positive_name)
        elif task == "multiclass":
            check = multiclass_against_majority(before_test, *majority(settings, data))
        else:
            check, compared = None, False
        champion_before = ChampionInfo(
            name=before.model or "", version=before.version, run_id=before.run_id, test=before_test,
            threshold=before.threshold if task == "binary" else None,
            below_majority=check.below if compared else None,
            majority_accuracy=check.majority_accuracy if compared else None,
            why_below_majority=check.why if check is not None else "",
            interval=before.interval if task == "regression" else None)
    criterion_words = criterion.replace('_', ' ') if task == "binary" else metric_label(criterion)
    return TrainResult(
        candidates=done, champion=challenger if ok or champion_before is None else champion_before,
        parent_run_id=parent_run_id, criterion=criterion, folds=folds, n_iter=n_iter,
        baselines=data.baselines, seconds=round(seconds, 2),
        previous_version=before.version if before is not None and ok else None,
        feature_set=settings.dataset.feature_set, features=settings.features,
        promoted=ok, reason=choice.reason, champion_before=champion_before, challenger=challenger,
        selected_by=f"cross-validated {criterion_words} ({folds} folds)", repaired=repaired,
        base_rate=float(data.train[settings.target].mean()) if task == "binary" and len(data.train) else None,
        task=task, classes=tuple(settings.dataset.target.names) if task != "regression" else (),
    )


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Leave the objects alive now out of garbage collections (PyCaret calls gc.collect() per
    model, ~0.3 s each on a heap full of imports); back to normal afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _run(**kwargs: Any) -> Iterator[Any]:
    """`mlflow.start_run(**kwargs)` that ends FAILED on an error and KILLED on an interruption
    (Ctrl-C, a Streamlit stop or rerun), never left RUNNING."""
    with mlflow.start_run(**kwargs) as run:
        try:
            yield run
        except BaseException as err:
            if not isinstance(err, Exception):
                mlflow.end_run("KILLED")
            raise
