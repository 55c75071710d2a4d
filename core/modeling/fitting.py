"""A tuned candidate made into the model that would be served, and measured: its decision
policy and calibration from out-of-fold predictions (`decide`: a binary model's threshold, a
regression's conformal interval, a classifier's calibration), then the refit on the whole
training split, its figures on the test split (the task's metrics, `TaskKind.metrics`) and its
diagnostics (`evaluate`).

The model is a plain scikit-learn `Pipeline` (the definition's preprocessing + the tuned
estimator, `plain_pipeline`), so the served model needs no PyCaret and loads in MLflow's safe
(skops) format. Nothing here draws a chart: `core.charts.evaluation` draws the results.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.modeling import intervals, metrics, preprocess, threshold
from core.modeling.candidates import TUNE_MAX_ROWS
from core.modeling.diagnostics import feature_importance, learning_curve_data
from core.modeling.results import (
    Decision,
    Diagnostics,
    EvaluatedCandidate,
    HeldOutPredictions,
    LearningCurve,
    TrainingSetup,
    TunedCandidate,
)
from core.modeling.tasks import task_kind
from core.modeling.tuning import tuning_sample
from core.progress import ProgressFn, report


def model_output(task: str, model: Any, x: pd.DataFrame, halfwidth: float | None = None) -> np.ndarray:
    """What a fitted model answers for the rows `x`, as its task's metrics take it
    (`TaskKind.metrics`): binary the positive class's probability (n); multiclass every class's
    (n x k, label order); regression the prediction (n), with its interval's bounds beside it
    (n x 3: prediction, lower, upper) when the `halfwidth` is known."""
    if task == "regression":
        pred = np.asarray(model.predict(x), dtype=float)
        if halfwidth is None:
            return pred
        lower, upper = intervals.bounds(pred, halfwidth)
        return np.column_stack([pred, lower, upper])
    proba = np.asarray(model.predict_proba(x), dtype=float)
    return proba if task == "multiclass" else proba[:, 1]


def plain_pipeline(spec: Any, estimator: Any, seed: int) -> Any:
    """An unfitted scikit-learn Pipeline: the definition's preprocessing
    (`core.modeling.preprocess`), then `estimator` (PyCaret's tuned model, cloned)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    return Pipeline([*preprocess.preprocessor(spec, seed), ("model", clone(estimator))])


def calibrated(pipeline: Any, method: str, folds: int, seed: int) -> Any:
    """`pipeline` itself, or scikit-learn's `CalibratedClassifierCV` around it (`ensemble=False`:
    the map is fitted on cross-validated predictions, the pipeline refit on every row)."""
    if method == "none":
        return pipeline
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    return CalibratedClassifierCV(pipeline, method=method, ensemble=False,
                                  cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed))


def decide(pipeline: Any, sample: pd.DataFrame, settings: Settings, folds: int) -> Decision:
    """The decision policy and calibration of a tuned candidate's `pipeline`, from out-of-fold
    predictions on the tuning `sample` (never the test split), and its CV figures, of the model
    as it will be logged (calibrated or not), per task kind:

    - binary: calibration, then the threshold (`core.modeling.threshold`), figures at it;
    - multiclass: calibration (one map per class), figures of the most probable class;
    - regression: the interval's halfwidth at `settings.promotion.interval_level`, the conformal
      quantile of the out-of-fold residuals (`core.modeling.intervals`)."""
    task = settings.dataset.task
    if task == "regression":
        return _decide_regression(pipeline, sample, settings, folds)
    policy = settings.promotion
    x, y = sample.loc[:, list(settings.features)], sample[settings.target].to_numpy()
    oof_of = threshold.out_of_fold_proba if task == "multiclass" else threshold.out_of_fold
    oof = oof_of(pipeline, x, y, folds, settings.seed)
    gains = threshold.calibration_gain(y, oof, folds, settings.seed)
    method = "none" if policy.calibration == "none" else threshold.pick_calibration(gains, policy.calibration_min_gain)
    if method != "none":  # the threshold is chosen on the probabilities the served model will give
        oof = oof_of(calibrated(pipeline, method, folds, settings.seed), x, y, folds, settings.seed)
    if task == "multiclass":
        return Decision(threshold=None, calibration=method, calibration_log_loss=dict(gains),
                        cv=metrics.multiclass(y, oof))
    choice = threshold.choose(y, oof, policy.threshold_rule, policy.cost_ratio)
    return Decision(threshold=choice, calibration=method, calibration_log_loss=dict(gains),
                    cv=metrics.from_proba(y, oof, choice.value))


def _decide_regression(pipeline: Any, sample: pd.DataFrame, settings: Settings, folds: int) -> Decision:
    """A regression's `Decision`: out-of-fold predictions (shuffled K-fold), the conformal
    halfwidth of its interval and its CV figures (RMSE, MAE, R², MAPE)."""
    from sklearn.model_selection import KFold, cross_val_predict

    level = intervals.check_level(settings.promotion.interval_level)
    x, y = sample.loc[:, list(settings.features)], sample[settings.target].to_numpy(dtype=float)
    oof = cross_val_predict(pipeline, x, y, cv=KFold(n_splits=folds, shuffle=True, random_state=settings.seed))
    halfwidth = intervals.conformal_halfwidth(y, oof, level)
    return Decision(threshold=None, calibration="none", calibration_log_loss={}, cv=metrics.regression(y, oof),
                    interval_halfwidth=halfwidth, interval_level=level)


EXPLAINED_ROWS = 500  # test rows a version's global explanations are computed on (the fallback: FALLBACK_ROWS)
FALLBACK_ROWS = 40  # ... for a model explained by permutations (each row costs thousands of predictions)


def global_explanations(model: Any, x_train: pd.DataFrame, x_test: pd.DataFrame, task: str, features: list[str],
                        classes: list[str], seed: int) -> dict[str, Any] | None:
    """The version's global view of its explanations (`explanations.global_importance`) on a
    sample of the test split, with its kind of explainer; None (and a warning in the log) when
    the model cannot be explained: training never fails for it."""
    import logging

    from core.modeling import explanations

    try:
        ex = explanations.explainer(model, x_train, task, features, classes)
        rows = FALLBACK_ROWS if ex.kind == "fallback" else EXPLAINED_ROWS
        sample = x_test.sample(min(rows, len(x_test)), random_state=seed) if len(x_test) > rows else x_test
        return {**explanations.global_importance(ex.explain(sample), sample), "explainer": ex.kind}
    except Exception as err:  # noqa: BLE001 - an explanation is extra: the candidate stands without it
        logging.getLogger(__name__).warning("no global explanations for this model: %s", err)
        return None


def evaluate(setup: TrainingSetup, tuned: TunedCandidate, settings: Settings,
             on_progress: ProgressFn = None) -> EvaluatedCandidate:
    """Decide `tuned`'s decision policy and calibration (`decide`), refit it on the whole training
    split, and measure it on the test split: the task's figures (a binary model's at its
    threshold, a regression's with its interval), predictions, feature importance and learning
    curve (three refits on shares of at most the tuning sample's size)."""
    train_df, test_df, folds, seed = setup.data.train, setup.data.test, setup.folds, settings.seed
    task = settings.dataset.task
    kind, n_classes = task_kind(task), len(settings.dataset.target.names)
    step = {"binary": "decision threshold", "multiclass": "calibration",
            "regression": "prediction interval"}[task]
    report(on_progress, 0.0, f"{tuned.label}: {step} on cross-validated predictions")
    decision = decide(plain_pipeline(settings.dataset, tuned.estimator, seed), tuning_sample(train_df, settings),
                      settings, folds)
    report(on_progress, 0.35, f"{tuned.label}: refit and test metrics"
           + (f" ({decision.calibration} calibration)" if decision.calibration != "none" else ""))
    # the frames come from `tuning.as_frame`: their features are already in the model's types
    x_train, y_train = train_df.loc[:, list(settings.features)], train_df[settings.target].to_numpy()
    x_test, y_test = test_df.loc[:, list(settings.features)], test_df[settings.target].to_numpy()
    pipeline = plain_pipeline(settings.dataset, tuned.estimator, seed)
    model = calibrated(pipeline, decision.calibration, folds, seed).fit(x_train, y_train)
    if model is not pipeline:  # ensemble=False: the base pipeline refit on all rows, inside the calibrator
        pipeline = model.calibrated_classifiers_[0].estimator
    output = model_output(task, model, x_test, decision.interval_halfwidth)
    if task == "binary":
        test = metrics.from_proba(y_test, output, decision.threshold.value)
        held_out = HeldOutPredictions(y_true=y_test, proba=output, threshold=decision.threshold.value)
    elif task == "multiclass":
        test = kind.metrics(y_test, output, None)
        held_out = HeldOutPredictions(y_true=y_test, proba=output, threshold=None, task=task,
                                      classes=tuple(settings.dataset.target.names))
    else:
        test = kind.metrics(y_test, output, None)
        held_out = HeldOutPredictions(y_true=y_test, proba=output[:, 0], threshold=None, task=task,
                                      prediction=output[:, 0], lower=output[:, 1], upper=output[:, 2],
                                      level=decision.interval_level)
    report(on_progress, 0.6, f"{tuned.label}: importance and learning curve")
    kind_name, values = feature_importance(pipeline, x_test, y_test, seed, task, n_classes)
    share = min(1.0, TUNE_MAX_ROWS / len(x_train))
    curve = learning_curve_data(pipeline, x_train, y_train, x_test, y_test, seed,
                                fractions=tuple(f * share for f in (0.1, 0.25, 0.5)), task=task, n_classes=n_classes)
    explained = global_explanations(model, x_train, x_test, task, list(settings.features),
                                    list(settings.dataset.target.names), seed)
    return EvaluatedCandidate(
        tuned=tuned, decision=decision, model=model, test=test, predictions=held_out, explanations=explained,
        diagnostics=Diagnostics(kind=kind_name, features=tuple(settings.features), values=tuple(values),
                                learning_curve=LearningCurve.from_dict(curve),
                                params={k: str(v) for k, v in tuned.params.items()}))
