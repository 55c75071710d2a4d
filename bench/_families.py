"""Kobe homes whose champion is one model family each, fitted with the workbench's own
pipeline (`core.modeling.fitting.plain_pipeline`, calibrated as training calibrates) and logged as
training logs it (`model_io.log_model`), for the serving benchmarks (issue 33).

FAMILIES: (key, PyCaret-like estimator, feature set, calibration). A home is built once under
`root/<key>` and reused when it already has a champion.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402

SEED = 42


def estimator(name: str) -> Any:
    """The family's estimator with the budget's kind of settings (what `train` tunes lands near these)."""
    if name == "lr":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(C=1.0, max_iter=1000, random_state=SEED)
    if name == "dt":
        from sklearn.tree import DecisionTreeClassifier
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=100, random_state=SEED)
    if name == "lightgbm":
        from lightgbm import LGBMClassifier
        return LGBMClassifier(n_estimators=120, learning_rate=0.06, num_leaves=8, min_child_samples=100,
                              reg_lambda=5.0, random_state=SEED, n_jobs=-1, verbose=-1)
    raise ValueError(name)


# (key, family, feature set, calibration)
FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("lr-default", "lr", "default", "none"),
    ("dt-default-isotonic", "dt", "default", "isotonic"),
    ("lightgbm-extended-sigmoid", "lightgbm", "extended", "sigmoid"),
    ("lr-extended", "lr", "extended", "none"),
    ("dt-extended", "dt", "extended", "none"),
)


def family_settings(root: Path, key: str, feature_set: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = str(root / key)
    s = Settings.from_env(env)
    return s.replace(dataset=s.dataset.with_feature_set(feature_set))


def fitted(settings: Settings, family: str, calibration: str) -> Any:
    from core.data import preparation
    from core.modeling import fitting, model_io

    train = preparation.load_split(settings, "train")
    x = model_io.feature_frame(train, settings.features, settings.dataset.categorical_features)
    model = fitting.calibrated(fitting.plain_pipeline(settings.dataset, estimator(family), SEED),
                               calibration, 3, SEED)
    return model.fit(x, train[settings.target])


def family_home(root: Path, key: str, family: str, feature_set: str, calibration: str) -> Settings:
    """The settings of a home whose champion is this family (built when missing)."""
    import mlflow

    from core import tracking
    from core.data import preparation
    from core.modeling import model_io, promotion, registry

    settings = family_settings(root, key, feature_set)
    tracking.use(settings)  # MLflow's URIs: this home's
    if preparation.is_prepared(settings) and registry.champion(settings):
        return settings
    preparation.prepare(settings)
    model = fitted(settings, family, calibration)
    train = preparation.load_split(settings, "train")
    with mlflow.start_run(run_name=f"bench-{key}", experiment_id=tracking.use(settings)):
        info = model_io.log_model(model, settings.features, train, rules=settings.dataset.rules,
                                  categorical=settings.dataset.categorical_features)
    promotion.promote(settings, registry.register(settings, info.model_uri))
    return settings
