"""The input rules, reading batches and storing them (`core/rules.py`, `batches.py`,
`batch_store.py`) on the tiny definition."""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.config import Settings
from core.data import batch_store, batches
from core.data.batches import BatchError
from core.rules import InvalidInputError, Rule, RuleTable
from core.dataset import DatasetSpec
from tests.unit.conftest import (
    FEATURES,
    TARGET,
    customers,
    definition_text,
    make_settings,
)

GOOD = {"usage_hours": 42.5, "support_calls": 3, "premium": 1}


# --------------------------------------------------------------------------- the rule table
def test_the_rule_table_follows_the_definition(spec: DatasetSpec) -> None:
    table = spec.rules
    assert isinstance(table, RuleTable) and table.names == FEATURES
    usage, calls, premium = table.rules
    assert (usage.minimum, usage.maximum, usage.integer, usage.values) == (0.0, 100.0, False, ())
    assert (calls.minimum, calls.maximum, calls.integer) == (0.0, 20.0, True)
    assert premium.values == (0.0, 1.0) and not premium.nullable
    assert usage.label == "Monthly usage" and usage.unit == "h"
    assert RuleTable.from_spec(spec) == table


def test_a_good_row_is_accepted_as_floats_in_model_order(spec: DatasetSpec) -> None:
    shuffled = {"premium": np.int64(1), "support_calls": 3, "usage_hours": np.float32(42.5)}
    clean = spec.rules.validate_row(shuffled)
    assert list(clean) == list(FEATURES)
    assert clean == {"usage_hours": 42.5, "support_calls": 3.0, "premium": 1.0}
    assert all(type(v) is float for v in clean.values())
    assert spec.rules.validate_row({"usage_hours": 0, "support_calls": 20.0, "premium": 0.0})  # bounds included


BAD_ROWS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "out of range, fractional, not allowed, extra column": (
        {"usage_hours": 100.5, "support_calls": 2.5, "premium": 2, "colour": "red"},
        ("unknown column(s): colour", "usage_hours must be a finite number from 0 to 100, got 100.5",
         "support_calls must be a whole number from 0 to 20, got 2.5 (the model would silently truncate it)",
         "premium must be one of 0, 1, got 2")),
    "null, NaN, bool": (
        {"usage_hours": None, "support_calls": float("nan"), "premium": True},
        ("usage_hours is missing (null)", "support_calls is NaN", "premium must be one of 0, 1, got True (bool)")),
    "inf, string, missing column": (
        {"usage_hours": float("inf"), "support_calls": "3"},
        ("missing column(s): premium", "usage_hours must be a finite number from 0 to 100, got inf",
         "support_calls must be a whole number from 0 to 20, got '3' (str)")),
    "below the minimum, negative infinity": (
        {"usage_hours": -0.1, "support_calls": -math.inf, "premium": 0},
        ("usage_hours must be a finite number from 0 to 100, got -0.1", "support_calls must be a whole number "
                                                                          "from 0 to 20, got -inf")),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_refused_with_every_problem_listed(spec: DatasetSpec, case: str) -> None:
    row, expected = BAD_ROWS[case]
    with pytest.raises(InvalidInputError) as err:
        spec.rules.validate_row(row, what="customer")
    msg = str(err.value)
    assert msg.startswith("Invalid customer: ")
    for fragment in expected:
        assert fragment in msg, msg
    features_named = {f for f in FEATURES if re.search(rf"\b{f}\b", msg)}
    assert features_named == {f for f in FEATURES if any(f in x for x in expected)}  # no other complaint


def test_a_nullable_feature_accepts_missing_values(spec: DatasetSpec, source_dir: Path) -> None:
    import tomllib

    raw = tomllib.loads(definition_text(source_dir))
    raw["features"][0]["nullable"] = True
    nullable = catalog.from_dict(raw)
    clean = nullable.rules.validate_row({**GOOD, "usage_hours": None})
    assert math.isnan(clean["usage_hours"])
    frame = pd.DataFrame({"usage_hours": [np.nan, 10.0], "support_calls": [1.0, 2.0], "premium": [0.0, 1.0]})
    assert nullable.rules.frame_problems(frame) == []
    assert spec.rules.frame_problems(frame) == ["usage_hours: empty (NaN) values in 1 row"]


def test_rule_describe_covers_open_bounds() -> None:
    assert Rule("x", minimum=1.0).describe() == "a finite number of at least 1"
    assert Rule("x", maximum=2.0, integer=True).describe() == "a whole number of at most 2"
    assert Rule("x").describe() == "a finite number" and Rule("x").problem(1e308) is None
    assert Rule("x").problem(10**400) is not None  # too large for a float


def test_frame_problems_counts_rows_per_column_and_kind(spec: DatasetSpec) -> None:
    frame = pd.DataFrame({
        "usage_hours": [10.0, 150.0, -5.0, np.nan, 20.0],
        "support_calls": [1.0, 2.5, np.inf, 3.0, 4.0],
        "premium": [0.0, 1.0, 1.0, 0.5, 0.0],
    })
    assert spec.rules.frame_problems(frame) == [
        "usage_hours: empty (NaN) values in 1 row",
        "usage_hours: out-of-domain values in 2 rows (usage_hours must be a finite number from 0 to 100)",
        "support_calls: infinite values in 1 row",
        "support_calls: out-of-domain values in 1 row (support_calls must be a whole number from 0 to 20)",
        "premium: out-of-domain values in 1 row (premium must be one of 0, 1)",
    ]
    assert spec.rules.frame_problems(frame.iloc[[0]]) == []
    assert spec.rules.frame_problems(frame.iloc[0:0]) == []


def test_the_numpy_check_finds_what_the_schema_finds(spec: DatasetSpec) -> None:
    frame = pd.DataFrame({
        "usage_hours": [10.0, 150.0, -5.0, np.nan, 20.0, np.inf],
        "support_calls": [1.0, 2.5, np.inf, 3.0, 4.0, 0.0],
        "premium": [0.0, 1.0, 1.0, 0.5, np.nan, 0.0],
    })
    expected = spec.rules.frame_problems(frame)
    assert len(expected) == 7
    assert spec.rules.array_problems(frame.to_numpy()) == expected
    assert spec.rules.array_problems(frame.iloc[[0]].to_numpy()) == []


def test_the_rule_table_round_trips_through_plain_data(spec: DatasetSpec) -> None:
    d = json.loads(json.dumps(spec.rules.to_dict()))
    assert RuleTable.from_dict(d) == spec.rules
    # a binary feature's words stay with the definition: the table written beside a model keeps
    # the fields earlier loaders know
    assert spec.rules.by_name["premium"].words == (("Basic", 0.0), ("Premium", 1.0))
    assert all("words" not in r for r in d["rules"])


# --------------------------------------------------------------------------- reading batches
def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture
def good_frame() -> pd.DataFrame:
    """A valid labelled batch in the raw format (extra columns included)."""
    frame = customers(np.random.default_rng(3), 50, shifted=False)
    frame.loc[[5, 6], TARGET] = np.nan  # two unlabelled rows
    return frame.assign(segment="online", customer_id=np.arange(50))


def test_a_bad_batch_is_refused_with_one_line_per_problem(tiny: Settings) -> None:
    csv = (b"usage_hours,support_calls,premium,churn\n"
           b"10,1,0,1\n"
           b"150,2,1,0\n"      # usage out of domain
           b"-3,2,1,0\n"       # usage out of domain
           b",2,0,1\n"         # usage empty
           b"20,inf,0,1\n"     # calls infinite
           b"20,2.5,0,1\n"     # calls fractional
           b"20,3,yes,1\n"     # premium not a number
           b"20,3,maybe,0\n"   # premium not a number
           b"20,3,2,0\n"       # premium not allowed
           b"20,3,1,7\n"       # label not allowed
           b"20,3,1,made\n")   # label not a number
    with pytest.raises(BatchError) as err:
        batches.read_batch(csv, tiny, name="bad.csv")
    assert sorted(err.value.problems) == sorted([
        "usage_hours: empty (NaN) values in 1 row",
        "usage_hours: out-of-domain values in 2 rows (usage_hours must be a finite number from 0 to 100)",
        "support_calls: infinite values in 1 row",
        "support_calls: out-of-domain values in 1 row (support_calls must be a whole number from 0 to 20)",
        "premium: non-numeric values in 2 rows",  # not counted again as empty values
        "premium: out-of-domain values in 1 row (premium must be one of 0, 1)",
        "churn: values other than 0, 1 or empty in 2 rows (empty means unlabelled)",
    ])
    msg = str(err.value)
    assert msg.startswith("bad.csv was refused (7 problems); nothing was stored.")
    assert msg.count("\n- ") == 7


def test_a_batch_missing_columns_names_each(tiny: Settings, good_frame: pd.DataFrame) -> None:
    with pytest.raises(BatchError) as err:
        batches.read_batch(_csv(good_frame.drop(columns=["premium", "usage_hours"])), tiny, name="partial.csv")
    problems = err.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("usage_hours: column is missing") and problems[1].startswith("premium:")
    assert "usage_hours, support_calls, premium" in problems[0]


def test_an_empty_or_unreadable_batch_is_refused(tiny: Settings, tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="the file is empty"):
        batches.read_batch(b"", tiny, name="empty.csv")
    with pytest.raises(BatchError, match="there are no rows"):
        batches.read_batch(b"usage_hours,support_calls,premium\n", tiny, name="header.csv")
    with pytest.raises(BatchError, match="not a readable parquet file"):
        batches.read_batch(b"PAR1 but not really", tiny, name="broken.parquet")
    with pytest.raises(BatchError, match="does not exist"):
        batches.read_batch(tmp_path / "nowhere.csv", tiny)


def test_a_batch_over_the_size_limit_is_refused_before_reading(tiny: Settings, good_frame: pd.DataFrame) -> None:
    small = tiny.replace(max_upload_mb=0.0001)  # 100 bytes
    with pytest.raises(BatchError, match="over the 0 MB limit"):
        batches.read_batch(_csv(good_frame), small, name="big.csv")


def test_an_out_of_domain_value_is_refused_alike_in_a_request_and_a_batch(tiny: Settings) -> None:
    row = {**GOOD, "support_calls": 21}
    with pytest.raises(InvalidInputError, match="support_calls must be a whole number from 0 to 20, got 21"):
        tiny.dataset.rules.validate_row(row)
    with pytest.raises(BatchError) as err:
        batches.read_batch(_csv(pd.DataFrame([row])), tiny, name="one.csv")
    assert err.value.problems == [
        "support_calls: out-of-domain values in 1 row (support_calls must be a whole number from 0 to 20)"]


def test_csv_and_parquet_batches_are_read_alike(tiny: Settings, good_frame: pd.DataFrame) -> None:
    from_csv = batches.read_batch(_csv(good_frame), tiny, name="b.csv")
    from_parquet = batches.read_batch(_parquet(good_frame), tiny, name="b.parquet")
    pd.testing.assert_frame_equal(from_csv.frame, from_parquet.frame)
    assert list(from_csv.frame.columns) == [*FEATURES, TARGET]  # extra raw columns left out
    assert all(from_csv.frame.dtypes == "float64")
    assert (from_csv.n_rows, from_csv.n_labelled) == (50, 48) and from_csv.has_labels
    assert (from_csv.suffix, from_parquet.suffix) == (".csv", ".parquet")
    assert from_csv.digest != from_parquet.digest and from_csv.raw == _csv(good_frame)


def test_a_batch_is_read_from_a_path_bytes_or_a_file_object(tiny: Settings, good_frame: pd.DataFrame,
                                                            tmp_path: Path) -> None:
    data = _parquet(good_frame)
    path = tmp_path / "upload.parquet"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "upload.parquet"
    read = [batches.read_batch(path, tiny), batches.read_batch(data, tiny), batches.read_batch(upload, tiny)]
    assert {b.digest for b in read} == {__import__("hashlib").sha256(data).hexdigest()}
    assert [b.name for b in read] == ["upload.parquet", "the batch", "upload.parquet"]
    for b in read[1:]:
        pd.testing.assert_frame_equal(b.frame, read[0].frame)


def test_a_batch_without_labels_has_none(tiny: Settings, good_frame: pd.DataFrame) -> None:
    unlabelled = batches.read_batch(_csv(good_frame.drop(columns=[TARGET])), tiny, name="u.csv")
    assert not unlabelled.has_labels and TARGET not in unlabelled.frame
    empty_labels = batches.read_batch(_csv(good_frame.assign(churn=np.nan)), tiny, name="e.csv")
    assert empty_labels.n_labelled == 0 and TARGET not in empty_labels.frame


@pytest.fixture
def coded(tmp_path: Path, source_dir: Path) -> Settings:
    """The tiny definition with its target coded 2 (churned) / 1 (stayed)."""
    import tomllib

    raw = tomllib.loads(definition_text(source_dir, positive=2, negative=1))
    return make_settings(tmp_path, catalog.from_dict(raw), source_dir)


def test_the_targets_positive_and_negative_values_map_to_1_and_0(coded: Settings) -> None:
    csv = b"usage_hours,support_calls,premium,churn\n10,1,0,2\n20,2,1,1\n30,3,0,\n40,4,1,2\n"
    b = batches.read_batch(csv, coded, name="coded.csv")
    assert b.frame[TARGET].tolist()[:2] == [1.0, 0.0] and math.isnan(b.frame[TARGET][2])
    assert b.frame[TARGET][3] == 1.0 and b.n_labelled == 3
    with pytest.raises(BatchError, match=r"churn: values other than 1, 2 or empty in 1 row"):
        batches.read_batch(b"usage_hours,support_calls,premium,churn\n10,1,0,0\n", coded, name="zero.csv")


def test_from_frame_validates_an_in_memory_frame(tiny: Settings, good_frame: pd.DataFrame) -> None:
    b = batches.from_frame(good_frame, tiny, "memory")
    assert b.raw is None and b.n_rows == 50 and b.n_labelled == 48
    assert batches.from_frame(good_frame.copy(), tiny, "again").digest == b.digest
    assert batches.from_frame(good_frame.iloc[1:], tiny, "fewer").digest != b.digest
    with pytest.raises(BatchError, match="premium: out-of-domain values in 1 row"):
        batches.from_frame(good_frame.assign(premium=[3] + [0] * 49), tiny, "bad")


def test_a_non_numeric_parquet_column_is_refused(tiny: Settings, good_frame: pd.DataFrame) -> None:
    text = good_frame.assign(support_calls=good_frame["support_calls"].astype(str))
    text.loc[0, "support_calls"] = "many"
    with pytest.raises(BatchError) as err:
        batches.read_batch(_parquet(text), tiny, name="text.parquet")
    assert err.value.problems == ["support_calls: non-numeric values in 1 row"]


# --------------------------------------------------------------------------- storing batches
def test_a_batch_is_stored_once_per_digest_with_its_original_bytes(tiny: Settings,
                                                                   good_frame: pd.DataFrame) -> None:
    b = batches.read_batch(_csv(good_frame), tiny, name="week1.csv")
    first = batch_store.store(b, tiny)
    again = batch_store.store(batches.read_batch(_csv(good_frame), tiny, name="renamed.csv"), tiny)
    assert again == first
    path = Path(first.path)
    assert path.parent == tiny.batches_dir and path.suffix == ".csv" and b.digest[:12] in path.name
    assert path.read_bytes() == b.raw
    assert sorted(p.name for p in tiny.batches_dir.iterdir()) == sorted([path.name, path.name + ".json"])
    meta = json.loads((tiny.batches_dir / (path.name + ".json")).read_text())
    assert meta["digest"] == b.digest and meta["name"] == "week1.csv" and meta["n_labelled"] == 48
    assert batch_store.find(tiny, b.digest) == first and batch_store.find(tiny, "0" * 64) is None


def test_stored_batches_are_listed_newest_first(tiny: Settings, good_frame: pd.DataFrame) -> None:
    assert batch_store.list_batches(tiny) == []
    one = batch_store.store(batches.read_batch(_csv(good_frame), tiny, name="one.csv"), tiny)
    two = batch_store.store(batches.from_frame(good_frame.iloc[:20], tiny, "two (memory)"), tiny)
    assert Path(two.path).suffix == ".parquet"
    assert len(pd.read_parquet(two.path)) == 20
    (tiny.batches_dir / "stray.json").write_text("{not json")  # not a sidecar of ours
    assert [r.name for r in batch_store.list_batches(tiny)] == ["two (memory)", "one.csv"]
    assert one.stored_at < two.stored_at


def test_a_stored_file_is_never_overwritten(tiny: Settings, good_frame: pd.DataFrame,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    monkeypatch.setattr(batch_store, "timestamp", lambda: "20260101T000000000000Z")
    b = batches.read_batch(_csv(good_frame), tiny, name="first.csv")
    first = batch_store.store(b, tiny)
    # another batch whose name would be the same file (same time, same digest prefix)
    other = dataclasses.replace(b, digest=b.digest[:12] + "f" * 52, raw=b"usage_hours\n1\n")
    with pytest.raises(FileExistsError):
        batch_store.store(other, tiny)
    assert Path(first.path).read_bytes() == b.raw
    assert [r.digest for r in batch_store.list_batches(tiny)] == [b.digest]


# --------------------------------------------------------------------------- categorical features
def test_a_categorical_feature_gets_a_rule_of_its_allowed_values(source_dir: Path) -> None:
    import tomllib

    raw = tomllib.loads(definition_text(source_dir))
    raw["features"].append({"name": "region", "kind": "categorical", "values": ["north", "south"]})
    raw["example"]["region"] = "north"
    spec = catalog.from_dict(raw)
    assert spec.feature("region").values == ("north", "south")
    rules = spec.rules
    assert rules.validate_row({**GOOD, "region": "north"})
    with pytest.raises(InvalidInputError, match="'east', a category never seen in training"):
        rules.validate_row({**GOOD, "region": "east"})
    assert rules.validate_row({**GOOD, "region": "east"}, allow_unseen=True)["region"] == "east"
    with pytest.raises(InvalidInputError, match="region must be text"):
        rules.validate_row({**GOOD, "region": ["north"]})
    with pytest.raises(InvalidInputError, match="region is '3', a category never seen"):
        rules.validate_row({**GOOD, "region": 3})  # a whole number is read as its digits
    batch = pd.DataFrame([{**GOOD, "region": v} for v in ("north", "east", "east", None)])
    batch = batch.astype({c: "float64" for c in GOOD})  # numbers as a batch reader hands them over
    problems = rules.frame_problems(batch)
    assert any("region: empty values in 1 row" in p for p in problems)
    assert any("'east' (2)" in p for p in problems)
    assert not any("east" in p for p in rules.frame_problems(batch, allow_unseen=True))
    assert rules.plain_problems(batch) == rules.frame_problems(batch)


def test_the_quick_whole_matrix_check_agrees_with_the_detailed_one(spec: DatasetSpec) -> None:
    """`all_valid` (the served model's and valid batches' quick path) and `array_problems` are the
    same rules: on random matrices mixing valid and broken values they never disagree."""
    rng = np.random.default_rng(7)
    table = spec.rules
    pool = np.array([0.0, 1.0, 2.0, 0.5, 20.0, 21.0, 99.9, 100.0, 100.5, -1.0, np.nan, np.inf, -np.inf, 3.0])
    disagreements, invalid = 0, 0
    for _ in range(400):
        x = rng.choice(pool, size=(int(rng.integers(1, 5)), len(FEATURES)))
        problems = table.array_problems(x)
        invalid += bool(problems)
        disagreements += table.all_valid(x) == bool(problems)
    assert disagreements == 0 and 0 < invalid < 400  # both kinds were drawn


def test_the_column_by_column_check_agrees_with_the_matrix_one(spec: DatasetSpec) -> None:
    rng = np.random.default_rng(11)
    pool = np.array([0.0, 1.0, 2.0, 0.5, 20.0, 21.0, 100.0, 100.5, -1.0, np.nan, np.inf])
    for _ in range(300):
        x = rng.choice(pool, size=(int(rng.integers(1, 6)), len(FEATURES)))
        frame = pd.DataFrame(x, columns=list(FEATURES))
        assert spec.rules.columns_valid(frame) == spec.rules.all_valid(x)
