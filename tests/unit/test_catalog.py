"""The dataset catalog and definitions (`core/catalog.py`, `core/dataset.py`) on the tiny definition."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import tomllib

from core import catalog
from core.dataset import DatasetError, DatasetSpec
from tests.unit.conftest import (
    DEV_FILE,
    FEATURES,
    PROD_FILE,
    definition_text,
    write_definition,
)


@pytest.fixture
def raw(source_dir: Path) -> dict[str, Any]:
    """The tiny definition as parsed TOML (a fresh copy to break)."""
    return tomllib.loads(definition_text(source_dir))


# --------------------------------------------------------------------------- a valid definition
def test_the_tiny_definition_loads_with_its_features_kinds_and_target(spec: DatasetSpec) -> None:
    assert spec.name == "tiny" and spec.title == "Tiny churn"
    assert spec.features == FEATURES
    assert [f.kind for f in spec.features_spec] == ["numeric", "numeric", "binary"]
    usage, calls, premium = spec.features_spec
    assert (usage.minimum, usage.maximum, usage.integer, usage.step, usage.unit) == (0.0, 100.0, False, 0.1, "h")
    assert (calls.minimum, calls.maximum, calls.integer) == (0.0, 20.0, True)
    assert premium.values == (0.0, 1.0) and premium.discrete and not usage.discrete and not calls.discrete
    assert premium.value_label(1) == premium.value_label(1.0) == "Premium"
    assert spec.discrete_features == ("premium",)
    assert spec.target.column == "churn" and spec.target_column == "churn"
    assert (spec.target.positive, spec.target.negative) == (1, 0)
    assert spec.proba_column == "proba_churned" and spec.pred_column == "pred_churned"
    assert spec.proba_label == "P(churned)" and spec.class_names == {1: "churned", 0: "stayed"}
    assert (spec.row_noun, spec.rows_noun) == ("customer", "customers")
    assert (spec.experiment, spec.model_name, spec.partition_by) == ("tiny-experiment", "tiny-model", "premium")
    assert spec.display == ("customer_id",)
    assert [s.file for s in spec.sources] == [DEV_FILE, PROD_FILE] and all(len(s.sha256) == 64 for s in spec.sources)
    assert (spec.dev.source, spec.dev.where, spec.dev_title) == (DEV_FILE, 'segment == "retail"', "retail customers")
    assert spec.prod is not None and spec.prod.where == 'segment == "online"'
    assert spec.folder is not None and (spec.folder / "dataset.toml").is_file()


def test_features_describe_their_domain_in_words(spec: DatasetSpec) -> None:
    rules = spec.rules.by_name
    assert rules["usage_hours"].describe() == "a finite number from 0 to 100"
    assert rules["support_calls"].describe() == "a whole number from 0 to 20"
    assert rules["premium"].describe() == "one of 0, 1"
    usage, calls, _ = spec.features_spec
    assert usage.title == "Monthly usage (h)" and calls.title == "Support calls"


def test_the_example_row_is_the_definitions_and_satisfies_the_rules(spec: DatasetSpec) -> None:
    row = spec.example_row()
    assert list(row) == list(spec.features) and row == {"usage_hours": 35.5, "support_calls": 2, "premium": 0}
    assert spec.rules.validate_row(row) == {"usage_hours": 35.5, "support_calls": 2.0, "premium": 0.0}


def test_without_an_example_the_row_is_built_from_the_domains_and_is_valid(raw: dict[str, Any]) -> None:
    del raw["example"]
    spec = catalog.from_dict(raw)
    row = spec.example_row()
    assert row == {"usage_hours": 50.0, "support_calls": 10, "premium": 0.0}
    spec.rules.validate_row(row)


def test_defaults_for_experiment_model_name_nouns_and_class_names(raw: dict[str, Any]) -> None:
    for key in ("experiment", "model_name", "row_noun", "rows_noun", "partition_by", "display"):
        del raw[key]
    del raw["target"]["positive_name"], raw["target"]["negative_name"]
    spec = catalog.from_dict(raw)
    assert (spec.experiment, spec.model_name) == ("tiny-workbench", "tiny-model")
    assert (spec.row_noun, spec.rows_noun, spec.partition_by, spec.display) == ("row", "rows", None, ())
    assert spec.proba_column == "proba_positive" and spec.class_names == {1: "positive", 0: "negative"}


def test_the_probability_column_is_a_slug_of_the_positive_name(raw: dict[str, Any]) -> None:
    raw["target"]["positive_name"] = "Left Us!"
    spec = catalog.from_dict(raw)
    assert spec.proba_column == "proba_left_us" and spec.pred_column == "pred_left_us"
    assert spec.proba_label == "P(Left Us!)"


def test_an_unknown_source_is_refused_naming_the_known_ones(spec: DatasetSpec) -> None:
    assert spec.source(DEV_FILE).file == DEV_FILE
    with pytest.raises(DatasetError, match=rf"no source named 'nope.parquet'.*{DEV_FILE}"):
        spec.source("nope.parquet")


def test_to_dict_is_plain_data(spec: DatasetSpec) -> None:
    import json

    d = json.loads(json.dumps(spec.to_dict()))
    assert [f["name"] for f in d["features"]] == list(FEATURES)
    assert d["target"]["positive_name"] == "churned" and d["prod"]["source"] == PROD_FILE


# --------------------------------------------------------------------------- malformed definitions
def _feature(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in raw["features"] if f["name"] == name)


def _unknown_kind(raw):
    _feature(raw, "usage_hours")["kind"] = "ordinal"


def _binary_one_value(raw):
    _feature(raw, "premium")["values"] = [1]


def _binary_text_values(raw):
    _feature(raw, "premium")["values"] = ["no", "yes"]


def _categorical_no_values(raw):
    f = _feature(raw, "premium")
    f["kind"] = "categorical"
    del f["values"]


def _min_above_max(raw):
    _feature(raw, "usage_hours")["min"] = 200.0


def _min_not_a_number(raw):
    _feature(raw, "support_calls")["min"] = "zero"


def _labels_not_a_table(raw):
    _feature(raw, "premium")["value_labels"] = ["Basic", "Premium"]


def _duplicate_feature(raw):
    raw["features"].append(copy.deepcopy(_feature(raw, "support_calls")))


def _target_is_a_feature(raw):
    raw["target"]["column"] = "premium"


def _dev_source_unknown(raw):
    raw["dev"]["source"] = "elsewhere.parquet"


def _prod_source_unknown(raw):
    raw["prod"]["source"] = "elsewhere.parquet"


def _partition_not_a_feature(raw):
    raw["partition_by"] = "segment"


def _example_missing_a_feature(raw):
    del raw["example"]["premium"]


def _example_extra_column(raw):
    raw["example"]["segment"] = "retail"


def _no_name(raw):
    del raw["name"]


def _bad_name(raw):
    raw["name"] = "Tiny Churn"


def _no_target(raw):
    del raw["target"]


def _no_target_column(raw):
    del raw["target"]["column"]


def _no_features(raw):
    raw["features"] = []


def _feature_without_kind(raw):
    del _feature(raw, "support_calls")["kind"]


def _no_dev(raw):
    del raw["dev"]


MALFORMED: dict[str, tuple[Callable[[dict], None], tuple[str, ...]]] = {
    "unknown kind": (_unknown_kind, ("usage_hours", "kind", "ordinal")),
    "binary without two values": (_binary_one_value, ("premium", "binary", "values")),
    "binary with text values": (_binary_text_values, ("premium", "numbers")),
    "categorical without values": (_categorical_no_values, ("premium", "categorical", "values")),
    "min above max": (_min_above_max, ("usage_hours", "min 200", "max 100")),
    "min not a number": (_min_not_a_number, ("support_calls", "`min`", "number")),
    "value_labels not a table": (_labels_not_a_table, ("premium", "value_labels")),
    "duplicate feature": (_duplicate_feature, ("support_calls", "twice")),
    "target also a feature": (_target_is_a_feature, ("target", "premium")),
    "dev source not among the sources": (_dev_source_unknown, ("[dev]", "elsewhere.parquet", "[[sources]]")),
    "prod source not among the sources": (_prod_source_unknown, ("[prod]", "elsewhere.parquet")),
    "partition_by not a feature": (_partition_not_a_feature, ("partition_by", "segment")),
    "example missing a feature": (_example_missing_a_feature, ("example", "premium")),
    "example with an extra column": (_example_extra_column, ("example",)),
    "no name": (_no_name, ("`name`", "missing")),
    "bad name": (_bad_name, ("Tiny Churn", "lower-case")),
    "no target": (_no_target, ("`target`", "missing")),
    "no target column": (_no_target_column, ("[target]", "`column`")),
    "no features": (_no_features, ("[[features]]",)),
    "feature without kind": (_feature_without_kind, ("support_calls", "`kind`")),
    "no dev": (_no_dev, ("[dev]",)),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_definition_is_refused_naming_the_field(raw: dict[str, Any], case: str) -> None:
    breaker, fragments = MALFORMED[case]
    breaker(raw)
    with pytest.raises(DatasetError) as err:
        catalog.from_dict(raw, where="tiny/dataset.toml")
    msg = str(err.value)
    assert msg.startswith("tiny/dataset.toml")
    for fragment in fragments:
        assert fragment in msg, (case, msg)


def test_bad_toml_is_refused_naming_the_file(tmp_path: Path, source_dir: Path) -> None:
    text = definition_text(source_dir).replace('title = "Tiny churn"', 'title = "Tiny churn')
    with pytest.raises(DatasetError, match="not valid TOML") as err:
        write_definition(tmp_path / "broken", text)
    assert str(tmp_path / "broken" / "dataset.toml") in str(err.value)


def test_a_missing_definition_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot be read"):
        catalog.load(tmp_path / "nowhere" / "dataset.toml")


# --------------------------------------------------------------------------- finding definitions
@pytest.fixture
def shelf(tmp_path: Path, source_dir: Path) -> Path:
    """A folder of definitions holding the tiny dataset (and a folder without a definition)."""
    write_definition(tmp_path / "shelf" / "tiny", definition_text(source_dir))
    (tmp_path / "shelf" / "empty").mkdir()
    return tmp_path / "shelf"


def test_available_lists_the_given_folders_and_the_builtin_ones(shelf: Path) -> None:
    found = catalog.available([shelf])
    assert found["tiny"] == shelf / "tiny" / "dataset.toml"
    assert "kobe" in found and found["kobe"].parent.parent == catalog.BUILTIN_DIR
    assert "empty" not in found
    assert "tiny" not in catalog.available()
    assert "tiny" in catalog.available([shelf, shelf.parent / "does-not-exist"])


def test_the_first_folder_wins_on_a_name(tmp_path: Path, source_dir: Path) -> None:
    text = definition_text(source_dir, name="kobe")
    write_definition(tmp_path / "mine" / "kobe", text)
    assert catalog.available([tmp_path / "mine"])["kobe"] == tmp_path / "mine" / "kobe" / "dataset.toml"
    assert catalog.find("kobe", [tmp_path / "mine"]).title == "Tiny churn"


def test_find_loads_a_dataset_by_name(shelf: Path) -> None:
    spec = catalog.find("tiny", [shelf])
    assert spec.features == FEATURES and spec.folder == shelf / "tiny"


def test_find_of_an_unknown_name_lists_the_known_ones(shelf: Path) -> None:
    with pytest.raises(DatasetError) as err:
        catalog.find("nosuch", [shelf])
    msg = str(err.value)
    assert "'nosuch'" in msg and "kobe" in msg and "tiny" in msg


# --------------------------------------------------------------------------- a dataset's view
def test_a_definition_without_a_view_has_none(spec: DatasetSpec) -> None:
    assert spec.view is None and catalog.load_view(spec) is None


def test_a_view_beside_the_definition_is_imported(tmp_path: Path, source_dir: Path) -> None:
    text = definition_text(source_dir).replace('partition_by = "premium"', 'partition_by = "premium"\nview = "view.py"')
    folder = tmp_path / "viewed"
    folder.mkdir()
    (folder / "view.py").write_text("GREETING = 'hello from the tiny view'\n")
    spec = write_definition(folder, text)
    module = catalog.load_view(spec)
    assert module is not None and module.GREETING == "hello from the tiny view"


def test_a_missing_view_is_refused(tmp_path: Path, source_dir: Path) -> None:
    text = definition_text(source_dir).replace('partition_by = "premium"', 'partition_by = "premium"\nview = "gone.py"')
    spec = write_definition(tmp_path / "noview", text)
    with pytest.raises(DatasetError, match="gone.py"):
        catalog.load_view(spec)


# --------------------------------------------------------------------------- known gaps (see the report)
def test_an_example_outside_the_domain_is_refused(raw: dict[str, Any]) -> None:
    raw["example"]["usage_hours"] = 500.0
    with pytest.raises(DatasetError, match="usage_hours"):
        catalog.from_dict(raw, where="tiny/dataset.toml")


def test_text_target_values_are_refused_or_mapped(raw: dict[str, Any], tmp_path: Path, source_dir: Path) -> None:
    from core.data import batches
    from tests.unit.conftest import make_settings

    raw["target"]["positive"], raw["target"]["negative"] = "yes", "no"
    try:
        spec = catalog.from_dict(raw, where="tiny/dataset.toml")
    except DatasetError as err:  # refusing such a definition is one right answer
        assert "target" in str(err)
        return
    s = make_settings(tmp_path, spec, source_dir)
    csv = b"usage_hours,support_calls,premium,churn\n10,1,0,yes\n20,2,1,no\n"
    frame = batches.read_batch(csv, s, name="coded.csv").frame  # mapping them is the other
    assert frame["churn"].tolist() == [1.0, 0.0]
