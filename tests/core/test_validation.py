"""Batch validation: every kind of invalid batch is refused with its column and row count."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data.batches import BatchError, from_frame, read_batch
from core.rules import InvalidInputError


def good(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame({
        "lat": np.linspace(33.9, 34.0, n), "lon": np.linspace(-118.3, -118.2, n),
        "minutes_remaining": np.arange(n) % 12, "period": (np.arange(n) % 4) + 1,
        "playoffs": np.arange(n) % 2, "shot_distance": np.arange(n) * 3,
    })


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def refused(source, settings, name: str = "batch.csv") -> list[str]:
    with pytest.raises(BatchError) as err:
        read_batch(source, settings, name=name)
    assert "nothing was stored" in str(err.value)
    for problem in err.value.problems:
        assert problem in str(err.value)
    return err.value.problems


def test_good_parquet_and_csv_are_accepted(settings):
    df = good()
    for data, name in ((parquet_bytes(df), "b.parquet"), (csv_bytes(df), "b.csv")):
        batch = read_batch(data, settings, name=name)
        assert batch.n_rows == 5 and not batch.has_labels
        assert list(batch.frame.columns) == list(settings.features)
        assert batch.frame.dtypes.eq("float64").all()


def test_labels_with_empty_values_mean_unlabelled_rows(settings):
    df = good().assign(shot_made_flag=[1, 0, None, 1, None], action_type="Jump Shot")
    batch = read_batch(parquet_bytes(df), settings, name="raw.parquet")
    assert batch.n_labelled == 3 and "action_type" not in batch.frame


def test_every_problem_is_listed_with_column_and_rows(settings):
    df = good(6).astype("float64").astype({"lat": object})
    df.loc[0, "lat"] = "north"              # non-numeric
    df.loc[1, "lon"] = np.nan               # NaN
    df.loc[2, "shot_distance"] = np.inf     # infinite
    df.loc[3, "shot_distance"] = -2         # negative
    df.loc[[0, 1], "period"] = [0, 9]       # outside 1..7
    df.loc[4, "playoffs"] = 2               # not 0/1
    df.loc[5, "minutes_remaining"] = -1     # negative
    problems = refused(csv_bytes(df), settings)
    text = "\n".join(problems)
    assert "lat: non-numeric values in 1 row" in text
    assert "lon: empty (NaN) values in 1 row" in text
    assert "shot_distance: infinite values in 1 row" in text
    assert "shot_distance: out-of-domain values in 1 row" in text
    assert "period: out-of-domain values in 2 rows" in text
    assert "playoffs: out-of-domain values in 1 row" in text
    assert "minutes_remaining: out-of-domain values in 1 row" in text


def test_missing_columns_empty_batch_and_bad_labels(settings):
    problems = refused(csv_bytes(good().drop(columns=["period", "lat"])), settings)
    assert any(p.startswith("period: column is missing") for p in problems)
    assert any(p.startswith("lat: column is missing") for p in problems)
    assert refused(parquet_bytes(good().iloc[:0]), settings, "e.parquet") == ["batch: there are no rows (0 rows)"]
    problems = refused(csv_bytes(good().assign(shot_made_flag=[0, 1, 2, 1, 0])), settings)
    assert problems[0].startswith("shot_made_flag: values other than 0, 1 or empty in 1 row")


def test_unreadable_empty_and_oversized_files(settings, tmp_path):
    assert "not a readable parquet file" in refused(b"PAR1 garbage", settings, "x.parquet")[0]
    assert "0 bytes" in refused(b"", settings, "x.csv")[0]
    assert "does not exist" in refused(tmp_path / "missing.csv", settings)[0]
    small = settings.replace(max_upload_mb=0.0001)  # 100 bytes
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(good(50)))
    assert "over the" in refused(path, small)[0]


def test_from_frame_validates_in_memory_batches(settings):
    assert from_frame(good(), settings, "log").n_rows == 5
    with pytest.raises(BatchError, match="period"):
        from_frame(good().assign(period=0), settings, "log")


@pytest.mark.parametrize("change", [{"shot_distance": 150}, {"lat": 95.0}, {"period": 8}, {"minutes_remaining": 12}])
def test_a_value_refused_in_one_request_is_refused_in_a_batch(settings, change):
    """One rule table: what `validate_row` refuses, `read_batch` refuses too (and the other way)."""
    row = {**good(1).iloc[0].to_dict(), **change}
    with pytest.raises(InvalidInputError):
        settings.dataset.rules.validate_row(row)
    name = next(iter(change))
    problems = refused(csv_bytes(pd.DataFrame([row])), settings)
    assert problems == [f"{name}: out-of-domain values in 1 row ({name} must be "
                        f"{settings.dataset.rules.by_name[name].describe()})"]
