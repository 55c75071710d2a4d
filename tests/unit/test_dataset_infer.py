"""Inferring a dataset definition from a table (`core/data/infer.py`, `core/data/column_roles.py`),
on tiny inline frames: kinds and domains, each reason a column is left out, the positive class,
unlabelled rows, production rows, and every refusal."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tomli_w
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from core import catalog
from core.data.infer import Inference, infer
from core.dataset import DatasetError

N = 120  # rows of the frames below: above the identifier and leak checks' minimums


def _frame(n: int = N, seed: int = 3, **extra: object) -> pd.DataFrame:
    """A table with a noisy two-class target `y` (0/1, 30 % ones) and one plain numeric feature."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype("int64")
    frame = pd.DataFrame({"x": rng.normal(size=n) + 0.5 * y, "y": y})
    for name, values in extra.items():
        frame[name] = values
    return frame


def _excluded(inference: Inference) -> dict[str, str]:
    return {e["column"]: e["reason"] for e in inference.excluded}


def _features(inference: Inference) -> dict[str, dict]:
    return {f["name"]: f for f in inference.definition["features"]}


# --------------------------------------------------------------------------- kinds
def test_kinds_and_domains_are_inferred_from_the_values() -> None:
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({
        "amount": rng.gamma(2.0, 10.0, n),                         # non-negative numbers
        "delta": rng.normal(size=n),                               # negative values too
        "visits": rng.integers(0, 9, n),                           # whole numbers
        "premium": rng.integers(0, 2, n),                          # 0/1
        "size": rng.choice([3, 7], n),                             # two numbers
        "plan": rng.choice(["basic", "pro", "team"], n),           # text
        "online": rng.random(n) < 0.5,                             # booleans
        "tier": pd.Categorical(rng.choice(["b", "a"], n)),         # a category dtype
        "y": np.r_[np.zeros(30), np.ones(30)].astype("int64"),
    })
    frame.loc[[1, 5], "amount"] = np.nan
    inference = infer(frame, "kinds", "y")
    f = _features(inference)
    assert inference.kinds == {"amount": "numeric", "delta": "numeric", "visits": "numeric", "premium": "binary",
                               "size": "binary", "plan": "categorical", "online": "binary", "tier": "categorical"}
    assert (f["amount"]["integer"], f["amount"]["min"], "max" in f["amount"]) == (False, 0.0, False)
    assert f["amount"]["nullable"] is True and f["delta"]["nullable"] is False
    assert "min" not in f["delta"] and "max" not in f["delta"]  # production may leave the range: drift says so
    assert (f["visits"]["integer"], f["visits"]["min"]) == (True, 0)
    assert f["premium"]["values"] == [0, 1] and f["size"]["values"] == [3, 7]
    assert f["plan"]["values"] == ["basic", "pro", "team"]
    assert f["online"]["values"] == [0, 1] and f["online"]["value_labels"] == {"0": "False", "1": "True"}
    assert f["tier"]["values"] == ["a", "b"]
    spec = catalog.from_dict(inference.definition)  # what the catalog accepts
    assert spec.features == tuple(inference.kinds) and spec.target.column == "y"
    assert (spec.experiment, spec.model_name, spec.row_noun, spec.rows_noun) == (
        "kinds-workbench", "kinds-model", "row", "rows")
    assert spec.prod is None and spec.dev.where == "" and spec.sources[0].file == "kinds.parquet"


def test_yes_no_words_in_any_case_are_a_binary_feature() -> None:
    """Issue 30: a column of exactly two yes/no words (yes/no, true/false, y/n; any case, spaces,
    missing values) is a binary feature whose 0 and 1 keep the words; other text stays categorical."""
    rng = np.random.default_rng(1)
    n = 90
    frame = pd.DataFrame({
        "smoker": rng.choice(["Yes", "yes", "YES ", "no", "No"], n),
        "insured": rng.choice(["TRUE", "False", "true"], n),
        "urban": rng.choice(["y", "N"], n).astype(object),
        "answer": rng.choice(["yes", "maybe"], n),          # not a yes/no pair
        "mixed": rng.choice(["yes", "false"], n),           # two words of different pairs
        "y": np.r_[np.zeros(45), np.ones(45)].astype("int64"),
    })
    frame.loc[[2, 7], "urban"] = None
    inference = infer(frame, "words", "y")
    f = _features(inference)
    assert {c: inference.kinds[c] for c in ("smoker", "insured", "urban", "answer", "mixed")} == {
        "smoker": "binary", "insured": "binary", "urban": "binary", "answer": "categorical", "mixed": "categorical"}
    assert f["smoker"]["values"] == [0, 1] and set(f["smoker"]["value_labels"]) == {"0", "1"}
    assert f["smoker"]["value_labels"]["0"].lower() == "no" and f["smoker"]["value_labels"]["1"].lower() == "yes"
    assert f["insured"]["value_labels"]["0"] == "False" and f["urban"]["value_labels"] == {"0": "N", "1": "y"}
    assert f["urban"]["nullable"] is True and "N (0) and y (1); 2 missing" in f["urban"]["help"]
    spec = catalog.from_dict(tomllib.loads(tomli_w.dumps(inference.definition)))
    assert spec.feature("smoker").kind == "binary" and spec.feature("urban").value_label(1.0) == "y"


def test_dataset_add_saves_yes_no_words_as_numbers_and_reads_batches_of_words(tmp_path) -> None:
    from core.config import Settings
    from core.data import batches, dataset_store, preparation

    rng = np.random.default_rng(2)
    n = 200
    smoker = rng.choice(["yes", "no"], n)
    frame = pd.DataFrame({"age": rng.integers(20, 70, n), "smoker": np.char.capitalize(smoker.astype(str)),
                          "claim": np.where((smoker == "yes") ^ (rng.random(n) < 0.3), "yes", "no")})
    result = dataset_store.add(tmp_path, frame, "insurance", "claim")
    assert result.features == {"age": "numeric", "smoker": "binary"}
    saved = pd.read_parquet(result.data_path)
    assert saved["smoker"].tolist() == [1.0 if v == "Yes" else 0.0 for v in frame["smoker"]]
    spec = catalog.find("insurance", [catalog.user_dir(tmp_path)])
    assert spec.feature("smoker").value_labels == {"0": "No", "1": "Yes"}
    s = Settings.from_env({"WORKBENCH_HOME": str(tmp_path)}, dataset=spec)
    preparation.prepare(s)
    assert set(preparation.load_split(s, "train")["smoker"].unique()) == {0.0, 1.0}
    # a batch as the analyst's source writes it (words, any case) is read as the model's 1 and 0
    words = frame.head(20).assign(smoker=lambda d: d["smoker"].str.upper())
    batch = batches.read_batch(words.to_csv(index=False).encode(), s, "words.csv")
    assert batch.frame["smoker"].tolist() == [1.0 if v == "YES" else 0.0 for v in words["smoker"]]
    # other text in a binary feature is still refused
    with pytest.raises(batches.BatchError, match="smoker: non-numeric values"):
        batches.read_batch(words.assign(smoker="maybe").to_csv(index=False).encode(), s, "maybe.csv")


def test_the_definition_survives_a_toml_round_trip() -> None:
    frame = _frame(plan=np.where(np.arange(N) % 3 == 0, "a", "b"))
    definition = infer(frame, "trip", "y").definition
    assert tomllib.loads(tomli_w.dumps(definition)) == definition


# --------------------------------------------------------------------------- exclusions
def test_each_reason_to_leave_a_column_out_is_reported() -> None:
    rng = np.random.default_rng(1)
    words = ["the", "customer", "called", "about", "a", "late", "delivery", "and", "asked", "for", "refund"]
    frame = _frame(
        row_id=np.arange(N) + 1000,                                          # integer identifier
        code=[f"C-{i:05d}" for i in range(N)],                               # text identifier
        country="PT",                                                        # constant
        signup=pd.date_range("2024-01-01", periods=N, freq="D"),             # datetime dtype
        seen=[f"2024-02-{1 + i % 28:02d}" for i in range(N)],                # text dates
        note=[" ".join(rng.choice(words, 8)) for _ in range(N)],             # free text
        rare=np.where(np.arange(N) < 3, 1.0, np.nan),                        # almost all missing
        blob=[[i] for i in range(N)],                                        # lists: unsupported
    )
    reasons = _excluded(infer(frame, "reasons", "y"))
    assert reasons["y"] == "the target"
    assert reasons["row_id"].startswith("an identifier: whole numbers in sequence")
    assert reasons["code"].startswith("an identifier: distinct on 100.0% of rows")
    assert reasons["country"].startswith("constant") and "'PT'" in reasons["country"]
    assert reasons["signup"].startswith("dates / timestamps")
    assert reasons["seen"].startswith("dates / timestamps (text that parses as dates)")
    assert reasons["note"].startswith("free text")
    assert reasons["rare"].startswith("almost all missing (97.5% of rows)")
    assert reasons["blob"].startswith("values of an unsupported type")
    assert "x" not in reasons


def test_a_column_that_gives_the_label_away_is_a_leak_but_a_strong_one_is_kept() -> None:
    frame = _frame()
    y = frame["y"].to_numpy()
    rng = np.random.default_rng(5)
    frame = frame.assign(
        days_since_cancel=np.where(y == 1, rng.integers(1, 30, N), 0),        # a consequence of the label
        status=np.where(y == 1, "cancelled", "active"),                      # the label as text
        score=y * 1.5 + rng.normal(size=N),                                  # strong, not perfect
    )
    inference = infer(frame, "leaky", "y")
    reasons = _excluded(inference)
    assert reasons["days_since_cancel"].startswith("a leak: alone it predicts the target with ROC-AUC 1.000")
    assert reasons["status"].startswith("a leak")
    assert set(inference.kinds) == {"x", "score"}


def test_small_tables_are_not_judged_as_identifiers_free_text_or_leaks() -> None:
    frame = pd.DataFrame({"city": ["a", "b", "c", "d", "e", "f"], "n": [1, 2, 3, 4, 5, 6],
                          "y": [0, 0, 0, 1, 1, 1]})
    inference = infer(frame, "small", "y")
    assert inference.kinds == {"city": "categorical", "n": "numeric"}  # n separates y perfectly: too few rows to say


def test_chosen_features_are_kept_exactly_with_the_reasons_as_warnings() -> None:
    frame = _frame(country="PT", other=np.arange(N) % 4)
    inference = infer(frame, "chosen", "y", features=["country", "x"])
    assert list(inference.kinds) == ["country", "x"]
    assert inference.kinds["country"] == "categorical"
    assert any(w.startswith("country kept as a feature although it looks like constant") for w in inference.warnings)
    assert _excluded(inference)["other"] == "not among the chosen features"


@pytest.mark.parametrize("features, message", [
    (["x", "nosuch"], r"--features names column\(s\) the table does not have: nosuch"),
    (["x", "y"], "--features lists the target 'y'"),
    ([], "--features is empty"),
    (["x", "x"], "--features lists x more than once"),
])
def test_bad_chosen_features_are_refused(features: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        infer(_frame(), "chosen", "y", features=features)


def test_no_feature_left_says_which_reason_removed_what() -> None:
    frame = pd.DataFrame({"id": [f"k{i}" for i in range(N)], "c": 1, "y": np.arange(N) % 2})
    with pytest.raises(DatasetError, match=r"No column is left .*id: an identifier.*c: constant.*--features"):
        infer(frame, "empty", "y")


# --------------------------------------------------------------------------- the target
def test_the_minority_class_is_positive_by_default_and_said_in_words() -> None:
    frame = pd.DataFrame({"x": np.arange(10) % 3, "y": ["no"] * 7 + ["yes"] * 3})
    inference = infer(frame, "words", "y")
    target = inference.definition["target"]
    assert (target["positive"], target["negative"], target["positive_name"], target["negative_name"]) == (
        "yes", "no", "yes", "no")
    assert inference.positive_note == ("positive class: 'yes' (the minority, 30.0% of labelled rows); "
                                       "use --positive to choose")
    assert inference.positive_share == 0.3


def test_balanced_classes_take_the_later_value_and_numbers_stay_numbers() -> None:
    frame = pd.DataFrame({"x": np.arange(8) % 3, "y": [0.0, 1.0] * 4})
    inference = infer(frame, "tie", "y")
    target = inference.definition["target"]
    assert (target["positive"], target["negative"]) == (1, 0) and isinstance(target["positive"], int)
    assert target["positive_name"] == "1" and "balanced" in inference.positive_note


def test_positive_given_as_text_matches_a_number_and_a_bad_one_is_refused() -> None:
    frame = pd.DataFrame({"x": np.arange(10) % 3, "y": [1] * 7 + [0] * 3})
    inference = infer(frame, "pos", "y", positive="1")
    assert inference.definition["target"]["positive"] == 1 and "as chosen, 70.0%" in inference.positive_note
    with pytest.raises(DatasetError, match=r"--positive '2' is not a value of the target 'y'; its values are 0 and 1"):
        infer(frame, "pos", "y", positive="2")


def test_rows_without_a_label_are_counted_as_unlabelled() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "y": ["a", "b", None, "a", " ", "b", "a", np.nan, "a", "b"]})
    inference = infer(frame, "unlab", "y")
    assert (inference.rows, inference.labelled_rows, inference.unlabelled_rows) == (10, 7, 3)
    assert inference.definition["target"]["positive"] == "b"


@pytest.mark.parametrize("target, message", [
    ("nosuch", r"There is no column 'nosuch' to predict; the columns are: x, y"),
    ("x", r"The target 'x' has 10 classes too rare to split among the labelled rows: 0 \(1 row\), 1 \(1 row\)"),
])
def test_a_target_that_is_missing_or_too_small_is_refused(target: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        infer(pd.DataFrame({"x": np.arange(10), "y": [0, 1] * 5}), "t", target)


def test_a_three_valued_target_too_small_to_split_shows_its_values() -> None:
    frame = pd.DataFrame({"x": np.arange(9), "y": ["a", "b", "c"] * 3})
    with pytest.raises(DatasetError, match=r"3 classes too rare to split among the labelled rows: 'a' \(3 rows\), "
                                           r"'b' \(3 rows\), 'c' \(3 rows\); each class needs at least 5"):
        infer(frame, "three", "y")


# --------------------------------------------------------------------------- production rows
def test_prod_where_sets_production_rows_apart() -> None:
    frame = _frame(year=np.where(np.arange(N) < 90, 2023, 2024), region=np.where(np.arange(N) < 90, "n", "s"))
    inference = infer(frame, "split", "y", prod_where="year >= 2024")
    d = inference.definition
    assert (d["dev"]["where"], d["prod"]["where"]) == ("not (year >= 2024)", "year >= 2024")
    assert (inference.dev_rows, inference.prod_rows) == (90, 30)
    reasons = _excluded(inference)  # the split columns hold one value in the dev rows: nothing to learn
    assert reasons["year"].startswith("constant among the dev rows") and reasons["region"].startswith("constant")
    spec = catalog.from_dict(d)
    assert spec.prod is not None and spec.prod.source == spec.dev.source == "split.parquet"
    assert len(frame.query(spec.dev.where, engine="python")) == 90


@pytest.mark.parametrize("query, message", [
    ("nosuch > 1", r"The --prod-where filter cannot be applied: The filter 'nosuch > 1' names column\(s\) 'nosuch'"),
    ("x >", r"cannot be applied"),
    ("x > 1000", r"selects no row of the 120"),
    ("x > -1000", r"selects every row of the 120"),
    ("y == 1", r"do not hold both classes"),
    ("  ", r"--prod-where is empty"),
])
def test_a_bad_prod_where_query_is_refused(query: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        infer(_frame(), "q", "y", prod_where=query)


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("frame, name, message", [
    (pd.DataFrame({"y": [0, 1]}), "one", r"The table has 1 column\(s\); it needs a target and at least one feature"),
    (pd.DataFrame({"x": [], "y": []}), "none", r"The table has no rows"),
    (pd.DataFrame({"x": [1, 2], "y": [0, 1]}), "Bad Name", r"The dataset name 'Bad Name' is not allowed"),
    (pd.DataFrame({"x": [1, 2], "y": [0, 1]}), "-x", r"is not allowed"),
    (pd.DataFrame({"x": [1, 2], "y": [0, 1]}), "kobe", r"'kobe' is a built-in dataset; choose another name"),
    (pd.DataFrame([[1, 0]], columns=["x", "x"]), "dup", r"Column\(s\) x appear more than once"),
    (pd.DataFrame({0: [1, 2], "y": [0, 1]}), "num", r"Every column needs a text name"),
])
def test_refusals_say_what_is_wrong(frame: pd.DataFrame, name: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as err:
        infer(frame, name, "y")
    assert err.value.exit_code == 2


def test_the_inference_is_plain_data() -> None:
    d = infer(_frame(), "plain", "y").to_dict()
    assert set(d) >= {"definition", "kinds", "excluded", "warnings", "positive_note", "rows", "labelled_rows",
                      "unlabelled_rows", "dev_rows", "prod_rows"}
    d["definition"]["name"] = "changed"  # a copy: the inference itself is untouched
    assert infer(_frame(), "plain", "y").definition["name"] == "plain"


# --------------------------------------------------------------------------- property
_columns = [
    hpd.column("a", elements=st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))),
    hpd.column("b", elements=st.integers(-5, 5)),
    hpd.column("c", elements=st.sampled_from(["p", "q", "r", None])),
    hpd.column("y", elements=st.sampled_from([0, 1, None])),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=hpd.data_frames(_columns, index=hpd.range_indexes(min_size=1, max_size=40)))
def test_any_table_gives_a_valid_definition_or_a_clear_refusal(frame: pd.DataFrame) -> None:
    try:
        inference = infer(frame, "prop", "y")
    except DatasetError as err:
        assert str(err) and "Traceback" not in str(err)
        return
    spec = catalog.from_dict(tomllib.loads(tomli_w.dumps(inference.definition)))
    assert set(spec.features) <= {"a", "b", "c"} and spec.target.column == "y"
    assert inference.labelled_rows + inference.unlabelled_rows == len(frame)
    labels, bad = spec.target.encode(frame["y"])
    assert bad == 0 and int((~np.isnan(labels)).sum()) == inference.labelled_rows
    for f in spec.features_spec:
        column = frame[f.name]
        assert f.nullable == bool(column.isna().any())
        if f.kind == "categorical":
            assert set(f.values) == set(column.dropna().astype(str))
        elif f.kind == "binary":
            assert set(f.values) == set(column.dropna().astype(float))
        elif f.minimum is not None:
            assert column.min() >= f.minimum


def test_boolean_and_category_targets_keep_their_values() -> None:
    flags = pd.DataFrame({"x": np.arange(8), "y": [True, False, None, True, False, False, False, True]})
    inference = infer(flags, "flags", "y", positive="True")
    target = catalog.from_dict(inference.definition).target
    assert (target.positive, target.negative, target.positive_name) == (True, False, "True")
    assert inference.labelled_rows == 7 and target.encode(flags["y"])[1] == 0
    cats = pd.DataFrame({"x": np.arange(8), "y": pd.Categorical(list("abaa") + [None] + list("baa"),
                                                                categories=["a", "b", "unused"])})
    assert infer(cats, "cats", "y").definition["target"]["positive"] == "b"  # unused categories are no class
