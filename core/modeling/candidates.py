"""The training candidates: PyCaret model ids, default budget, search spaces, criteria.

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

ALWAYS: tuple[str, ...] = ("lr", "dt")  # the course's pair
DEFAULT_MODELS: tuple[str, ...] = ("lr", "dt", "lightgbm")
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
CREATE_ARGS: Mapping[str, dict[str, Any]] = {"lightgbm": {"verbosity": -1}}
# Relative cost of a candidate, for the progress bar.
WEIGHTS: Mapping[str, float] = {"lr": 1.0, "dt": 0.8, "nb": 0.5, "lda": 0.5, "qda": 0.5, "lightgbm": 2.0}


# --------------------------------------------------------------------------- choices
def resolve_models(models: Sequence[str] | None) -> tuple[str, ...]:
    """The candidate ids to train: lr and dt always, then the others asked for (no duplicates)."""
    asked = [m.strip().lower() for m in (DEFAULT_MODELS if models is None else models) if m.strip()]
    unknown = [m for m in asked if m not in MODELS]
    if unknown:
        raise TrainingError(
            f"Unknown model id(s): {', '.join(unknown)}. Choose from: {', '.join(MODELS)}."
        )
    return tuple(dict.fromkeys([*ALWAYS, *asked]))


def check_budget(folds: int, n_iter: int, criterion: str) -> None:
    """TrainingError unless the CV folds, tuning iterations and criterion are usable."""
    if not 2 <= folds <= 20:
        raise TrainingError(f"folds must be between 2 and 20, got {folds}.")
    if not 1 <= n_iter <= 200:
        raise TrainingError(f"iterations must be between 1 and 200, got {n_iter}.")
    if criterion not in CRITERIA:
        raise TrainingError(f"Unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}.")
