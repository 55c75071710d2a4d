"""A tuned candidate made into the model that would be served, and measured: its decision
threshold and calibration from out-of-fold predictions (`decide`), then the refit on the whole
training split, its figures on the test split and its diagnostics (`evaluate`).

The model is a plain scikit-learn `Pipeline` (the definition's preprocessing + the tuned
estimator, `plain_pipeline`), so the served model needs no PyCaret and loads in MLflow's safe
(skops) format. Nothing here draws a chart: `core.charts.evaluation` draws the results.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from core.config import Settings
from core.modeling import metrics, preprocess, threshold
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
from core.modeling.tuning import tuning_sample
from core.progress import ProgressFn, report


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
    """The threshold and calibration of a tuned candidate's `pipeline`, from out-of-fold
    predictions on the tuning `sample` (never the test split; `core.modeling.threshold`), and
    its CV figures at that threshold, of the model as it will be logged (calibrated or not)."""
    policy = settings.promotion
    x, y = sample.loc[:, list(settings.features)], sample[settings.target].to_numpy()
    oof = threshold.out_of_fold(pipeline, x, y, folds, settings.seed)
    gains = threshold.calibration_gain(y, oof, folds, settings.seed)
    method = "none" if policy.calibration == "none" else threshold.pick_calibration(gains, policy.calibration_min_gain)
    if method != "none":  # the threshold is chosen on the probabilities the served model will give
        oof = threshold.out_of_fold(calibrated(pipeline, method, folds, settings.seed), x, y, folds, settings.seed)
    choice = threshold.choose(y, oof, policy.threshold_rule, policy.cost_ratio)
    return Decision(threshold=choice, calibration=method, calibration_log_loss=dict(gains),
                    cv=metrics.from_proba(y, oof, choice.value))


def evaluate(setup: TrainingSetup, tuned: TunedCandidate, settings: Settings,
             on_progress: ProgressFn = None) -> EvaluatedCandidate:
    """Decide `tuned`'s threshold and calibration, refit it on the whole training split, and
    measure it on the test split: figures at its threshold, predictions, feature importance and
    learning curve (three refits on shares of at most the tuning sample's size)."""
    train_df, test_df, folds, seed = setup.data.train, setup.data.test, setup.folds, settings.seed
    report(on_progress, 0.0, f"{tuned.label}: decision threshold on cross-validated predictions")
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
    proba = model.predict_proba(x_test)[:, 1]
    report(on_progress, 0.6, f"{tuned.label}: importance and learning curve")
    kind, values = feature_importance(pipeline, x_test, y_test, seed)
    share = min(1.0, TUNE_MAX_ROWS / len(x_train))
    curve = learning_curve_data(pipeline, x_train, y_train, x_test, y_test, seed,
                                fractions=tuple(f * share for f in (0.1, 0.25, 0.5)))
    return EvaluatedCandidate(
        tuned=tuned, decision=decision, model=model,
        test=metrics.from_proba(y_test, proba, decision.threshold.value),
        predictions=HeldOutPredictions(y_true=y_test, proba=proba, threshold=decision.threshold.value),
        diagnostics=Diagnostics(kind=kind, features=tuple(settings.features), values=tuple(values),
                                learning_curve=LearningCurve.from_dict(curve),
                                params={k: str(v) for k, v in tuned.params.items()}))
