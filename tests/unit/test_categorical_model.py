"""Categorical and missing features end to end on a tiny inline dataset (not Kobe): preparation
keeps text and gaps, training encodes inside the pipeline, the registered model takes raw
values (strings declared in its signature), and the served model names unseen categories
unless the request allows them."""
from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.data import preparation
from core.data.columns import feature_frame
from core.rules import InvalidInputError
from core.files import sha256_file
from core.modeling import preprocess, registry, training
from core.modeling import promotion

from .conftest import make_settings

CITIES = [f"city_{i:02d}" for i in range(30)]  # more than preprocess.ONE_HOT_MAX: target-encoded
PLANS = ["basic", "plus", "pro"]
TOML = """\
name = "shop"
title = "Tiny shop"
[target]
column = "bought"
positive = "yes"
negative = "no"
positive_name = "bought"
negative_name = "left"
[[features]]
name = "age"
kind = "numeric"
min = 0
nullable = true
[[features]]
name = "plan"
kind = "categorical"
values = {plans}
nullable = true
[[features]]
name = "city"
kind = "categorical"
values = {cities}
[feature_sets]
default = ["age", "plan", "city"]
numbers = ["age"]
[[sources]]
file = "shop.parquet"
sha256 = "{sha}"
[dev]
source = "shop.parquet"
"""


def shop_frame(n: int = 900, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, n)
    city = rng.choice(CITIES, n)
    age = rng.normal(40, 12, n).clip(18, 90).round()
    logit = -0.5 + 1.5 * (plan == "pro") - 1.0 * (plan == "basic") + np.where(
        np.isin(city, CITIES[:10]), 1.2, -0.6) + 0.02 * (age - 40)
    bought = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    df = pd.DataFrame({"age": age, "plan": plan.astype(object), "city": city, "bought": bought})
    df.loc[rng.random(n) < 0.05, "age"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = None
    df.loc[:9, "bought"] = None  # unlabelled rows
    return df


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("shop")
    sources = root / "sources"
    sources.mkdir()
    shop_frame().to_parquet(sources / "shop.parquet", index=False)
    folder = root / "def" / "shop"
    folder.mkdir(parents=True)
    (folder / "dataset.toml").write_text(TOML.format(
        plans=PLANS, cities=CITIES, sha=sha256_file(sources / "shop.parquet")).replace("'", '"'))
    spec = catalog.load(folder / "dataset.toml")
    settings = make_settings(root / "home", spec, sources)
    preparation.prepare(settings)
    result = training.train(settings, models=["lr", "dt"], n_iter=1, folds=2)
    return settings, result


def test_preparation_keeps_text_categories_and_gaps_in_nullable_features(shop) -> None:
    settings, _ = shop
    train = preparation.load_split(settings, "train")
    assert train["plan"].map(lambda v: isinstance(v, str) or pd.isna(v)).all()
    assert train["age"].isna().any() and train["plan"].isna().any()  # kept: the pipeline imputes
    assert set(train["bought"].unique()) == {0, 1}  # unlabelled rows left out of the splits


def test_the_pipeline_one_hot_encodes_few_categories_and_target_encodes_many(shop) -> None:
    settings, _ = shop
    steps = preprocess.preprocessor(settings.dataset, seed=1)
    encoder = dict(steps)["encode"]
    parts = {name: cols for name, _, cols in encoder.transformers}
    assert parts == {"numeric": ["age"], "onehot": ["plan"], "target": ["city"]}
    numbers_only = preprocess.preprocessor(settings.dataset.with_feature_set("numbers"), seed=1)
    assert [n for n, _ in numbers_only] == ["impute", "normalize"]  # the numeric pipeline as before


def test_the_registered_model_takes_raw_values_and_declares_strings(shop) -> None:
    settings, result = shop
    assert result.feature_set == "default" and result.features == ("age", "plan", "city")
    info = registry.champion(settings)
    assert info is not None and info.feature_set == "default"
    mlflow.set_tracking_uri(settings.tracking_uri)
    uri = f"models:/{settings.model_name}/{info.version}"
    model_info = mlflow.models.get_model_info(uri)
    types = {c["name"]: c["type"] for c in model_info.signature.inputs.to_dict()}
    assert types == {"age": "double", "plan": "string", "city": "string"}
    served = mlflow.pyfunc.load_model(uri)
    rows = pd.DataFrame({"age": [30.0, np.nan], "plan": ["pro", "basic"], "city": ["city_01", "city_29"]})
    proba = np.asarray(served.predict(rows))[:, 1]
    assert ((proba > 0) & (proba < 1)).all() and proba[0] > proba[1]  # pro in a good city buys more


def test_the_served_model_names_an_unseen_category_unless_allowed(shop) -> None:
    settings, _ = shop
    info = registry.champion(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    served = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{info.version}")
    row = pd.DataFrame({"age": [30.0], "plan": ["platinum"], "city": ["city_01"]})
    with pytest.raises(mlflow.exceptions.MlflowException, match="plan: categories never seen in training in 1 row: 'platinum'"):
        served.predict(row)
    proba = np.asarray(served.predict(row, params={"allow_unseen": True}))[:, 1]
    assert 0 < proba[0] < 1
    with pytest.raises(mlflow.exceptions.MlflowException, match="city: empty values"):
        served.predict(row.assign(plan="pro", city=[None]))


def test_one_request_names_unseen_categories_and_wrong_types(shop) -> None:
    settings, _ = shop
    rules = settings.dataset.rules
    with pytest.raises(InvalidInputError, match="'Atlantis', a category never seen"):
        rules.validate_row({"age": 30, "plan": "pro", "city": "Atlantis"})
    assert rules.validate_row({"age": None, "plan": None, "city": "Atlantis"}, allow_unseen=True)["city"] == "Atlantis"
    with pytest.raises(InvalidInputError, match="plan must be text"):
        rules.validate_row({"age": 30, "plan": {"name": "pro"}, "city": "city_01"})


def test_a_category_sent_as_a_number_or_a_boolean_is_read_as_its_text() -> None:
    from core.rules import Rule

    codes = Rule(name="area", kind="category", values=("408", "415", "True"))
    assert codes.problem(415) is None and codes.problem(415.0) is None and codes.problem(True) is None
    assert "'510', a category never seen" in codes.problem(510)
    assert "must be text" in codes.problem(4.5)


def test_feature_importance_has_one_value_per_raw_feature(shop) -> None:
    settings, result = shop
    from core.modeling import diagnostics

    _, model = registry.load_model(settings)
    test = preparation.load_split(settings, "test")
    x = feature_frame(test, settings.features, settings.dataset.categorical_features)
    kind, values = diagnostics.feature_importance(model, x, test["bought"].to_numpy(), seed=1)
    assert len(values) == 3 and kind in ("permutation", "importance", "coefficient")


def test_a_second_feature_set_trains_and_tags_its_version(shop) -> None:
    settings, first = shop
    numbers = settings.replace(dataset=settings.dataset.with_feature_set("numbers"))
    result = training.train(numbers, models=["lr"], n_iter=1, folds=2)
    # registered whatever the gate said (the champion takes the other set: compared on its own inputs)
    info = registry.version_info(settings, result.challenger.version)
    assert result.champion_before.version == first.champion.version
    assert info is not None and info.feature_set == "numbers"
    assert info.inputs(settings.dataset).features == ("age",)
    with pytest.raises(catalog.DatasetError, match="no feature set 'nope'"):
        settings.dataset.with_feature_set("nope")
    promotion.promote(settings, first.champion.version)  # leave the module's champion as it was
