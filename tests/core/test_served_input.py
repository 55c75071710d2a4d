"""The managed model server scores what was sent, in every input layout MLflow accepts: no silent
cast of 2.5 to 2 or of "5" to 5.0, whole numbers as ints or floats in JSON, CSV and parquet
(real server on the session's champion, real requests)."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import requests

from core.config import Settings

SHOT = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}


def _post(s: Settings, body: bytes, content_type: str) -> requests.Response:
    return requests.post(f"{s.serve_url}/invocations", data=body, headers={"Content-Type": content_type},
                         timeout=60)


def _json(s: Settings, payload: dict) -> requests.Response:
    return _post(s, json.dumps(payload).encode(), "application/json")


def _proba(r: requests.Response) -> np.ndarray:
    assert r.status_code == 200, r.text[:500]
    return np.asarray(r.json()["predictions"], dtype=float)[:, 1]


@pytest.fixture(scope="module")
def shots(served_settings: Settings) -> pd.DataFrame:
    """Three valid shots in the definition's column order, whole-number columns as int64."""
    s = served_settings
    rows = [SHOT, SHOT | {"period": 4, "shot_distance": 3}, SHOT | {"lat": 33.9, "minutes_remaining": 0}]
    return pd.DataFrame(rows)[list(s.features)]


def test_every_layout_of_the_same_rows_gets_the_same_answer(served_settings: Settings, shots: pd.DataFrame) -> None:
    s = served_settings
    want = _proba(_json(s, {"dataframe_split": json.loads(shots.to_json(orient="split", index=False))}))
    assert len(want) == 3 and np.all((want > 0) & (want < 1)) and len(set(np.round(want, 9))) == 3
    layouts = {
        "records": {"dataframe_records": shots.to_dict(orient="records")},
        "inputs as columns": {"inputs": {c: shots[c].tolist() for c in shots.columns}},
        "instances": {"instances": shots.to_dict(orient="records")},
        "floats for whole numbers": {"dataframe_split": {"columns": list(shots.columns),
                                                         "data": shots.astype(float).values.tolist()}},
        "columns in another order": {"dataframe_split": {"columns": list(shots.columns[::-1]),
                                                         "data": shots[shots.columns[::-1]].values.tolist()}},
    }
    for name, payload in layouts.items():
        np.testing.assert_allclose(_proba(_json(s, payload)), want, rtol=0, atol=1e-12, err_msg=name)
    for frame in (shots, shots.astype(float)):  # parquet: int64 and float64 whole numbers both pass
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        np.testing.assert_allclose(_proba(_post(s, buf.getvalue(), "application/vnd.apache.parquet")), want, atol=1e-12)
    np.testing.assert_allclose(_proba(_post(s, shots.to_csv(index=False).encode(), "text/csv")), want, atol=1e-12)


@pytest.mark.parametrize(("change", "words"), [
    ({"period": 2.5}, ["period must be one of", "at row 1"]),
    ({"shot_distance": 12.25}, ["shot_distance", "at row 1"]),
    ({"lat": "34.05"}, ["lat", "text values", "at row 1"]),
    ({"period": "2"}, ["period", "text values", "at row 1"]),
], ids=["fraction-in-long", "fraction-in-distance", "numeric-text", "numeric-text-whole"])
def test_a_value_is_never_cast_into_another(served_settings: Settings, shots: pd.DataFrame, change: dict,
                                            words: list[str]) -> None:
    """MLflow's own casts would score 2.5 as 2 and "34.05" as 34.05: refused, naming column and row."""
    s = served_settings
    rows = shots.astype(object).to_dict(orient="records")
    rows[1] = rows[1] | change
    for payload in ({"dataframe_split": {"columns": list(shots.columns), "data": [list(r.values()) for r in rows]}},
                    {"dataframe_records": rows}):
        r = _json(s, payload)
        assert r.status_code == 400, r.text[:300]
        message = r.json()["message"]
        for word in words:
            assert word in message, message
    if any(isinstance(v, float) for v in change.values()):  # CSV has no text/number difference
        r = _post(s, pd.DataFrame(rows).to_csv(index=False).encode(), "text/csv")
        assert r.status_code == 400 and words[-1] in r.json()["message"], r.text[:300]
