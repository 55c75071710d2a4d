"""Issue 17, readers: what `read_batch` cannot read is refused with the real reason; values the
model cannot take are refused before they reach scikit-learn; `drop_invalid` drops bad rows and
counts them; a property test feeds random frames and bytes. On the tiny definition (not Kobe)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomllib
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core import catalog
from core.config import Settings
from core.data import batch_store, batches
from core.data.batches import MODEL_MAX, BatchError
from tests.unit.conftest import FEATURES, TARGET, definition_text, make_settings

HEADER = "usage_hours,support_calls,premium,churn"
GOOD_ROWS = ["10.5,1,0,1", "20,2,1,0", "30,3,0,", "40,4,1,1"]


def _csv(rows: list[str], header: str = HEADER, sep: str = ",") -> bytes:
    return "\n".join([header, *rows]).replace(",", sep).encode() + b"\n"


def _parquet_table(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def refused(data: bytes, s: Settings, name: str = "b.csv", **kw: object) -> BatchError:
    with pytest.raises(BatchError) as err:
        batches.read_batch(data, s, name=name, **kw)
    assert "nothing was stored" in str(err.value)
    assert all(p in str(err.value) for p in err.value.problems)
    return err.value


# --------------------------------------------------------------------------- duplicate columns
def test_duplicate_columns_in_parquet_are_named(tiny: Settings) -> None:
    table = pa.Table.from_arrays([pa.array([10.0]), pa.array([1.0]), pa.array([0]), pa.array([11.0]),
                                  pa.array(["a"]), pa.array(["b"])],
                                 names=["usage_hours", "support_calls", "premium", "usage_hours", "note", "note"])
    err = refused(_parquet_table(table), tiny, "dup.parquet")
    assert err.problems == ["usage_hours: column appears 2 times (keep one of them)"]  # "note" is not read


def test_duplicate_columns_in_csv_are_named(tiny: Settings) -> None:
    data = _csv(["10,1,0,1,0", "20,2,1,0,1"], header="usage_hours,support_calls,premium,churn,churn")
    assert refused(data, tiny).problems == ["churn: column appears 2 times (keep one of them)"]
    # pandas would have renamed the second one "churn.1" and silently used the first
    frame = pd.DataFrame([[10.0, 1.0, 0.0, 12.0]], columns=["usage_hours", "support_calls", "premium", "premium"])
    with pytest.raises(BatchError, match=r"premium: column appears 2 times"):
        batches.from_frame(frame, tiny, "memory")


# --------------------------------------------------------------------------- separators
@pytest.mark.parametrize("sep, word", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_csv_with_another_separator_is_read_as_such(tiny: Settings, sep: str, word: str) -> None:
    comma = batches.read_batch(_csv(GOOD_ROWS), tiny, name="comma.csv")
    other = batches.read_batch(_csv(GOOD_ROWS, sep=sep), tiny, name="other.csv")
    pd.testing.assert_frame_equal(other.frame, comma.frame)
    assert (other.n_rows, other.n_labelled) == (4, 3)
    bad = _csv([*GOOD_ROWS, "150,1,0,1"], sep=sep)  # one value out of the domain
    err = refused(bad, tiny)
    assert f"read as a {word}-separated CSV" in str(err)
    assert err.problems == ["usage_hours: out-of-domain values in 1 row "
                            "(usage_hours must be a finite number from 0 to 100)"]


def test_a_semicolon_csv_without_known_columns_says_how_it_was_read(tiny: Settings) -> None:
    err = refused(b"a;b;c\n1;2;3\n4;5;6\n", tiny)
    assert "read as a semicolon-separated CSV" in str(err)
    assert [p.split(":")[0] for p in err.problems] == list(FEATURES)  # each column missing, not "no rows"
    assert not any("no rows" in p for p in err.problems)


# --------------------------------------------------------------------------- not a CSV at all
def test_a_png_renamed_csv_is_refused_as_an_image(tiny: Settings) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
    assert refused(png, tiny, "shots.csv").problems == [
        "file: not a CSV file, it looks like a PNG image; upload a parquet or CSV file"]


@pytest.mark.parametrize("data, reason", [
    (bytes(range(256)), "binary data (NUL bytes)"),
    (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive"),
    (HEADER.encode() + b"\n10,1,0,1\n\xe9t\xe9,1,0,1\n", "not a UTF-8 text file (byte 0xe9 at position"),
])
def test_binary_and_non_utf8_files_are_refused_with_the_reason(tiny: Settings, data: bytes, reason: str) -> None:
    problems = refused(data, tiny).problems
    assert len(problems) == 1 and reason in problems[0], problems


# --------------------------------------------------------------------------- ragged rows
def test_ragged_rows_are_named_by_line(tiny: Settings) -> None:
    rows = ["10,1,0,1", "20,2,1", "30,3,0,1", "40,4,1,0,9", "", "   ", "50,5,0,1"]  # lines 3 and 5; blanks skipped
    assert refused(_csv(rows), tiny).problems == [
        "file: more or fewer fields than the header's 4 in 2 rows (lines 3, 5); give every row one value per column"]


def test_many_ragged_rows_show_the_first_five_and_a_count(tiny: Settings) -> None:
    rows = ["10,1,0,1" if i % 2 else "10,1,0" for i in range(16)]  # 8 short rows, on even lines
    problem = refused(_csv(rows), tiny).problems[0]
    assert "in 8 rows (lines 2, 4, 6, 8, 10 and 3 more)" in problem


def test_ragged_rows_in_a_quoted_csv_are_named_by_their_first_line(tiny: Settings) -> None:
    data = (b'usage_hours,support_calls,premium,churn,notes\n'
            b'10,1,0,1,"a note\nover two lines"\n'    # lines 2-3: one row
            b'20,2,1,0\n'                             # line 4: short
            b'30,3,0,1,"x",extra\n')                  # line 5: long
    assert "in 2 rows (lines 4, 5)" in refused(data, tiny).problems[0]
    good = b'usage_hours,support_calls,premium,churn,notes\n10,1,0,1,"a, b"\n20,2,1,0,"c\nd"\n'
    assert batches.read_batch(good, tiny, name="quoted.csv").n_rows == 2


def test_one_field_more_in_every_row_is_not_taken_for_an_index(tiny: Settings) -> None:
    # pandas would read the first column as the index and shift every value by one column
    data = _csv(["7,10,1,0,1", "8,20,2,1,0"])
    assert "more or fewer fields than the header's 4 in 2 rows (lines 2, 3)" in refused(data, tiny).problems[0]


# --------------------------------------------------------------------------- values the model cannot take
@pytest.fixture
def unbounded(tmp_path: Path, source_dir: Path) -> Settings:
    """The tiny definition with `usage_hours` open above (no max)."""
    raw = tomllib.loads(definition_text(source_dir))
    del raw["features"][0]["max"]
    return make_settings(tmp_path, catalog.from_dict(raw), source_dir)


def test_finite_values_beyond_float32_are_refused_before_scikit_learn(unbounded: Settings) -> None:
    from sklearn.tree import DecisionTreeClassifier

    huge = _csv(["1.7e308,1,0,1", "3.5e38,2,1,0", "20,2,1,0"])
    err = refused(huge, unbounded)
    assert err.problems == ["usage_hours: values too large for the model in 2 rows "
                            f"(beyond ±{MODEL_MAX:.3g}, the range of the model's 32-bit floats)"]
    within = batches.read_batch(_csv(["3.4e38,1,0,1", "20,2,1,0"]), unbounded, name="ok.csv")
    assert within.frame["usage_hours"].max() == pytest.approx(3.4e38)
    # why: a tree casts its input to float32 and fails on what the reader would have let through
    tree = DecisionTreeClassifier().fit(np.array([[1.0], [2.0]]), [0, 1])
    with pytest.warns(RuntimeWarning, match="overflow"), pytest.raises(ValueError, match="too large"):
        tree.predict(np.array([[1.7e308]]))


def test_a_bounded_feature_reports_a_huge_value_once(tiny: Settings) -> None:
    assert refused(_csv(["1.7e308,1,0,1"]), tiny).problems == [
        "usage_hours: out-of-domain values in 1 row (usage_hours must be a finite number from 0 to 100)"]


def test_true_false_is_refused_for_a_feature_that_is_not_binary(tiny: Settings) -> None:
    frame = pd.DataFrame({"usage_hours": [10.0, 20.0, 30.0], "support_calls": [True, False, True],
                          "premium": [True, False, True], TARGET: [1, 0, 1]})
    err = refused(_parquet(frame), tiny, "bools.parquet")
    assert err.problems == ["support_calls: true/false values in 3 rows (support_calls is not a yes/no "
                            "feature: it must be a whole number from 0 to 20)"]
    ok = batches.read_batch(_parquet(frame.assign(support_calls=[1, 0, 1])), tiny, name="b.parquet")
    assert ok.frame["premium"].tolist() == [1.0, 0.0, 1.0]  # a binary feature takes true/false as 1/0
    nullable = frame.assign(support_calls=pd.array([True, None, False], dtype="boolean"))
    assert refused(_parquet(nullable), tiny, "n.parquet").problems[0].startswith(
        "support_calls: true/false values in 2 rows")
    with pytest.raises(BatchError, match="support_calls: true/false values"):
        batches.from_frame(frame, tiny, "memory", drop_invalid=True)  # a column-level problem: never dropped


# --------------------------------------------------------------------------- drop_invalid
BAD_ROWS = [
    "10,1,0,1",
    "150,2,1,0",     # usage out of domain
    ",2,0,1",        # usage empty
    "20,inf,0,1",    # calls infinite
    "20,2.5,0,1",    # calls fractional (out of domain)
    "20,3,yes,1",    # premium not a number
    "20,3,1,7",      # label not allowed
    "30,3,0,",       # unlabelled: kept
    "-1,99,5,0",     # three rules at once: one row
]


def test_drop_invalid_keeps_the_valid_rows_and_counts_the_others(tiny: Settings) -> None:
    strict = refused(_csv(BAD_ROWS), tiny)
    assert len(strict.problems) == 7
    b = batches.read_batch(_csv(BAD_ROWS), tiny, name="week.csv", drop_invalid=True)
    assert (b.n_rows, b.n_labelled, b.n_dropped) == (2, 1, 7)
    assert b.frame[list(FEATURES)].to_numpy().tolist() == [[10.0, 1.0, 0.0], [30.0, 3.0, 0.0]]
    assert b.dropped == {
        "usage_hours: out-of-domain values": 2, "usage_hours: empty (NaN) values": 1,
        "support_calls: infinite values": 1, "support_calls: out-of-domain values": 2,
        "premium: non-numeric values": 1, "premium: out-of-domain values": 1,
        "churn: values other than 0, 1": 1,
    }
    d = json.loads(json.dumps(b.to_dict()))
    assert d["n_dropped"] == 7 and d["dropped"] == b.dropped and d["n_rows"] == 2
    text = batches.dropped_text(d)
    assert text.startswith("7 rows dropped as invalid, 2 kept (") and "churn: values other than 0, 1 in 1 row" in text
    assert batches.dropped_text({"n_dropped": 0}) == ""
    # what is stored is the kept rows, which read back the same without dropping anything
    assert b.suffix == ".parquet"
    again = batches.read_batch(b.raw, tiny, name="stored.parquet")
    pd.testing.assert_frame_equal(again.frame, b.frame)
    assert again.digest == b.digest == batches.read_batch(_csv(BAD_ROWS), tiny, drop_invalid=True).digest
    record = batch_store.store(b, tiny)
    assert record.n_dropped == 7 and Path(record.path).read_bytes() == b.raw
    stored, notes = batch_store.read_stored(tiny)
    assert notes == [] and [(x.digest, x.n_rows) for x in stored] == [(b.digest, 2)]


def test_drop_invalid_changes_nothing_on_a_valid_batch(tiny: Settings) -> None:
    strict = batches.read_batch(_csv(GOOD_ROWS), tiny, name="g.csv")
    dropping = batches.read_batch(_csv(GOOD_ROWS), tiny, name="g.csv", drop_invalid=True)
    assert (dropping.digest, dropping.raw, dropping.n_dropped, dropping.dropped) == (strict.digest, strict.raw, 0, {})
    pd.testing.assert_frame_equal(dropping.frame, strict.frame)


@pytest.mark.parametrize("data, fragment", [
    (_csv(["10,1,1"], header="usage_hours,support_calls,churn"), "premium: column is missing"),
    (_csv(["10,1,0,1,1"], header="usage_hours,support_calls,premium,churn,churn"), "churn: column appears 2 times"),
    (_csv(["10,1,0,1", "10,1"]), "more or fewer fields"),
    (_csv(["150,1,0,1", "10,99,0,1"]), "batch: no valid rows left, every one of the 2 rows breaks a rule"),
    (_csv([]), "batch: there are no rows"),
])
def test_drop_invalid_still_refuses_file_level_problems(tiny: Settings, data: bytes, fragment: str) -> None:
    assert fragment in str(refused(data, tiny, drop_invalid=True))


def test_from_frame_drops_invalid_rows_too(tiny: Settings) -> None:
    frame = pd.DataFrame({"usage_hours": [10.0, np.nan, 30.0], "support_calls": [1, 2, 3], "premium": [0, 1, 2]})
    b = batches.from_frame(frame, tiny, "memory", drop_invalid=True)
    assert (b.n_rows, b.n_dropped, b.dropped) == (1, 2, {"usage_hours: empty (NaN) values": 1,
                                                          "premium: out-of-domain values": 1})


# --------------------------------------------------------------------------- stored batches
def test_an_in_memory_batch_is_stored_with_the_targets_own_values(tmp_path: Path, source_dir: Path) -> None:
    raw = tomllib.loads(definition_text(source_dir, positive='"yes"', negative='"no"'))
    s = make_settings(tmp_path, catalog.from_dict(raw), source_dir)
    frame = pd.DataFrame({"usage_hours": [10.0, 20.0, 30.0], "support_calls": [1, 2, 3], "premium": [0, 1, 0],
                          TARGET: ["yes", "no", None]})
    b = batches.from_frame(frame, s, "memory")
    assert b.frame[TARGET].tolist()[:2] == [1.0, 0.0]
    record = batch_store.store(b, s)
    back = batches.read_batch(record.path, s)  # "yes"/"no" again, not 1.0/0.0 (which this target refuses)
    pd.testing.assert_frame_equal(back.frame, b.frame)


def test_stored_batches_that_no_longer_read_are_put_aside_with_the_reason(tiny: Settings) -> None:
    good = batch_store.store(batches.read_batch(_csv(GOOD_ROWS), tiny, name="good.csv"), tiny)
    folder = tiny.batches_dir
    (folder / "20200101T000000000000Z_aaaaaaaaaaaa.csv").write_bytes(_csv(["10,1,0,1", "10,1"]))  # ragged
    (folder / "20200101T000000000000Z_aaaaaaaaaaaa.csv.json").write_text(json.dumps({
        "path": "/elsewhere/x.csv", "name": "ragged.csv", "digest": "a" * 64, "n_rows": 2, "n_labelled": 2,
        "stored_at": "20200101T000000000000Z", "size_bytes": 30}))
    (folder / "gone.csv.json").write_text(json.dumps({**good.to_dict(), "name": "gone.csv", "digest": "b" * 64}))
    (folder / "odd.json").write_text(json.dumps({**good.to_dict(), "stored_at": 3}))  # not ours: wrong type
    (folder / "list.json").write_text("[1, 2]")
    records = batch_store.list_batches(tiny)
    assert sorted(r.name for r in records) == ["gone.csv", "good.csv", "ragged.csv"]
    ragged = next(r for r in records if r.name == "ragged.csv")
    assert ragged.path == str(folder / "20200101T000000000000Z_aaaaaaaaaaaa.csv")  # the file beside its sidecar
    read, notes = batch_store.read_stored(tiny)
    assert [b.name for b in read] == ["good.csv"]
    reasons = {n["name"]: n["reason"] for n in notes}
    assert set(reasons) == {"gone.csv", "ragged.csv"} and all(n["use"] == "skipped" for n in notes)
    assert "does not exist" in reasons["gone.csv"] and "(line 3)" in reasons["ragged.csv"]


# --------------------------------------------------------------------------- property: never anything else
JUNK = ["segment", "", "a,b", 'q"uote', "churn ", "Usage_Hours", "x;y", "\ufeffusage_hours"]
NAMES = st.sampled_from([*FEATURES, TARGET, *JUNK])
CELLS = st.one_of(
    st.sampled_from([0, 1, 2, 3.5, 20, 99.9, 100, -1, "", "1", "0"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.7e308, -3.5e38, 3.4e38, 1e-320, float("nan"), float("inf")]),
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    every = st.permutations([*FEATURES, TARGET]).map(list)  # often all the columns, so some batches pass
    names = draw(st.one_of(st.lists(NAMES, max_size=6), st.tuples(every, st.lists(NAMES, max_size=2)).map(
        lambda t: t[0] + t[1])))
    n = draw(st.integers(min_value=0, max_value=6))
    columns = []
    for _ in names:
        kind = draw(st.sampled_from(["valid", "valid", "mixed", "float", "bool", "int"]))
        if kind == "valid":  # valid for every feature and the target, with now and then a bad value
            columns.append(draw(st.lists(st.sampled_from([0, 1, 0.0, 1.0, "1", " 0 "]) | st.just(np.nan)
                                         | st.just(1.7e308), min_size=n, max_size=n)))
        elif kind == "float":
            columns.append(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
                [0.0, 1.0, 5.0, 1.7e308]), min_size=n, max_size=n)))
        elif kind == "bool":
            columns.append(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        elif kind == "int":
            columns.append(draw(st.lists(st.integers(-5, 25), min_size=n, max_size=n)))
        else:
            columns.append(draw(st.lists(CELLS, min_size=n, max_size=n)))
    frame = pd.DataFrame(dict(enumerate(columns)), index=range(n)) if columns else pd.DataFrame(index=range(n))
    frame.columns = names
    return frame


def _as_file(draw: st.DrawFn, frame: pd.DataFrame) -> tuple[bytes, str]:
    how = draw(st.sampled_from(["csv", "csv-sep", "parquet", "bytes", "par1-bytes"]))
    if how == "bytes":
        return draw(st.binary(max_size=200)), draw(st.sampled_from(["b.csv", "b.parquet", "b"]))
    if how == "par1-bytes":
        return b"PAR1" + draw(st.binary(max_size=100)), "b.parquet"
    if how == "parquet":
        try:
            table = pa.Table.from_arrays([pa.array(frame.iloc[:, i].tolist()) for i in range(frame.shape[1])],
                                         names=[str(c) for c in frame.columns])
            return _parquet_table(table), "b.parquet"
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            pass  # a column pyarrow cannot type: send it as CSV
    sep = draw(st.sampled_from([";", "\t", "|"])) if how == "csv-sep" else ","
    text = frame.to_csv(index=False, sep=sep)
    if draw(st.booleans()):  # cut the text somewhere: ragged or truncated rows
        text = text[:draw(st.integers(0, len(text)))]
    return text.encode("utf-8"), draw(st.sampled_from(["b.csv", "b"]))


@st.composite
def uploads(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    data, name = _as_file(draw, draw(frames()))
    return data, name, draw(st.booleans())


@pytest.fixture(scope="module")
def prop_settings(tmp_path_factory: pytest.TempPathFactory, spec) -> Settings:
    return make_settings(tmp_path_factory.mktemp("prop_home"), spec)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} \
        if folder.exists() else {}


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upload=uploads())
def test_read_batch_returns_a_valid_batch_or_raises_batch_error(prop_settings: Settings,
                                                              upload: tuple[bytes, str, bool]) -> None:
    s = prop_settings
    data, name, drop = upload
    before = _files(s.data_dir)
    try:
        b = batches.read_batch(data, s, name=name, drop_invalid=drop)
    except BatchError as err:
        assert err.problems and all(isinstance(p, str) and p for p in err.problems)
        b = None
    assert _files(s.data_dir) == before  # reading writes nothing under data/
    event("accepted" if b is not None else "refused")
    if b is None:
        return
    assert b.n_rows == len(b.frame) > 0 and set(FEATURES) <= set(b.frame.columns) <= {*FEATURES, TARGET}
    assert b.frame.dtypes.eq("float64").all()
    for rule in s.dataset.rules.rules:
        v = b.frame[rule.name].to_numpy()
        assert np.isfinite(v).all() and rule.in_domain(v).all() and (np.abs(v) <= MODEL_MAX).all()
    if TARGET in b.frame:
        y = b.frame[TARGET].to_numpy()
        assert np.isin(y[~np.isnan(y)], (0.0, 1.0)).all() and b.n_labelled == int((~np.isnan(y)).sum()) > 0
    assert (b.n_dropped == 0) == (not b.dropped) and sum(b.dropped.values()) >= b.n_dropped
    if not drop:
        assert b.n_dropped == 0 and b.raw == data
    assert b.size_bytes == len(data)
