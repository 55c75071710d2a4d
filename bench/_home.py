"""A workbench home with prepared data and a champion, for the benchmarks.

Uses WORKBENCH_HOME when it already has a champion; otherwise builds a throwaway home in a
temporary folder (raw files from KOBE_DATA_DIR or downloaded) with a scikit-learn logistic
regression registered as champion, logged exactly the way training logs models.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import tracking
from core.config import Settings  # noqa: E402
from core.data import preparation
from core.modeling import model_io, promotion, registry


def bench_home() -> Settings:
    """Settings of a home with prepared data and a registered champion."""
    settings = Settings.from_env()
    if os.environ.get("WORKBENCH_HOME") and preparation.is_prepared(settings) and registry.champion(settings):
        return settings
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="kobe-bench-")
    settings = Settings.from_env(env)
    preparation.prepare(settings)
    train = preparation.load_split(settings, "train")
    x = model_io.feature_frame(train, settings.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, train[settings.target])
    with mlflow.start_run(run_name="bench-model", experiment_id=tracking.use(settings)):
        info = model_io.log_model(model, settings.features, train, rules=settings.dataset.rules)
    promotion.promote(settings, registry.register(settings, info.model_uri))
    return settings
