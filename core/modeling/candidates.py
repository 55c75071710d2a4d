"""The training candidates per task kind: PyCaret model ids, default budget, search spaces, criteria.

A classifier (binary or multiclass) is one of PyCaret's classification models (`MODELS`), a
regression one of its regression models (`REGRESSION_MODELS`); `models_for(task)`,
`always_for(task)`, `default_models_for(task)` and `grids_for(task)` give a task's lists, and
`resolve_models(models, task)` its candidates. Binary keeps the lists it always had.

Light on purpose (no PyCaret, MLflow or pandas import), so the CLI and the Train page can show
the choices instantly.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from core.errors import TrainingError

# PyCaret 3.3.2 classifiers that return probabilities in reasonable time on ~16k rows. Left out:
# svm and ridge (no predict_proba), rbfsvm and gpc (minutes to hours, GBs of memory), dummy
# (the baselines are reported anyway).
MODELS: Mapping[str, str] = {
    "lr": "Logistic Regression",
    "dt": "Decision Tree",
    "lightgbm": "LightGBM",
    "gbc": "Gradient Boosting",
    "rf": "Random Forest",
    "et": "Extra Trees",
    "ada": "AdaBoost",
    "knn": "K Nearest Neighbours",
    "nb": "Naive Bayes",
    "lda": "Linear Discriminant Analysis",
    "qda": "Quadratic Discriminant Analysis",
    "mlp": "MLP (neural network)",
}
# MLflow tags of training runs (role: "training" for the parent, "candidate" for each model)
ROLE_TAG = "workbench.role"
MODEL_TAG = "workbench.model"

# PyCaret 3.3.2 regressors that fit in reasonable time on ~50k rows. Left out: kr, svm, tr, ransac,
# ard (minutes or GBs on tens of thousands of rows), lar, llar, omp, par (rarely useful), dummy
# (the baselines are reported anyway).
REGRESSION_MODELS: Mapping[str, str] = {
    "ridge": "Ridge Regression",
    "lr": "Linear Regression",
    "dt": "Decision Tree",
    "lightgbm": "LightGBM",
    "lasso": "Lasso Regression",
    "en": "Elastic Net",
    "br": "Bayesian Ridge",
    "huber": "Huber Regressor",
    "gbr": "Gradient Boosting",
    "rf": "Random Forest",
    "et": "Extra Trees",
    "ada": "AdaBoost",
    "knn": "K Nearest Neighbours",
    "mlp": "MLP (neural network)",
}

ALWAYS: tuple[str, ...] = ("lr", "dt")  # the course's pair
DEFAULT_MODELS: tuple[str, ...] = ("lr", "dt", "lightgbm")
# a regression's pair: linear (ridge: a little shrinkage, never worse than plain least squares on
# collinear inputs) and a decision tree; LightGBM by default
REGRESSION_ALWAYS: tuple[str, ...] = ("ridge", "dt")
REGRESSION_DEFAULT_MODELS: tuple[str, ...] = ("ridge", "dt", "lightgbm")
DEFAULT_FOLDS = 3
DEFAULT_N_ITER = 4
# hyper-parameters are tuned by CV on at most this many training rows (a stratified sample),
# the chosen candidate refit on all of them (core.modeling.training.tuning_sample)
TUNE_MAX_ROWS = 20_000
PROMOTE_MODES: tuple[str, ...] = ("gate", "always")  # `train --promote`: through the gate, or whatever it says
# criterion -> True when larger is better
# (every task's criteria; a task kind names the ones it offers, `core.modeling.tasks`)
CRITERIA: Mapping[str, bool] = {"log_loss": False, "brier": False, "roc_auc": True, "f1": True, "accuracy": True,
                                "f1_macro": True, "rmse": False, "mae": False, "r2": True}

# Focused search spaces (sampled at random, `n_iter` draws); other models use PyCaret's own.
GRIDS: Mapping[str, dict[str, list[Any]]] = {
    "lr": {"C": [0.01, 0.1, 1.0, 10.0]},
    "dt": {"max_depth": [3, 4, 5, 6], "min_samples_leaf": [50, 100, 200, 400], "criterion": ["gini", "entropy"]},
    "lightgbm": {"n_estimators": [50, 80, 120], "learning_rate": [0.04, 0.06], "num_leaves": [4, 6, 8],
                 "min_child_samples": [50, 100, 200], "reg_lambda": [1.0, 5.0, 10.0]},
    "gbc": {"n_estimators": [60, 100, 150], "learning_rate": [0.03, 0.05, 0.1], "max_depth": [2, 3],
            "min_samples_leaf": [20, 50, 100], "subsample": [0.7, 1.0]},
    "rf": {"n_estimators": [100, 200], "max_depth": [4, 6, 8], "min_samples_leaf": [50, 100, 200],
           "max_features": [0.5, 1.0]},
    "et": {"n_estimators": [100, 200], "max_depth": [4, 6, 8], "min_samples_leaf": [50, 100, 200],
           "max_features": [0.5, 1.0]},
}
# A multiclass target: the binary spaces were tuned on noisy Kobe shots (heavily regularised trees,
# leaves of 50-400 rows), which starve a small table (penguins: 275 training rows) or a clean one
# (diamonds' cut); these leave the trees room to fit.
MULTICLASS_GRIDS: Mapping[str, dict[str, list[Any]]] = {
    **GRIDS,
    "dt": {"max_depth": [4, 6, 8, 10], "min_samples_leaf": [5, 10, 20, 50], "criterion": ["gini", "entropy"]},
    "lightgbm": {"n_estimators": [100, 200], "learning_rate": [0.05, 0.1], "num_leaves": [15, 31],
                 "min_child_samples": [5, 10, 20], "reg_lambda": [0.0, 1.0]},
}
# Regression: every point of a space is a reasonable model (4 draws must not land on a starved one)
REGRESSION_GRIDS: Mapping[str, dict[str, list[Any]]] = {
    "ridge": {"alpha": [0.01, 0.1, 1.0, 10.0]},
    "lasso": {"alpha": [0.001, 0.01, 0.1, 1.0]},
    "dt": {"max_depth": [6, 8, 10, 12], "min_samples_leaf": [5, 10, 20, 50]},
    "lightgbm": {"n_estimators": [150, 250], "learning_rate": [0.08, 0.12], "num_leaves": [31, 63],
                 "min_child_samples": [10, 20], "reg_lambda": [0.0, 1.0]},
    "gbr": {"n_estimators": [100, 200], "learning_rate": [0.05, 0.1], "max_depth": [3, 5],
            "min_samples_leaf": [5, 20], "subsample": [0.8, 1.0]},
    "rf": {"n_estimators": [100, 200], "max_depth": [8, 12, None], "min_samples_leaf": [1, 5, 20],
           "max_features": [0.5, 1.0]},
    "et": {"n_estimators": [100, 200], "max_depth": [8, 12, None], "min_samples_leaf": [1, 5, 20],
           "max_features": [0.5, 1.0]},
}
CREATE_ARGS: Mapping[str, dict[str, Any]] = {"lightgbm": {"verbosity": -1}}
# Relative cost of a candidate, for the progress bar.
WEIGHTS: Mapping[str, float] = {"lr": 1.0, "dt": 0.8, "nb": 0.5, "lda": 0.5, "qda": 0.5, "lightgbm": 2.0,
                                "ridge": 0.6, "lasso": 0.6, "en": 0.6, "br": 0.6}


# --------------------------------------------------------------------------- per task kind
def models_for(task: str = "binary") -> Mapping[str, str]:
    """The candidate ids a task kind offers, with their names (classifiers or regressors)."""
    return REGRESSION_MODELS if task == "regression" else MODELS


def always_for(task: str = "binary") -> tuple[str, ...]:
    """The candidates a task kind always trains (binary and multiclass: lr, dt; regression: ridge, dt)."""
    return REGRESSION_ALWAYS if task == "regression" else ALWAYS


def default_models_for(task: str = "binary") -> tuple[str, ...]:
    """The candidates of a training that names none."""
    return REGRESSION_DEFAULT_MODELS if task == "regression" else DEFAULT_MODELS


def grids_for(task: str = "binary") -> Mapping[str, dict[str, list[Any]]]:
    """The focused search spaces of a task kind (a model without one: PyCaret's own space)."""
    return {"regression": REGRESSION_GRIDS, "multiclass": MULTICLASS_GRIDS}.get(task, GRIDS)


def model_label(model_id: str, task: str = "binary") -> str:
    """A candidate's name for a task kind ('lr': Logistic Regression, or Linear Regression for a
    regression); an id it does not know as it is."""
    return models_for(task).get(model_id) or MODELS.get(model_id) or REGRESSION_MODELS.get(model_id) or model_id


# --------------------------------------------------------------------------- choices
def resolve_models(models: Sequence[str] | None, task: str = "binary") -> tuple[str, ...]:
    """The candidate ids to train for a task kind: its pair always (`always_for`), then the others
    asked for (no duplicates)."""
    known = models_for(task)
    asked = [m.strip().lower() for m in (default_models_for(task) if models is None else models) if m.strip()]
    unknown = [m for m in asked if m not in known]
    if unknown:
        which = "" if task == "binary" else f" (a {task} target takes PyCaret's {'regressors' if task == 'regression' else 'classifiers'})"
        raise TrainingError(
            f"Unknown model id(s): {', '.join(unknown)}. Choose from: {', '.join(known)}{which}."
        )
    return tuple(dict.fromkeys([*always_for(task), *asked]))


def check_budget(folds: int, n_iter: int, criterion: str) -> None:
    """TrainingError unless the CV folds, tuning iterations and criterion are usable."""
    if not 2 <= folds <= 20:
        raise TrainingError(f"folds must be between 2 and 20, got {folds}.")
    if not 1 <= n_iter <= 200:
        raise TrainingError(f"iterations must be between 1 and 200, got {n_iter}.")
    if criterion not in CRITERIA:
        raise TrainingError(f"Unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}.")
