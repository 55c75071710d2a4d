"""Shared fixtures: an isolated workbench home (data/ + mlruns/) per test session.

The raw Kobe files come from KOBE_DATA_DIR (CI points it at ../shared/data/kobe); without it
they are downloaded from their public addresses on first use.
"""
from __future__ import annotations

from core.modeling import promotion

import os
from pathlib import Path

import pytest

from core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for an isolated home; the tracking store is always the embedded one."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fresh, empty home for one test."""
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def prepared_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with the Kobe data acquired and prepared (shared by the session: do not modify)."""
    from core.data import preparation

    s = make_settings(tmp_path_factory.mktemp("prepared"))
    preparation.prepare(s)
    return s


@pytest.fixture(scope="session")
def champion_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with prepared data and a registered `champion`: a real scikit-learn logistic
    regression logged the way training logs models (fast; for serving/scoring/drift tests).
    Shared by the session: tests that change the registry make their own with `make_champion_home`."""
    return make_champion_home(tmp_path_factory.mktemp("champion"))


def make_champion_home(home: Path) -> Settings:
    """Prepare data in `home` and register a logistic regression as champion (about 10 s)."""
    from core.data import preparation

    s = make_settings(home)
    preparation.prepare(s)
    register_lr_champion(s)
    return s


def register_lr_champion(s: Settings, run_name: str = "fixture-model") -> str:
    """Fit a logistic regression on the prepared training split, log it the way training logs
    models, register it and make it champion; returns its version."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core import tracking
    from core.data import preparation
    from core.modeling import model_io, registry

    train = preparation.load_split(s, "train")
    x = model_io.feature_frame(train, s.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, train[s.target])
    with mlflow.start_run(run_name=run_name, experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules)
    return promotion.promote(s, registry.register(s, info.model_uri)).version


@pytest.fixture(scope="session")
def served_settings(champion_settings: Settings):
    """`champion_settings` with its champion served by a real `mlflow models serve` on a free
    port (started once per session, always stopped at teardown). Tests that kill it restart it."""
    from core.serving import server

    s = champion_settings.replace(serve_port=server.free_port())
    server.start(s)
    try:
        yield s
    finally:
        server.stop(s)


# --------------------------------------------------------------------------- training (issue 3)
TINY_TRAINING = {"models": ["lr", "dt"], "folds": 3, "n_iter": 2}


def prepared_copy(tmp_path_factory: pytest.TempPathFactory, prepared: Settings, name: str) -> Settings:
    """A new home holding a copy of `prepared`'s data (no runs, no models): cheaper than preparing."""
    import shutil

    s = make_settings(tmp_path_factory.mktemp(name))
    shutil.copytree(prepared.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run"))
    return s


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, prepared_settings: Settings):
    """(settings, TrainResult) of one tiny real training (lr + dt, 3 folds, 2 iterations) in its own
    home, with a registered champion (shared by the session: do not train or promote in it)."""
    from core.modeling import training

    s = prepared_copy(tmp_path_factory, prepared_settings, "trained")
    return s, training.train(s, **TINY_TRAINING)
