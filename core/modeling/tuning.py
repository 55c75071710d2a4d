"""The first steps of a training: the data (`load_data`), PyCaret's experiment (`set_up`) and a
candidate's hyper-parameter search by the task's CV criterion (`tune`: log loss for a
classifier, RMSE for a regression).

PyCaret is imported lazily (5-10 s) and only through `ClassificationExperiment` (binary and
multiclass) or `RegressionExperiment` objects (no process-wide experiment). PyCaret's own MLflow
logging is off (it crashes on MLflow 3).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.errors import TrainingError
from core.data import preparation
from core.modeling import metrics, model_io, preprocess
from core.modeling.candidates import CREATE_ARGS, TUNE_MAX_ROWS, grids_for, model_label
from core.modeling.results import TrainingData, TrainingSetup, TunedCandidate
from core.modeling.tasks import task_kind
from core.progress import ProgressFn, report

# PyCaret's CV table column -> our metric name, per task kind (PyCaret's multiclass "F1" is the
# support-weighted F1: not ours, left out)
CV_COLUMNS: dict[str, str] = {"Log Loss": "log_loss", "Brier": "brier", "AUC": "roc_auc", "Accuracy": "accuracy",
                              "F1": "f1", "Prec.": "precision", "Recall": "recall"}
TASK_CV_COLUMNS: dict[str, dict[str, str]] = {
    "binary": CV_COLUMNS,
    "multiclass": {"Log Loss": "log_loss", "Accuracy": "accuracy", "Macro F1": "f1_macro"},
    "regression": {"RMSE": "rmse", "MAE": "mae", "R2": "r2"},
}
# our criterion -> PyCaret's metric id (what `tune_model(optimize=...)` takes)
OPTIMIZE: dict[str, str] = {"log_loss": "logloss", "brier": "brier", "roc_auc": "auc", "f1": "f1",
                            "accuracy": "accuracy", "f1_macro": "f1_macro", "rmse": "rmse", "mae": "mae", "r2": "r2"}


def label_dtype(task: str) -> str:
    """How the model takes its labels: int64 classes, float64 numbers (a regression)."""
    return "float64" if task == "regression" else "int64"


def as_frame(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The features in the model's types (`feature_frame`) and the labels as the task's model takes
    them (int64 classes, float64 numbers): what every candidate is fitted and tested on."""
    out = model_io.feature_frame(df, settings.features, settings.dataset.categorical_features)
    return out.assign(**{settings.target: df[settings.target].astype(label_dtype(settings.dataset.task)).to_numpy()})


def load_data(settings: Settings) -> TrainingData:
    """The prepared training and test splits in the model's types and the baselines' figures.
    Raises NotPreparedError without prepared data."""
    task = settings.dataset.task
    train_df = as_frame(preparation.load_split(settings, "train"), settings)
    test_df = as_frame(preparation.load_split(settings, "test"), settings)
    baselines = metrics.task_baselines(task, train_df[settings.target].to_numpy(), test_df[settings.target].to_numpy(),
                                       n_classes=len(settings.dataset.target.names),
                                       level=settings.promotion.interval_level)
    return TrainingData(train=train_df, test=test_df, baselines=baselines, task=task)


def tuning_sample(train_df: pd.DataFrame, settings: Settings, max_rows: int = TUNE_MAX_ROWS) -> pd.DataFrame:
    """The rows the hyper-parameters are tuned on: the whole training split up to `max_rows`,
    else a stratified sample of that many (seed = settings.seed). The chosen candidate is then
    refit on the whole split. On 80,000 rows this makes the default training about 2.5x faster;
    a search over a handful of settings needs far fewer rows than the final fit."""
    if len(train_df) <= max_rows:
        return train_df
    from sklearn.model_selection import train_test_split

    classifier = task_kind(settings.dataset.task).classifier
    sample, _ = train_test_split(train_df, train_size=max_rows, random_state=settings.seed,
                                 stratify=train_df[settings.target] if classifier else None)
    return sample.reset_index(drop=True)


def min_class_rows(y: np.ndarray) -> tuple[int, int]:
    """(label, rows) of the least frequent class of integer labels `y`."""
    counts = np.bincount(np.asarray(y).astype(int))
    present = np.flatnonzero(counts)
    least = int(present[np.argmin(counts[present])]) if len(present) else 0
    return least, int(counts[least]) if len(counts) else 0


def check_folds(settings: Settings, data: TrainingData, folds: int) -> None:
    """TrainingError naming the class when a classifier's training split (or tuning sample) holds
    fewer rows of a class than `folds`: stratified cross-validation needs one per fold, and every
    class must be seen in every fold's training part."""
    spec = settings.dataset
    if not task_kind(spec.task).classifier:
        return
    y = tuning_sample(data.train, settings)[settings.target].to_numpy()
    k = len(spec.target.names)
    missing = [i for i in range(k) if not np.any(y == i)]
    if missing:
        raise TrainingError(f"The training split holds no row of class {spec.target.name_of(missing[0])!r}: "
                            "prepare the data again (every class must be in the training split).")
    label, rows = min_class_rows(y)
    if rows < folds:
        raise TrainingError(
            f"Class {spec.target.name_of(label)!r} has only {rows} training rows, fewer than the {folds} "
            f"cross-validation folds: train with --folds {max(2, rows)} or fewer, or merge the class into another.")


def multiclass_scores(labels: list[int]) -> tuple[Any, Any]:
    """The multiclass log loss and macro F1 with every class's label bound in: PyCaret 3.3.2 keeps
    `add_metric`'s keyword arguments for its hold-out table but calls the CV scorer without them,
    and turns a failing score into 0.0 (a fold whose rows lack a class would then score a perfect
    log loss of 0 and win the search)."""
    from sklearn.metrics import f1_score, log_loss

    def multiclass_log_loss(y_true: Any, proba: Any, **_: Any) -> float:
        return float(log_loss(y_true, proba, labels=labels))

    def macro_f1(y_true: Any, pred: Any, **_: Any) -> float:
        return float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0))

    return multiclass_log_loss, macro_f1


def set_up(settings: Settings, data: TrainingData, folds: int) -> TrainingSetup:
    """A PyCaret experiment on the tuning sample, with the served pipeline's preprocessing inside
    every CV fold: a `ClassificationExperiment` with log loss (with every class's label) added as
    a metric (a binary one Brier too; a multiclass one macro F1), or a `RegressionExperiment`
    (RMSE, MAE, R²; the others removed)."""
    kind = task_kind(settings.dataset.task)
    check_folds(settings, data, folds)
    cols = [*settings.features, settings.target]
    steps = preprocess.preprocessor(settings.dataset, settings.seed)
    for _, step in steps:
        step.set_output(transform="pandas")  # PyCaret's wrapper passes frames between its steps
    if kind.classifier:
        from pycaret.classification import ClassificationExperiment

        exp, strategy = ClassificationExperiment(), "stratifiedkfold"
    else:
        from pycaret.regression import RegressionExperiment

        exp, strategy = RegressionExperiment(), "kfold"
    exp.setup(
        data=tuning_sample(data.train, settings)[cols], test_data=data.test[cols], target=settings.target,
        index=False, session_id=settings.seed, fold=folds, fold_strategy=strategy, fold_shuffle=True,
        # PyCaret's own preprocessing is off: the served pipeline's steps (imputation, scaling,
        # category encoding, all scikit-learn) run inside every CV fold instead
        preprocess=False, custom_pipeline=steps,
        n_jobs=1, memory=False, verbose=False, html=False, log_experiment=False, system_log=False,
    )
    if kind.name == "binary":
        from sklearn.metrics import brier_score_loss, log_loss

        exp.add_metric("logloss", "Log Loss", log_loss, greater_is_better=False, target="pred_proba")
        exp.add_metric("brier", "Brier", brier_score_loss, greater_is_better=False, target="pred_proba")
        unused: tuple[str, ...] = ("kappa", "mcc")
    elif kind.classifier:
        labels = list(range(len(settings.dataset.target.names)))
        log_loss_of, f1_macro_of = multiclass_scores(labels)
        exp.add_metric("logloss", "Log Loss", log_loss_of, greater_is_better=False, target="pred_proba")
        exp.add_metric("f1_macro", "Macro F1", f1_macro_of, greater_is_better=True, target="pred")
        # PyCaret's multiclass AUC asks LogisticRegression for its decision function, which are no
        # probabilities: it fails in every fold and PyCaret reports 0.0; ours is not needed
        unused = ("kappa", "mcc", "auc")
    else:
        unused = ("rmsle", "mape", "mse")  # RMSLE fails on negative targets, MAPE on zeros (ours handles them)
    for name in unused:
        exp.remove_metric(name)
    return TrainingSetup(data=data, experiment=exp, folds=int(folds))


def cv_means(scores: pd.DataFrame, task: str = "binary") -> dict[str, float]:
    """The 'Mean' row of PyCaret's CV table under our metric names (columns it lacks are left out)."""
    row = scores.loc["Mean"]
    return {key: float(row[col]) for col, key in TASK_CV_COLUMNS[task].items() if col in row.index}


def tune(setup: TrainingSetup, model_id: str, n_iter: int, on_progress: ProgressFn = None) -> TunedCandidate:
    """Create candidate `model_id` and search its hyper-parameters (the task's `grids_for`, else
    PyCaret's own space) by the task's CV criterion (`TaskKind.criterion`: log loss, RMSE):
    `n_iter` draws, fewer when the grid holds fewer points."""
    task = setup.data.task
    label = model_label(model_id, task)
    exp = setup.experiment
    report(on_progress, 0.0, f"{label}: creating")
    base = exp.create_model(model_id, cross_validation=False, verbose=False, **CREATE_ARGS.get(model_id, {}))
    grid = grids_for(task).get(model_id)
    if grid is not None:  # a small grid holds fewer points than iterations asked for
        n_iter = min(n_iter, int(np.prod([len(v) for v in grid.values()])))
    report(on_progress, 0.1, f"{label}: tuning ({n_iter} iterations × {setup.folds} folds)")
    tuned = exp.tune_model(base, n_iter=n_iter, optimize=OPTIMIZE[task_kind(task).criterion], custom_grid=grid,
                           choose_better=False, verbose=False)
    params = tuned.get_params()
    return TunedCandidate(name=model_id, label=label, estimator=tuned,
                          params={k: params[k] for k in sorted(params) if grid is None or k in grid},
                          all_params=params, tuning_cv=cv_means(exp.pull(), task), n_iter=int(n_iter))
