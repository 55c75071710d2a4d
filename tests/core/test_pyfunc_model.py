"""The served pyfunc path (core/modeling/pyfunc_model.py): same probabilities as the pipeline, fast when it can be."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from core import tracking
from core.config import Settings
from core.data import preparation
from core.modeling import model_io, pyfunc_model

TOL = pyfunc_model.TOLERANCE  # BLAS may sum in another order than scikit-learn's own call: ~1e-16


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.shape(a) == np.shape(b) and float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= TOL


@pytest.fixture(scope="module")
def splits(prepared_settings: Settings) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    s = prepared_settings
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    return model_io.feature_frame(train, s.features), train[s.target], model_io.feature_frame(test, s.features)


PIPELINES = {
    "scaler+lr": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    "scaler+dt": lambda: make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=6, random_state=0)),
    "scaler+lightgbm": lambda: make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=40, num_leaves=6,
                                                                             verbosity=-1, n_jobs=1)),
    "imputer+minmax+rf": lambda: make_pipeline(SimpleImputer(), MinMaxScaler(), RandomForestClassifier(
        n_estimators=20, max_depth=6, random_state=0, n_jobs=1)),
    "lr alone": lambda: LogisticRegression(max_iter=500),
}


@pytest.mark.parametrize("kind", list(PIPELINES))
def test_fast_path_equals_predict_proba(splits, kind: str) -> None:
    x, y, test = splits
    model = PIPELINES[kind]().fit(x, y)
    fast = pyfunc_model.compile_proba(model)
    assert fast is not None
    rows = test.to_numpy(dtype=np.float64)
    assert same(fast(rows.copy()), model.predict_proba(test))


def test_unknown_final_step_without_known_transformer_has_no_fast_path(splits) -> None:
    x, y, _ = splits
    assert pyfunc_model.compile_proba(KNeighborsClassifier().fit(x, y)) is None
    assert pyfunc_model.compile_proba(make_pipeline(StandardScaler().set_output(transform="pandas"),
                                                   LogisticRegression()).fit(x, y)) is None


@pytest.mark.parametrize("kind", ["scaler+lightgbm", "knn"])
def test_logged_model_serves_through_pyfunc_model(prepared_settings: Settings, splits, kind: str) -> None:
    """Logged by model_io.log_model: pyfunc loads via pyfunc_model, sklearn loads the plain pipeline."""
    x, y, test = splits
    model = (KNeighborsClassifier(n_neighbors=25) if kind == "knn" else PIPELINES[kind]()).fit(x, y)
    with mlflow.start_run(experiment_id=tracking.use(prepared_settings)):
        info = model_io.log_model(model, prepared_settings.features, x.assign(**{prepared_settings.target: y}))
    served = mlflow.pyfunc.load_model(info.model_uri)
    impl = served._model_impl
    assert type(impl).__name__ == "ServedModel"
    assert (impl.fast is None) == (kind == "knn")
    frame = test.astype("float64")
    assert same(served.predict(frame), model.predict_proba(frame))
    plain = mlflow.sklearn.load_model(info.model_uri)
    assert type(plain) is type(model)
    assert np.array_equal(plain.predict_proba(frame), model.predict_proba(frame))
    assert impl.rules is None  # logged without a rule table: scores whatever it gets, as before


def test_a_model_logged_with_the_rule_table_refuses_rows_outside_the_domain(prepared_settings: Settings,
                                                                           splits) -> None:
    x, y, test = splits
    model = PIPELINES["scaler+lightgbm"]().fit(x, y)
    with mlflow.start_run(experiment_id=tracking.use(prepared_settings)):
        info = model_io.log_model(model, prepared_settings.features, x.assign(**{prepared_settings.target: y}),
                                  rules=prepared_settings.dataset.rules)
    served = mlflow.pyfunc.load_model(info.model_uri)
    frame = test.astype("float64").head(50)
    assert same(served.predict(frame), model.predict_proba(frame))  # valid rows score as before
    bad = frame.copy()
    bad.loc[bad.index[:3], "period"] = 9.0
    bad.loc[bad.index[0], "lat"] = np.nan
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        served.predict(bad)
    assert "period: out-of-domain values in 3 rows" in str(err.value)
    assert "lat: empty (NaN) values in 1 row" in str(err.value)


def test_non_finite_rows_and_other_columns_go_through_the_pipeline(splits) -> None:
    x, y, test = splits
    lr = PIPELINES["scaler+lr"]().fit(x, y)
    served = pyfunc_model.ServedModel(lr)
    assert served.verify(test.head(5).to_numpy(dtype=np.float64))
    with_nan = test.head(3).astype("float64").copy()
    with_nan.iloc[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's own message, as without the fast path
        served.predict_proba(with_nan)
    reordered = test.head(3)[list(reversed(test.columns))]
    with pytest.raises(ValueError, match="feature names"):
        served.predict_proba(reordered)
    gbm = PIPELINES["scaler+lightgbm"]().fit(x, y)  # LightGBM scores NaN itself: same answer both ways
    assert same(pyfunc_model.ServedModel(gbm).predict_proba(with_nan), gbm.predict_proba(with_nan))


def test_a_fast_path_that_disagrees_is_dropped(splits) -> None:
    x, y, test = splits
    served = pyfunc_model.ServedModel(PIPELINES["scaler+lr"]().fit(x, y))
    right = served.fast
    served.fast = lambda rows: right(rows) + 1e-9
    assert not served.verify(test.head(5).to_numpy(dtype=np.float64))
    assert served.fast is None
    assert np.array_equal(served.predict_proba(test.head(3)), served.sklearn_model.predict_proba(test.head(3)))


def test_large_in_process_batches_use_every_core_with_the_same_answer(splits, monkeypatch) -> None:
    """model_io.predict_proba goes through the fast path from PARALLEL_ROWS rows, LightGBM on all cores."""
    x, y, test = splits
    gbm = PIPELINES["scaler+lightgbm"]().fit(x, y)
    used: list[int | None] = []
    real = pyfunc_model.ServedModel.__init__

    def spy(self, model, threads=None):
        used.append(threads)
        real(self, model, threads)
    monkeypatch.setattr(pyfunc_model.ServedModel, "__init__", spy)
    monkeypatch.setattr(model_io, "PARALLEL_ROWS", 1000)
    features = tuple(test.columns)
    assert same(model_io.predict_proba(gbm, test, features), gbm.predict_proba(test)[:, 1])
    assert used and used[-1] is not None and used[-1] >= 1
    small = test.head(999)
    before = len(used)
    assert same(model_io.predict_proba(gbm, small, features), gbm.predict_proba(small)[:, 1])
    assert len(used) == before  # below the threshold: the pipeline itself
