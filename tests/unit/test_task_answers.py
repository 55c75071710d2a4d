"""What a served answer means per task kind (core/serving/answers.py): the scored columns, the
inference log's columns and rows, the batch summary; and the client's reading of any answer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import catalog
from core.serving import answers, client, inference_log
from tests.unit.conftest import make_settings

MULTI = {"column": "species", "task": "multiclass", "classes": ["adelie", "chinstrap", "gentoo"],
         "class_labels": ["Adelie", "Chinstrap", "Gentoo"]}
REG = {"column": "price", "task": "regression", "unit": "USD"}


def spec_of(target: dict):
    return catalog.from_dict({"name": "t", "title": "T", "target": target, "sources": [{"file": "t.parquet"}],
                              "dev": {"source": "t.parquet"},
                              "features": [{"name": "x", "kind": "numeric", "min": 0, "max": 10}]})


def test_multiclass_scored_columns_name_the_class_and_give_each_probability() -> None:
    spec = spec_of(MULTI)
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    out = answers.for_task("multiclass").scored(spec, p)
    assert list(out[answers.PRED_CLASS]) == ["Chinstrap", "Adelie"]
    assert list(out[spec.predicted_class_column]) == ["chinstrap", "adelie"]
    assert [c for c in out if c.startswith("proba_")] == list(spec.proba_columns.values())
    np.testing.assert_array_equal(out[spec.proba_columns["Gentoo"]], [0.2, 0.3])
    assert answers.for_task("multiclass").summary(spec, p)["class_shares"] == {"Adelie": 0.5, "Chinstrap": 0.5,
                                                                             "Gentoo": 0.0}


def test_regression_scored_columns_are_the_prediction_and_its_bounds() -> None:
    spec = spec_of(REG)
    a = np.array([[10.0, 8.0, 12.0], [20.0, 18.0, 22.0]])
    out = answers.for_task("regression").scored(spec, a)
    assert list(out) == ["prediction", "prediction_lower", "prediction_upper"]
    assert answers.for_task("regression").summary(spec, a) == {"mean_prediction": 15.0, "mean_interval_width": 4.0}
    metrics = answers.for_task("regression").metrics(np.array([11.0, 30.0]), a)
    assert metrics["interval_coverage"] == 0.5 and metrics["mae"] == 5.5


def test_an_unknown_task_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ValueError, match="binary, multiclass, regression"):
        answers.for_task("ordinal")


@pytest.mark.parametrize("target, answer, logged", [
    (MULTI, [0.1, 0.7, 0.2], {"proba_adelie": 0.1, "proba_chinstrap": 0.7, "proba_gentoo": 0.2, "label": 1}),
    (REG, [10.0, 8.0, 12.0], {"prediction": 10.0, "prediction_lower": 8.0, "prediction_upper": 12.0}),
], ids=["multiclass", "regression"])
def test_the_inference_log_keeps_each_tasks_answer(tmp_path: Path, target: dict, answer: list, logged: dict) -> None:
    spec = spec_of(target)
    s = make_settings(tmp_path, spec)
    assert inference_log.output_columns(spec) == list(logged)
    inference_log.append(s, {"x": 1.5}, answer, None, "1", 2.0, "unit")
    row = inference_log.read_last(s, 1).iloc[0]
    assert {k: row[k] for k in logged} == logged and row["x"] == 1.5 and row["model_version"] == "1"
    assert inference_log.answer_columns(spec) == ["timestamp", *logged, "model_version", "latency_ms", "source"]


def test_the_client_reads_any_answers_width() -> None:
    three = client.parse_answers('{"predictions": [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]}')
    assert three.shape == (2, 3) and three[1, 0] == 0.5
    unknown = client.parse_answers('{"predictions": [[10.0, null, null]]}')  # an interval not known
    assert unknown[0, 0] == 10.0 and np.isnan(unknown[0, 1:]).all()
    assert client.parse_answers('{"predictions": [0.25, 0.5]}').shape == (2, 1)
    assert client.parse_predictions('{"predictions": [[0.25, 0.75]]}').tolist() == [0.75]  # binary: as always
