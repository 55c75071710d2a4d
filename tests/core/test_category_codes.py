"""The served pipeline's category codes (core/modeling/category_codes.py, issue 28: one row against
110,000 categories took about 250 ms, scikit-learn's OrdinalEncoder searching its categories on
every call): the stand-in gives exactly the encoder's codes, the pipeline's probabilities, and the
served model (saved, then loaded by MLflow's pyfunc) answers as the pipeline without calling the
encoder."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from core import tracking
from core.dataset import DatasetSpec, Feature, Subset, Target
from core.modeling import model_io, preprocess, pyfunc_model
from core.modeling.category_codes import CategoryCodes, with_category_codes
from tests.conftest import make_settings

N_CODES = 50_000
CODES = tuple(f"c{i:05d}" for i in range(N_CODES))
PLANS = ("basic", "plus", "pro")


def definition(codes: tuple[str, ...]) -> DatasetSpec:
    return DatasetSpec(
        name="codes", title="Many codes", target=Target(column="bought"),
        features_spec=(Feature("usage", "numeric", minimum=0.0, maximum=100.0, nullable=True),
                       Feature("plan", "categorical", values=PLANS, nullable=True),
                       Feature("code", "categorical", values=codes, nullable=True)),
        sources=(), dev=Subset(source="codes.parquet"))


SPEC = definition(CODES)
# the saved model's test: 5,000 codes (skops takes about 20 s to write a model of 50,000)
SAVED_SPEC = definition(CODES[:5000])
FEATURES, CATEGORICAL = SPEC.features, SPEC.categorical_features


def shop(n: int, seed: int) -> pd.DataFrame:
    """Training rows: the first 3,000 codes seen (the other 47,000 are known to the definition
    only), some plans and usages missing; `bought` depends on all three."""
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 3000, n)
    plan = rng.choice(PLANS, n).astype(object)
    usage = rng.uniform(0, 100, n)
    logit = 0.02 * (usage - 50) + np.where(code % 3 == 0, 1.0, -0.5) + (plan == "pro") - (plan == "basic")
    frame = pd.DataFrame({"usage": usage, "plan": plan, "code": np.array(CODES, dtype=object)[code],
                          "bought": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame.loc[rng.random(n) < 0.05, "plan"] = np.nan
    frame.loc[rng.random(n) < 0.05, "usage"] = np.nan
    frame.loc[rng.random(n) < 0.02, "code"] = np.nan
    return frame


def rows() -> pd.DataFrame:
    """Rows to score: codes seen in training, known to the definition only, never seen (not in
    the definition), and missing; plans likewise."""
    code = ["c00001", "c00003", "c04999", "c49999", "zzz", np.nan, "c00010", "c00002"]
    plan = ["pro", "basic", "plus", np.nan, "pro", "gold", np.nan, "plus"]
    usage = [10.0, 50.0, np.nan, 90.0, 30.0, 20.0, 70.0, 0.0]
    return pd.DataFrame({"usage": usage, "plan": pd.Series(plan, dtype=object),
                         "code": pd.Series(code, dtype=object)})


def fitted(spec: DatasetSpec) -> Pipeline:
    """The definition's preprocessing (codes, one-hot for `plan`, target encoding for `code`)
    and a logistic regression, fitted."""
    train = shop(4000, seed=1)
    pipeline = Pipeline([*preprocess.preprocessor(spec, 0), ("model", LogisticRegression(max_iter=500))])
    return pipeline.fit(train[list(FEATURES)], train["bought"])


@pytest.fixture(scope="module")
def model() -> Pipeline:
    return fitted(SPEC)


@pytest.fixture(scope="module")
def encoder(model: Pipeline) -> OrdinalEncoder:
    """The fitted coder of `code` (50,000 categories and NaN)."""
    return model.named_steps["encode"].named_transformers_["target"].named_steps["codes"]


def test_the_stand_in_is_taken_for_the_pipelines_coders_only() -> None:
    assert CategoryCodes.of(OrdinalEncoder().fit(pd.DataFrame({"a": ["x", "y"]}))) is None  # errors on unseen
    numbers = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(pd.DataFrame({"a": [1, 2]}))
    assert CategoryCodes.of(numbers) is None  # number categories: the encoder compares them otherwise
    plain = make_numbers_only()
    assert with_category_codes(plain) is plain


def make_numbers_only() -> Pipeline:
    spec = dataclasses.replace(SPEC, features_spec=SPEC.features_spec[:1])
    train = shop(200, seed=2).dropna(subset=["usage"])
    return Pipeline([*preprocess.preprocessor(spec, 0), ("model", LogisticRegression())]).fit(
        train[["usage"]], train["bought"])


VALUES = st.one_of(
    st.sampled_from(CODES),  # known
    st.sampled_from(["c00001", "c00002", "c02999"]),  # seen in training
    st.text(max_size=8),  # unseen (mostly)
    st.just(np.nan), st.just(np.float32("nan")), st.none(), st.just(pd.NA), st.just(pd.NaT),
    st.integers(-3, 70_000), st.floats(allow_nan=True), st.booleans(),  # not text: unseen for the encoder
)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(VALUES, min_size=1, max_size=40))
def test_the_stand_in_gives_the_encoders_codes_for_any_values(encoder: OrdinalEncoder, values: list) -> None:
    """Known, unseen and missing categories and values that are not text, 50,000 categories."""
    stand_in = CategoryCodes.of(encoder)
    assert stand_in is not None
    frame = pd.DataFrame({"code": pd.Series(values, dtype=object, index=np.arange(len(values)) * 3)})
    try:
        want = encoder.transform(frame)
    except (TypeError, ValueError) as err:  # the same refusal
        with pytest.raises(type(err)):
            stand_in.transform(frame)
        return
    got = stand_in.transform(frame)
    assert got.dtype == want.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_the_codes_are_the_definitions_order_with_missing_and_unseen_codes(encoder: OrdinalEncoder) -> None:
    frame = pd.DataFrame({"code": pd.Series(["c00000", "c49999", np.nan, "nope"], dtype=object)})
    codes = CategoryCodes.of(encoder).transform(frame).ravel().tolist()
    assert codes == [0, N_CODES - 1, preprocess.MISSING_CODE, preprocess.UNSEEN_CODE]


def test_other_inputs_go_to_the_encoder(encoder: OrdinalEncoder) -> None:
    stand_in = CategoryCodes.of(encoder)
    text = pd.DataFrame({"code": pd.Series(["c00001", None], dtype="string")})  # not object columns
    np.testing.assert_array_equal(stand_in.transform(text), encoder.transform(text))
    with pytest.raises(ValueError):  # the encoder's own refusal of no rows
        stand_in.transform(pd.DataFrame({"code": pd.Series([], dtype=object)}))


def test_a_pandas_output_is_the_encoders_frame(encoder: OrdinalEncoder) -> None:
    frame = pd.DataFrame({"code": np.array(["c00007", np.nan, "zzz"], dtype=object)}, index=[4, 8, 9])
    got = CategoryCodes.of(encoder).set_output(transform="pandas").transform(frame)
    pd.testing.assert_frame_equal(got, pd.DataFrame({"code": [7, -2, -1]}, index=[4, 8, 9], dtype=np.int64))
    assert list(CategoryCodes.of(encoder).get_feature_names_out()) == ["code"]


def coders(pipeline: Pipeline) -> list:
    """The `codes` steps of a fitted pipeline's column transformer."""
    parts = pipeline.named_steps["encode"].transformers_
    return [t.named_steps["codes"] for _, t, _ in parts if "codes" in getattr(t, "named_steps", {})]


def test_the_served_copy_gives_the_pipelines_probabilities_and_leaves_it_unchanged(model: Pipeline) -> None:
    served = with_category_codes(model)
    assert [type(c).__name__ for c in coders(served)] == ["CategoryCodes", "CategoryCodes"]
    assert [type(c) for c in coders(model)] == [OrdinalEncoder, OrdinalEncoder]  # the model itself
    assert served.named_steps["model"] is model.named_steps["model"]  # fitted steps shared
    x = pd.concat([rows(), shop(500, seed=5)[list(FEATURES)]], ignore_index=True)
    np.testing.assert_array_equal(served.predict_proba(x), model.predict_proba(x))


def test_a_calibrated_model_and_frames_between_steps_give_the_same_answers() -> None:
    """CalibratedClassifierCV around the pipeline (as training logs a calibrated model), with the
    preprocessing steps passing frames (`set_output(transform="pandas")`, as tuning does)."""
    train = shop(1500, seed=3)
    steps = preprocess.preprocessor(SPEC, 0)
    for _, step in steps:
        step.set_output(transform="pandas")
    pipeline = Pipeline([*steps, ("model", LogisticRegression(max_iter=500))])
    calibrated = CalibratedClassifierCV(pipeline, method="sigmoid", ensemble=False, cv=3)
    calibrated.fit(train[list(FEATURES)], train["bought"])
    served = with_category_codes(calibrated)
    assert served is not calibrated
    assert [type(c).__name__ for c in coders(served.calibrated_classifiers_[0].estimator)] == ["CategoryCodes"] * 2
    assert [type(c) for c in coders(calibrated.calibrated_classifiers_[0].estimator)] == [OrdinalEncoder] * 2
    np.testing.assert_array_equal(served.predict_proba(rows()), calibrated.predict_proba(rows()))


def test_the_saved_model_serves_the_pipelines_probabilities_without_the_encoders_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logged as training logs it, loaded by `mlflow.pyfunc.load_model`: the model carries the
    stand-in's file, keeps the encoder (skops, scikit-learn types only), answers as the pipeline
    within 1e-9 on known, unseen (allowed) and missing categories, never calling the encoder."""
    model = fitted(SAVED_SPEC)
    s = make_settings(tmp_path)
    example = shop(50, seed=4)
    with mlflow.start_run(experiment_id=tracking.use(s)):
        info = model_io.log_model(model, FEATURES, example, rules=SAVED_SPEC.rules, categorical=CATEGORICAL)
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "model")))
    assert (folder / "code" / "category_codes.py").exists()
    # a model whose code/ has no category_codes.py (logged before it) scores with its pipeline
    assert pyfunc_model.with_category_codes(model, str(tmp_path)) is model
    plain = mlflow.sklearn.load_model(str(folder))
    assert type(plain.named_steps["encode"].named_transformers_["target"].named_steps["codes"]) is OrdinalEncoder
    served = mlflow.pyfunc.load_model(str(folder))
    calls: list[int] = []
    real = OrdinalEncoder.transform

    def spy(self, X):
        calls.append(len(X))
        return real(self, X)
    monkeypatch.setattr(OrdinalEncoder, "transform", spy)
    x = rows()
    got = np.asarray(served.predict(x, params={"allow_unseen": True}))
    assert calls == []
    monkeypatch.setattr(OrdinalEncoder, "transform", real)
    np.testing.assert_allclose(got, model.predict_proba(x), rtol=0, atol=1e-9)
    one = x.iloc[[0]]
    np.testing.assert_allclose(np.asarray(served.predict(one)), model.predict_proba(one), rtol=0, atol=1e-9)
