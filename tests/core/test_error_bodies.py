"""The managed model server's error answers are small JSON objects: no stack trace, no copy of
the request, whatever MLflow's scoring server would have said (real server, real requests)."""
from __future__ import annotations

import json

import requests

from core.config import Settings
from core.serving.asgi import ERROR_MESSAGE_CHARS, bounded_error

LIMIT = 2 * ERROR_MESSAGE_CHARS  # bytes: the message, its note and the JSON around it


def _post(s: Settings, body: bytes, content_type: str) -> requests.Response:
    return requests.post(f"{s.serve_url}/invocations", data=body, headers={"Content-Type": content_type},
                         timeout=60)


def test_an_invalid_10_mb_json_body_is_not_echoed(served_settings: Settings) -> None:
    r = _post(served_settings, b'{"dataframe_split": ' + b"x" * 10_000_000, "application/json")
    assert 400 <= r.status_code < 500 and len(r.content) < LIMIT
    assert "Traceback" not in r.text and "x" * 600 not in r.text
    assert set(r.json()) == {"error_code", "message"}


def test_a_huge_text_value_in_a_number_column_is_not_echoed(served_settings: Settings) -> None:
    s = served_settings
    row = {f: 1 for f in s.features} | {"lat": "z" * 5_000_000}
    r = _post(s, json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}).encode(),
              "application/json")
    assert 400 <= r.status_code < 500 and len(r.content) < LIMIT and "z" * 600 not in r.text


def test_a_csv_that_does_not_parse_gets_no_stack_trace(served_settings: Settings) -> None:
    s = served_settings
    body = (",".join(s.features) + "\n" + "\n".join(",".join(["1", "2", "x\"y", "4"]) for _ in range(200_000)))
    r = _post(s, body.encode(), "text/csv")
    assert 400 <= r.status_code < 600 and len(r.content) < LIMIT
    assert "Traceback" not in r.text and "stack_trace" not in r.json()


def test_a_good_request_still_gets_its_answer(served_settings: Settings) -> None:
    s = served_settings
    row = [[34.0443, -118.2698, 5, 2, 0, 12]]
    r = _post(s, json.dumps({"dataframe_split": {"columns": list(s.features), "data": row}}).encode(),
              "application/json")
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1


def test_bounded_error_keeps_the_code_and_cuts_the_message() -> None:
    long = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad: " + "q" * 10_000,
                       "stack_trace": "Traceback (most recent call last): /srv/secret.py"}).encode()
    out = json.loads(bounded_error(long, 400))
    assert out["error_code"] == "INVALID_PARAMETER_VALUE" and len(out["message"]) < ERROR_MESSAGE_CHARS + 100
    assert "characters cut" in out["message"] and "secret" not in json.dumps(out)
    assert json.loads(bounded_error(b"<html>oops</html>", 502)) == {"error_code": "INTERNAL_ERROR",
                                                                     "message": "<html>oops</html>"}


def test_deep_nesting_and_a_huge_integer_are_the_clients_mistakes(served_settings: Settings) -> None:
    s = served_settings
    huge = ('{"dataframe_split": {"columns": %s, "data": [[%s, -118.2, 5, 2, 0, 12]]}}'
            % (json.dumps(list(s.features)), "9" * 5_000)).encode()
    for body in (b"[" * 100_000, huge):
        r = _post(s, body, "application/json")
        assert r.status_code == 400 and len(r.content) < LIMIT, r.text[:300]
        assert r.json()["error_code"] == "BAD_REQUEST" and "9" * 100 not in r.text
