"""Model logging in MLflow's safe format, registry aliases."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from core import tracking
from core.config import Settings
from core.errors import TrackingError

FEATURES = ("a", "b")


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)})


def _log_tree(settings: Settings, df: pd.DataFrame) -> str:
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(tracking.feature_frame(df, FEATURES), df["y"])
    with mlflow.start_run(experiment_id=tracking.use(settings)):
        info = tracking.log_model(model, FEATURES, df)  # a tree holds types skops does not trust by default
    return tracking.register(settings, info.model_uri)


def test_tree_model_round_trips_in_safe_format(settings: Settings) -> None:
    df = _frame()
    s = settings.replace(features=FEATURES)
    version = _log_tree(s, df)
    loaded_version, model = tracking.load_model(s, version)
    proba = tracking.predict_proba(model, df, FEATURES)
    assert loaded_version == version and ((proba >= 0) & (proba <= 1)).all()
    served = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
    assert np.allclose(np.asarray(served.predict(tracking.feature_frame(df, FEATURES)))[:, 1], proba)


def test_promote_keeps_previous_and_rollback(settings: Settings) -> None:
    df = _frame()
    s = settings.replace(features=FEATURES)
    v1, v2 = _log_tree(s, df), _log_tree(s, df)
    assert tracking.champion(s) is None
    tracking.promote(s, v1)
    tracking.promote(s, v2)
    assert tracking.champion(s).version == v2 and tracking.alias_version(s, "previous").version == v1
    tracking.rollback(s)
    assert tracking.champion(s).version == v1 and tracking.alias_version(s, "previous").version == v2
    with pytest.raises(TrackingError, match="no version 99"):
        tracking.promote(s, "99")
