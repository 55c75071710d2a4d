"""Model logging in MLflow's safe format, registry aliases."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from core import catalog, tracking
from core.config import Settings
from core.errors import TrackingError
from core.modeling import model_io, registry
from core.modeling import promotion

FEATURES = ("a", "b")
# a two-feature definition of its own (its registry and data are apart from Kobe's)
AB = catalog.from_dict({"name": "ab", "target": {"column": "y"}, "sources": [{"file": "ab.csv"}],
                        "dev": {"source": "ab.csv"},
                        "features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"}]})


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)})


def _log_tree(settings: Settings, df: pd.DataFrame) -> str:
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(model_io.feature_frame(df, FEATURES), df["y"])
    with mlflow.start_run(experiment_id=tracking.use(settings)):
        info = model_io.log_model(model, FEATURES, df)  # a tree holds types skops does not trust by default
    return registry.register(settings, info.model_uri)


def test_tree_model_round_trips_in_safe_format(settings: Settings) -> None:
    df = _frame()
    s = settings.replace(dataset=AB)
    version = _log_tree(s, df)
    loaded_version, model = registry.load_model(s, version)
    proba = model_io.predict_proba(model, df, FEATURES)
    assert loaded_version == version and ((proba >= 0) & (proba <= 1)).all()
    served = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
    assert np.allclose(np.asarray(served.predict(model_io.feature_frame(df, FEATURES)))[:, 1], proba)


def test_promote_keeps_previous_and_rollback(settings: Settings) -> None:
    df = _frame()
    s = settings.replace(dataset=AB)
    v1, v2 = _log_tree(s, df), _log_tree(s, df)
    assert registry.champion(s) is None
    promotion.promote(s, v1)
    promotion.promote(s, v2)
    assert registry.champion(s).version == v2 and registry.alias_version(s, "previous").version == v1
    promotion.rollback(s)
    assert registry.champion(s).version == v1 and registry.alias_version(s, "previous").version == v2
    with pytest.raises(TrackingError, match="no version 99"):
        promotion.promote(s, "99")
