"""The pages' downloads and readable axes (issue 18): scored rows as CSV and parquet bytes, the
history charts' time axis, and the Compare page's cache stamp and alias lookup."""
from __future__ import annotations

import io

import pandas as pd
import plotly.graph_objects as go
import pytest

from core.charts.drift import time_axis
from core.config import Settings
from core.errors import NotPreparedError
from core.modeling import comparison
from core.scoring import exports


def test_scored_rows_as_csv_and_parquet_read_back_the_same(tiny: Settings) -> None:
    scored = pd.DataFrame({"usage_hours": [1.5, 2.0, None], "churn": [1.0, 0.0, None],
                           "proba_churned": [0.9, 0.1, 0.4], "model_version": ["3", "3", "3"]})
    tiny.predictions_path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(tiny.predictions_path, index=False)
    back = pd.read_parquet(io.BytesIO(exports.scored_rows(tiny, "parquet")))
    pd.testing.assert_frame_equal(back, scored)
    csv = pd.read_csv(io.BytesIO(exports.scored_rows(tiny, "csv")), dtype={"model_version": str})
    pd.testing.assert_frame_equal(csv, scored)
    assert exports.file_name(tiny, "csv") == "prod_predictions.csv"
    with pytest.raises(ValueError, match="format must be one of"):
        exports.scored_rows(tiny, "xlsx")  # type: ignore[arg-type]


def test_scored_rows_before_any_scoring_say_what_to_do(tiny: Settings) -> None:
    with pytest.raises(NotPreparedError, match="No scored batch yet"):
        exports.scored_rows(tiny, "csv")


def test_one_check_gets_an_hour_of_axis_not_sub_millisecond_ticks() -> None:
    one = pd.Series([pd.Timestamp("2026-12-02 06:57:12", tz="UTC")])
    fig = time_axis(go.Figure(go.Scatter(x=one, y=[1.0])), one)
    low, high = (pd.Timestamp(t) for t in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(hours=1) and low.tzinfo is None  # plotly draws zone-less times
    assert fig.layout.xaxis.tickformat.startswith("%H:%M")
    week = pd.Series(pd.to_datetime(["2026-11-01", "2026-11-08"], utc=True))
    low, high = (pd.Timestamp(t) for t in time_axis(go.Figure(), week).layout.xaxis.range)
    assert low < week.min().tz_localize(None) and high - low < pd.Timedelta(days=8)  # 5 % either side


def test_the_store_stamp_changes_with_every_write(tiny: Settings) -> None:
    assert comparison.store_stamp(tiny) == "-/-"  # no store yet
    tiny.embedded_db_path.parent.mkdir(parents=True, exist_ok=True)
    tiny.embedded_db_path.write_bytes(b"one")
    first = comparison.store_stamp(tiny)
    tiny.embedded_db_path.write_bytes(b"one more")
    assert comparison.store_stamp(tiny) not in (first, None)
    assert comparison.store_stamp(tiny.replace(tracking_uri_override="http://127.0.0.1:5000")) is None


def test_the_version_holding_an_alias() -> None:
    versions = pd.DataFrame({"version": ["3", "2", "1"], "aliases": ["challenger", "champion, previous-x", ""]})
    assert comparison.version_with_alias(versions, "champion") == "2"
    assert comparison.version_with_alias(versions, "previous") is None  # a whole alias, not a prefix


# --------------------------------------------------------------------------- formula injection (issue 28, item 3)
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tx", "\t"]


def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote() -> None:
    frame = pd.DataFrame({"=cmd()": ["safe", *FORMULAS, "a=b", None],
                          "n": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, float("nan")],
                          "k": pd.Categorical(["-x", "y", "-x", "y", "y", "y", "y", "y", "y"])})
    before = frame.copy()
    back = pd.read_csv(io.BytesIO(exports.csv_bytes(frame)))
    assert list(back.columns) == ["'=cmd()", "n", "k"]  # the header too
    assert back["'=cmd()"].tolist()[:-1] == ["safe", *("'" + f for f in FORMULAS), "a=b"]
    assert back["'=cmd()"].isna().tolist()[-1]  # a missing value stays missing
    assert back["n"].tolist()[:8] == [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # numbers stay numbers
    assert back["k"].tolist()[:2] == ["'-x", "y"]
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is not changed
    assert exports.formula_safe("\r=1") == "'\r=1" and exports.formula_safe(-1) == -1


def test_the_scored_rows_and_the_candidates_csv_are_neutralised(tiny: Settings) -> None:
    scored = pd.DataFrame({"plan": ["=1+1", "basic"], "proba_churned": [-0.0, 0.5]})
    tiny.predictions_path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(tiny.predictions_path, index=False)
    assert pd.read_csv(io.BytesIO(exports.scored_rows(tiny, "csv")))["plan"].tolist() == ["'=1+1", "basic"]
    runs = pd.DataFrame({"model_id": ["m1"], "model": ["lr"], "parameters": ["@evil"], "test F1": [0.5]})
    back = pd.read_csv(io.BytesIO(exports.csv_bytes(comparison.runs_export(runs))))
    assert back.to_dict("records") == [{"model": "lr", "parameters": "'@evil", "test F1": 0.5}]
