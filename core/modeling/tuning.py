"""The first steps of a training: the data (`load_data`), PyCaret's experiment (`set_up`) and a
candidate's hyper-parameter search by CV log loss (`tune`).

PyCaret is imported lazily (5-10 s) and only through `ClassificationExperiment` objects (no
process-wide experiment). PyCaret's own MLflow logging is off (it crashes on MLflow 3).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import preparation
from core.modeling import metrics, model_io, preprocess
from core.modeling.candidates import CREATE_ARGS, GRIDS, MODELS, TUNE_MAX_ROWS
from core.modeling.results import TrainingData, TrainingSetup, TunedCandidate
from core.progress import ProgressFn, report

# PyCaret's CV table column -> our metric name
CV_COLUMNS: dict[str, str] = {"Log Loss": "log_loss", "Brier": "brier", "AUC": "roc_auc", "Accuracy": "accuracy",
                              "F1": "f1", "Prec.": "precision", "Recall": "recall"}


def as_frame(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The features in the model's types (`feature_frame`) and the labels as int64: what every
    candidate is fitted and tested on."""
    out = model_io.feature_frame(df, settings.features, settings.dataset.categorical_features)
    return out.assign(**{settings.target: df[settings.target].astype("int64").to_numpy()})


def load_data(settings: Settings) -> TrainingData:
    """The prepared training and test splits in the model's types and the baselines' figures.
    Raises NotPreparedError without prepared data."""
    train_df = as_frame(preparation.load_split(settings, "train"), settings)
    test_df = as_frame(preparation.load_split(settings, "test"), settings)
    baselines = metrics.baselines(train_df[settings.target].to_numpy(), test_df[settings.target].to_numpy())
    return TrainingData(train=train_df, test=test_df, baselines=baselines)


def tuning_sample(train_df: pd.DataFrame, settings: Settings, max_rows: int = TUNE_MAX_ROWS) -> pd.DataFrame:
    """The rows the hyper-parameters are tuned on: the whole training split up to `max_rows`,
    else a stratified sample of that many (seed = settings.seed). The chosen candidate is then
    refit on the whole split. On 80,000 rows this makes the default training about 2.5x faster;
    a search over a handful of settings needs far fewer rows than the final fit."""
    if len(train_df) <= max_rows:
        return train_df
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(train_df, train_size=max_rows, random_state=settings.seed,
                                 stratify=train_df[settings.target])
    return sample.reset_index(drop=True)


def set_up(settings: Settings, data: TrainingData, folds: int) -> TrainingSetup:
    """A PyCaret `ClassificationExperiment` on the tuning sample, with the served pipeline's
    preprocessing inside every CV fold, log loss and Brier added as metrics."""
    from pycaret.classification import ClassificationExperiment
    from sklearn.metrics import brier_score_loss, log_loss

    cols = [*settings.features, settings.target]
    steps = preprocess.preprocessor(settings.dataset, settings.seed)
    for _, step in steps:
        step.set_output(transform="pandas")  # PyCaret's wrapper passes frames between its steps
    exp = ClassificationExperiment()
    exp.setup(
        data=tuning_sample(data.train, settings)[cols], test_data=data.test[cols], target=settings.target,
        index=False, session_id=settings.seed, fold=folds, fold_strategy="stratifiedkfold", fold_shuffle=True,
        # PyCaret's own preprocessing is off: the served pipeline's steps (imputation, scaling,
        # category encoding, all scikit-learn) run inside every CV fold instead
        preprocess=False, custom_pipeline=steps,
        n_jobs=1, memory=False, verbose=False, html=False, log_experiment=False, system_log=False,
    )
    exp.add_metric("logloss", "Log Loss", log_loss, greater_is_better=False, target="pred_proba")
    exp.add_metric("brier", "Brier", brier_score_loss, greater_is_better=False, target="pred_proba")
    for unused in ("kappa", "mcc"):
        exp.remove_metric(unused)
    return TrainingSetup(data=data, experiment=exp, folds=int(folds))


def cv_means(scores: pd.DataFrame) -> dict[str, float]:
    """The 'Mean' row of PyCaret's CV table under our metric names (columns it lacks are left out)."""
    row = scores.loc["Mean"]
    return {key: float(row[col]) for col, key in CV_COLUMNS.items() if col in row.index}


def tune(setup: TrainingSetup, model_id: str, n_iter: int, on_progress: ProgressFn = None) -> TunedCandidate:
    """Create candidate `model_id` and search its hyper-parameters (`GRIDS`, else PyCaret's own
    space) by CV log loss: `n_iter` draws, fewer when the grid holds fewer points."""
    label = MODELS[model_id]
    exp = setup.experiment
    report(on_progress, 0.0, f"{label}: creating")
    base = exp.create_model(model_id, cross_validation=False, verbose=False, **CREATE_ARGS.get(model_id, {}))
    grid = GRIDS.get(model_id)
    if grid is not None:  # a small grid holds fewer points than iterations asked for
        n_iter = min(n_iter, int(np.prod([len(v) for v in grid.values()])))
    report(on_progress, 0.1, f"{label}: tuning ({n_iter} iterations × {setup.folds} folds)")
    tuned = exp.tune_model(base, n_iter=n_iter, optimize="logloss", custom_grid=grid, choose_better=False,
                           verbose=False)
    params = tuned.get_params()
    return TunedCandidate(name=model_id, label=label, estimator=tuned,
                          params={k: params[k] for k in sorted(params) if grid is None or k in grid},
                          all_params=params, tuning_cv=cv_means(exp.pull()), n_iter=int(n_iter))
