"""Task kinds at the foundation: a target of each kind encodes and decodes its labels, survives
its definition's round trip, and each kind's metrics are the textbook figures."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.dataset import DatasetError, Target
from core.modeling import metrics, tasks
from core.modeling.model_version import CLASSES_TAG, INTERVAL_TAG, TASK_TAG, ModelVersion

PENGUIN = Target(column="species", task="multiclass", classes=("Adelie", "Chinstrap", "Gentoo"))
GRADE = Target(column="grade", task="multiclass", classes=(1, 2, 3), class_labels=("low", "mid", "high"))
PRICE = Target(column="price", task="regression", unit="USD")


def _definition(target: Target) -> dict:
    return {"name": "t", "title": "T", "target": target.to_dict(),
            "features": [{"name": "x", "kind": "numeric"}], "sources": [{"file": "t.parquet"}],
            "dev": {"source": "t.parquet"}}


def test_multiclass_labels_are_class_positions_and_decode_back() -> None:
    y, bad = PENGUIN.encode(pd.Series(["Gentoo", " Adelie", None, "Chinstrap", "", "Emperor"]))
    assert list(y[[0, 1, 3]]) == [2.0, 0.0, 1.0] and np.isnan(y[[2, 4, 5]]).all()
    assert bad == 1  # "Emperor" is no class; None and "" are unlabelled
    assert list(PENGUIN.decode([2.0, 0.0, np.nan])) == ["Gentoo", "Adelie", None]
    assert PENGUIN.names == ("Adelie", "Chinstrap", "Gentoo") and PENGUIN.name_of(1) == "Chinstrap"


def test_whole_number_classes_compare_as_numbers_and_keep_their_labels() -> None:
    y, bad = GRADE.encode(pd.Series(["3", 1.0, 2, 7]))
    assert list(y[:3]) == [2.0, 0.0, 1.0] and bad == 1
    assert GRADE.decode([0.0, 2.0]).tolist() == [1, 3] and GRADE.name_of(2) == "high"


def test_a_regression_target_is_its_numbers_and_counts_what_is_not() -> None:
    y, bad = PRICE.encode(pd.Series(["10.5", "abc", None, "", "inf", 3]))
    assert y[0] == 10.5 and y[5] == 3.0 and np.isnan(y[1:5]).all()
    assert bad == 2  # "abc" and "inf"; None and "" are unlabelled
    y, bad = PRICE.encode(pd.Series([1.0, np.inf, np.nan]))
    assert bad == 1 and y[0] == 1.0
    assert PRICE.names == () and list(PRICE.decode([1.5, 2.0])) == [1.5, 2.0]


@pytest.mark.parametrize("target", [PENGUIN, GRADE, PRICE, Target(column="y", positive="yes", negative="no")],
                         ids=["text classes", "number classes", "regression", "binary"])
def test_a_target_survives_its_definitions_round_trip(target: Target) -> None:
    spec = catalog.from_dict(_definition(target))
    assert spec.target == target and spec.task == target.task


def test_a_binary_definition_reads_as_it_always_did() -> None:
    raw = _definition(Target(column="y"))
    raw["target"] = {"column": "y", "positive": 1, "negative": 0}  # no task: an older definition
    spec = catalog.from_dict(raw)
    assert spec.task == "binary" and spec.class_names == {1: "positive", 0: "negative"}


@pytest.mark.parametrize("target, words", [
    ({"column": "y", "task": "ordinal"}, "must be one of"),
    ({"column": "y", "task": "multiclass", "classes": ["a", "b"]}, "at least three"),
    ({"column": "y", "task": "multiclass", "classes": ["a", "b", "a"]}, "twice"),
    ({"column": "y", "task": "multiclass", "classes": ["a", "b", "c"], "class_labels": ["A"]}, "name each"),
])
def test_a_malformed_target_is_refused_naming_the_field(target: dict, words: str) -> None:
    raw = _definition(Target(column="y"))
    raw["target"] = target
    with pytest.raises(DatasetError, match=words):
        catalog.from_dict(raw)


def test_multiclass_proba_columns_are_distinct_per_class() -> None:
    raw = _definition(Target(column="y", task="multiclass", classes=("a b", "a-b", "c")))
    spec = catalog.from_dict(raw)
    columns = spec.proba_columns
    assert list(columns) == ["a b", "a-b", "c"] and len(set(columns.values())) == 3


def test_multiclass_metrics_match_hand_computed_values() -> None:
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    m = tasks.MULTICLASS.metrics(y, p, None)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.7, 0.2])))
    assert m["accuracy"] == 0.75
    # class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: 1; class 2: tp 1 fn 1 -> 2/3
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert m["f1_2"] == pytest.approx(2 / 3)


def test_regression_metrics_and_interval_coverage() -> None:
    y, pred = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1.5, 2.0, 3.0, 9.0])
    m = tasks.REGRESSION.metrics(y, np.column_stack([pred, pred - 0.6, pred + 0.6]), None)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert m["mae"] == pytest.approx(2.5 / 4)
    assert m["interval_coverage"] == 0.5  # 1.0 in [0.9, 2.1], 2.0 in [1.4, 2.6]; 4 and 8 are not
    assert "mape" in m and "mape" not in metrics.regression(np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def test_each_kind_names_its_criterion_and_refuses_the_others() -> None:
    assert tasks.REGRESSION.criterion == "rmse" and tasks.REGRESSION.better("rmse", 1.0, 2.0)
    assert tasks.REGRESSION.better("r2", 0.9, 0.8) and tasks.MULTICLASS.better("log_loss", 0.3, 0.4)
    with pytest.raises(ValueError, match="rmse"):
        tasks.REGRESSION.check_criterion("log_loss")
    with pytest.raises(ValueError, match="threshold"):
        tasks.REGRESSION.decision_threshold(None)
    assert tasks.task_kind(None) is tasks.BINARY


def test_a_version_reads_its_own_classes_and_interval_from_its_tags() -> None:
    spec = catalog.from_dict(_definition(PENGUIN))
    tags = {TASK_TAG: "multiclass", CLASSES_TAG: '["Adelie", "Chinstrap", "Gentoo"]'}
    v = ModelVersion.from_tags("m", 1, "r", tags, dataset=spec)
    assert v.kind is tasks.MULTICLASS and v.classes == ("Adelie", "Chinstrap", "Gentoo")
    r = ModelVersion.from_tags("m", 2, "r", {TASK_TAG: "regression", INTERVAL_TAG: '{"level": 0.9, "halfwidth": 3}'},
                               dataset=catalog.from_dict(_definition(PRICE)))
    assert r.interval == {"level": 0.9, "halfwidth": 3.0} and r.classes == ()
    assert ModelVersion.from_tags("m", 3, "r", {INTERVAL_TAG: "not json"}).interval is None
