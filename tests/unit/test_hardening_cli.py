"""The command line under hostile input (issue 17): every value is checked on entry, a refusal
exits 2 with one line naming the option, the value and what is allowed, with --json the error is
one JSON object on stdout too, and a refusal leaves the home untouched. `predict` reads its row
from --input (text or @FILE); the older `predict --json '{...}'` still works.

No real model server and no training here: a stub HTTP server stands for `mlflow models serve`,
and the property-based test runs on an empty home where every command fails fast."""
from __future__ import annotations

from core.modeling import promotion

from core.modeling.model_version import ModelVersion

import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import catalog, cli
from core.config import Settings
from core.rules import InvalidInputError
from core.errors import ConfigError, TrackingError
from core.serving import client, predict, server
from tests.unit.conftest import Lab, make_settings, register_lr, serve_stub

ROOT = Path(__file__).resolve().parents[2]
KOBE = catalog.find("kobe")
ROW = json.dumps(KOBE.example_row())
ANSWER = {"proba_made", "proba", "label", "class", "class_name", "model_version", "latency_ms"}  # the contract of `predict` (fields are only added)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home on Kobe: no raw files to find (an empty data folder), nothing served on the
    default port, nothing from the caller's environment."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "KOBE_DATA_DIR", "WORKBENCH_SERVE_WORKERS",
                 "WORKBENCH_APP_PORT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "no-raw-files").mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "no-raw-files"))
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(server.free_port()))
    return tmp_path / "home"


def _state(home: Path) -> dict[str, tuple[int, int]]:
    """Every file under the home's data/ and mlruns/ with its size and mtime."""
    found = {}
    for top in ("data", "mlruns"):
        for path in (home / top).rglob("*"):
            stat = path.stat()
            found[str(path.relative_to(home))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _json_error(out: str) -> dict:
    """The one JSON error object on stdout."""
    assert out.count("\n") == 1 and out.endswith("\n"), out
    body = json.loads(out)
    assert set(body) == {"error"} and set(body["error"]) == {"kind", "message"}
    return body["error"]


# --------------------------------------------------------------------------- the attacks
@pytest.mark.parametrize("argv, option, allowed", [
    (["serve", "--port", "70000"], "--port", "from 1 to 65535"),
    (["serve", "--port", "0"], "--port", "from 1 to 65535"),
    (["serve", "--workers", "17"], "--workers", "from 1 to 16"),
    (["drift", "--inference-log", "99999999999999999999"], "--inference-log", "from 1 to 1,000,000"),
    (["drift", "--inference-log", "-5"], "--inference-log", "from 1 to 1,000,000"),
    (["apply", "--threshold", "nan"], "--threshold", "strictly between 0 and 1"),
    (["apply", "--threshold", "1"], "--threshold", "strictly between 0 and 1"),
    (["apply", "--via", "ftp://127.0.0.1:5001"], "--via", "http:// or https://"),
    (["predict", "--input", ROW, "--threshold", "2"], "--threshold", "strictly between 0 and 1"),
    (["predict", "--input", ROW, "--threshold", "inf"], "--threshold", "strictly between 0 and 1"),
    (["predict", "--input", ROW, "--url", "not a url"], "--url", "http:// or https://"),
    (["predict", "--input", ROW, "--url", "file:///etc/passwd"], "--url", "http:// or https://"),
    (["predict", "--input", ROW, "--url", "http://127.0.0.1:99999"], "--url", "http:// or https://"),
    (["train", "--n-iter", "0"], "--n-iter", "from 1 to 200"),
    (["train", "--folds", "21"], "--folds", "from 2 to 20"),
    (["prepare", "--test-size", "1"], "--test-size", "strictly between 0 and 1"),
    (["prepare", "--test-size", "-inf"], "--test-size", "expected one argument"),  # argparse: looks like an option
    (["prepare", "--seed", "-1"], "--seed", "from 0 to 4,294,967,295"),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_refused_value_exits_2_with_one_line_naming_it(home: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                                         option: str, allowed: str, as_json: bool) -> None:
    assert cli.main(argv + (["--json"] if as_json else [])) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert f"argument {option}: " in err and allowed in err
    value = argv[argv.index(option) + 1]
    assert allowed == "expected one argument" or repr(value) in err  # the value, quoted
    if as_json:
        assert _json_error(out) == {"kind": "usage", "message": err[len("error: "):-1]}
    else:
        assert out == ""
    assert _state(home) == {}


@pytest.mark.parametrize("text, problem", [
    ('{"lat": 1' + "0" * 400 + "}", "a whole number of 401 digits"),
    ('{"lat": 1' + "0" * 5000 + "}", "a whole number of 5,001 digits"),
    ("[" * 50_000, "nests arrays or objects too deeply"),
    ('{"a":' * 15_000, "nests arrays or objects too deeply"),
    ('{"lat": NaN}', "NaN is not a JSON number"),
    ('{"lat": -Infinity}', "-Infinity is not a JSON number"),
    ("[1, 2]", "must be one JSON object, not a JSON array"),
    ('"a shot"', "must be one JSON object, not a JSON string"),
    ("3", "must be one JSON object, not a JSON number"),
    ("null", "must be one JSON object, not a JSON null"),
    ("{oops", "is not valid JSON"),
    ('{"lat": 1, "lat": 2}', "the column 'lat' is given twice"),
    ('{"lat": [33.9]}', "lat must be a number, not a JSON array"),
    ("@", "'@' must be followed by a file name"),
    ("@/nonexistent/row.json", "which does not exist"),
    (" " * 100_001, "characters long"),
])
def test_a_bad_row_exits_2_with_a_clear_message(home: Path, capsys: pytest.CaptureFixture, text: str,
                                                problem: str) -> None:
    assert cli.main(["predict", "--input", text, "--json"]) == 2
    out, err = capsys.readouterr()
    error = _json_error(out)
    assert error["kind"] == "InvalidInputError" and error["message"].startswith("--input")
    assert problem in error["message"] and err == f"error: {error['message']}\n"
    assert json.dumps(KOBE.example_row()) in error["message"] or text.startswith("@")  # what to give instead
    assert _state(home) == {}


def test_out_of_domain_values_are_the_rule_tables_refusal(home: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [json.dumps({**KOBE.example_row(), **change}) for change in
            ({"period": True}, {"period": "3"}, {"period": 2.5}, {"shot_distance": 101})]
    for text in [*rows, ROW.replace('"shot_distance": 11', '"shot_distance": 1e999')]:  # a float to infinity
        assert cli.main(["predict", "--input", text, "--json"]) == 2
        error = _json_error(capsys.readouterr().out)
        assert error["kind"] == "InvalidInputError" and error["message"].startswith("Invalid shot: ")


def test_a_row_file_that_is_a_folder_or_not_utf8(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"lat": "é"}'.encode("latin-1"))
    for value, problem in ((f"@{tmp_path}", "cannot be read (Is a directory)"), (f"@{latin}", "is not UTF-8")):
        assert cli.main(["predict", "--input", value, "--json"]) == 2
        assert problem in _json_error(capsys.readouterr().out)["message"]


@pytest.mark.parametrize("argv, message", [
    (["predict", "--json", "--bogus"], "unrecognized arguments: --bogus"),
    (["predict", "--json", "--input"], "argument --input: expected one argument"),
    (["nosuch", "--json"], "invalid choice: 'nosuch'"),
    (["apply", "--via", "http://127.0.0.1:1", "--in-process", "--json"], "not allowed with argument"),
    (["drift", "--batch", "a.csv", "--inference-log", "5", "--json"], "not allowed with argument"),
    (["drift", "--inference-log", "5", "--drop-invalid", "--json"], "--drop-invalid applies to --batch FILE only"),
    (["predict", "--json"], "give the shot with --input"),
    (["predict", "--input", ROW, "--json", ROW], "give the row once"),
])
def test_usage_errors_are_one_json_object_too(home: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                              message: str) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    error = _json_error(out)
    assert error["kind"] == "usage" and message in error["message"]
    assert err.endswith(f"error: {error['message']}\n") and "usage:" not in err
    assert _state(home) == {}


def test_help_still_exits_0(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--input JSON|@FILE" in text and "Deprecated: `--json '{...}'`" in text
    assert "--legacy-json-row" not in text  # the compatibility path's hidden option


# --------------------------------------------------------------------------- the environment
@pytest.mark.parametrize("name", ["WORKBENCH_SERVE_PORT", "WORKBENCH_APP_PORT"])
@pytest.mark.parametrize("raw", ["70000", "0", "-1", "http", "²", "50.5", "1" * 40])
def test_a_bad_port_in_the_environment_is_a_config_error(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must be a whole number from 1 to 65535, not {raw!r}"):
        Settings.from_env({name: raw})
    good = Settings.from_env({name: " 8502 "})
    assert (good.serve_port if name == "WORKBENCH_SERVE_PORT" else good.app_port) == 8502


def test_the_cli_reports_a_config_error_in_json(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", "99999")
    assert cli.main(["serve", "--json"]) == 2
    error = _json_error(capsys.readouterr().out)
    assert error["kind"] == "ConfigError" and "WORKBENCH_SERVE_PORT must be" in error["message"]


def test_a_unicode_digit_worker_count_is_refused_not_a_traceback() -> None:
    with pytest.raises(ConfigError, match="WORKBENCH_SERVE_WORKERS must be a whole number from 1 to 16"):
        Settings.from_env({"WORKBENCH_SERVE_WORKERS": "²"})


# --------------------------------------------------------------------------- serve fails fast
def test_serve_on_a_taken_port_fails_at_once(home: Path, capsys: pytest.CaptureFixture) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        t0 = time.monotonic()
        assert cli.main(["serve", "--port", str(port), "--json"]) == 2
        assert time.monotonic() - t0 < 10
    error = _json_error(capsys.readouterr().out)
    assert error["kind"] == "PortInUseError" and f"Port {port} on 127.0.0.1 is already taken" in error["message"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored
    assert _state(home) == {}


def test_serve_without_a_store_says_no_champion_and_creates_none(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["serve", "--port", str(server.free_port()), "--json"]) == 2
    assert _json_error(capsys.readouterr().out)["kind"] == "TrackingError"
    assert not (home / "mlruns").exists() and _state(home) == {}


def test_server_checks_ports_before_anything(tiny: Settings) -> None:
    for bad in (0, 70000, -1, True, "5001", 5001.0):
        with pytest.raises(client.ServerError, match="port must be a whole number from 1 to 65535"):
            server.start(tiny, port=bad)  # type: ignore[arg-type]
    with pytest.raises(TrackingError, match="No champion yet"):
        server.start(tiny, port=server.free_port())
    assert not tiny.embedded_db_path.exists() and not tiny.runtime_dir.exists()
    assert server.port_in_use("127.0.0.1", 70000)  # a port that cannot be bound is not free


def test_serve_starts_through_python_m_core(home: Path) -> None:
    """`python -m core` still reaches `core.cli.main` (a package now)."""
    out = subprocess.run([sys.executable, "-m", "core", "serve", "--port", "0", "--json"], cwd=ROOT,
                         env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert _json_error(out.stdout)["kind"] == "usage" and "--port" in out.stderr


# --------------------------------------------------------------------------- core checks
@pytest.mark.parametrize("url", ["http://127.0.0.1:5001", "https://models.example.org/team-a/", "http://[::1]:5001",
                                 "HTTP://LOCALHOST", "http://model_server:8080"])
def test_good_addresses(url: str) -> None:
    assert client.url_problem(url) is None and client.check_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url, problem", [
    ("", "empty"), ("127.0.0.1:5001", "scheme"), ("file:///etc/passwd", "scheme is 'file'"),
    ("http://", "no host"), ("http://a b", "spaces"), ("http://h:0", "port 0"), ("http://h:x", "cannot be read"),
    ("http://[::1", "cannot be read"), ("http://user:pw@h", "credentials"), ("http://h/?q=1", "query"),
    ("http://-h", "not a host name"), ("http://h\x00", "control"), ("http://h/" + "a" * 3000, "characters long"),
])
def test_bad_addresses(url: str, problem: str) -> None:
    assert problem in (client.url_problem(url) or "")
    with pytest.raises(client.InvalidURLError, match="must be an http:// or https:// address with a host"):
        client.Client(url)


class _FakeClient:
    url = "http://stub:1"

    def predict_rows(self, rows: list) -> None:
        raise AssertionError("no request may be sent")


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), 0, 1, 1.5, -0.1, True, "0.5"])
def test_predict_one_refuses_a_bad_threshold_before_any_request(tiny: Settings, threshold: object) -> None:
    row = tiny.dataset.example_row()
    with pytest.raises(InvalidInputError, match="threshold must be a number strictly between 0 and 1"):
        predict.predict_one(tiny, row, threshold=threshold, client=_FakeClient(), log_source="unit", model=ModelVersion(name=tiny.model_name, version='1', run_id=None))  # type: ignore
    assert not tiny.inference_log_path.exists()


# --------------------------------------------------------------------------- predict --input, and the old --json
class _Stub(BaseHTTPRequestHandler):
    """A model server answering P = 0.7 to every row."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, b"{}")

    def do_POST(self) -> None:
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["dataframe_split"]["data"]
        self._send(200, json.dumps({"predictions": [[0.3, 0.7]] * len(rows)}).encode())


@pytest.fixture
def stub_url() -> Iterator[str]:
    with serve_stub(_Stub) as url:
        yield url


def test_predict_input_prints_the_same_answer(home: Path, stub_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["predict", "--input", ROW, "--url", stub_url, "--json"]) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert out.count("\n") == 1 and ANSWER <= set(answer) and "deprecated" not in err
    assert answer["proba_made"] == answer["proba"] == 0.7 and answer["label"] == 1
    row_file = tmp_path / "shot.json"
    row_file.write_text(ROW, encoding="utf-8")
    assert cli.main(["predict", "--input", f"@{row_file}", "--url", stub_url, "--threshold", "0.75"]) == 0
    indented = capsys.readouterr().out
    assert indented.startswith("{\n") and json.loads(indented)["label"] == 0  # 0.7 < 0.75


def test_predict_says_the_class_as_the_data_holds_it_when_the_positive_class_is_0(
        home: Path, stub_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 28 item 9: `label` is the model's 1 / 0 (1 = the positive class), so with positive
    class 0 a "label": 1 is the class 0 of the data; `class` and `class_name` say so."""
    import numpy as np
    import pandas as pd

    table = tmp_path / "flags.csv"
    pd.DataFrame({"usage": np.random.default_rng(3).gamma(2.0, 10.0, 60).round(1), "churn": [0, 1, 1] * 20}).to_csv(table, index=False)
    assert cli.main(["dataset", "add", str(table), "--name", "flags", "--target", "churn", "--positive", "0",
                     "--json"]) == 0
    capsys.readouterr()
    row = json.dumps({"usage": 10.0})
    assert cli.main(["predict", "--dataset", "flags", "--input", row, "--url", stub_url, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["label"] == 1 and answer["class"] == 0 and answer["class_name"] == "0"  # P = 0.7
    assert cli.main(["predict", "--dataset", "flags", "--input", row, "--url", stub_url, "--threshold", "0.75",
                     "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["label"] == 0 and answer["class"] == 1 and answer["class_name"] == "1"
    assert cli.main(["predict", "--input", ROW, "--url", stub_url, "--json"]) == 0  # Kobe: made is 1
    answer = json.loads(capsys.readouterr().out)
    assert (answer["label"], answer["class"], answer["class_name"]) == (1, 1, "made")


@pytest.mark.parametrize("form", [["--json", ROW], [f"--json={ROW}"]])
def test_the_old_predict_json_row_still_works(home: Path, stub_url: str, capsys: pytest.CaptureFixture,
                                              form: list[str]) -> None:
    assert cli.main(["predict", *form, "--url", stub_url]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and ANSWER <= set(json.loads(out))  # one JSON object, as before
    assert "note: `predict --json '{...}'` is deprecated" in err


def test_the_serve_page_command_is_the_cli_request() -> None:
    row = {**KOBE.example_row(), "lat": 33.5}
    text = predict.cli_example({k: float(v) for k, v in row.items()}, KOBE.features)
    assert text.startswith("python -m core predict --input '") and text.endswith("' --json")
    assert json.loads(text.split("--input '", 1)[1].rsplit("' --json", 1)[0]) == row
    assert " --url http://h:1 --json" in predict.cli_example(row, KOBE.features, "http://h:1/")
    named = predict.cli_example(row, KOBE.features, dataset="kobe", threshold=0.25, allow_unseen=True)
    assert named.startswith("python -m core predict --dataset kobe --input '")
    assert named.endswith("' --threshold 0.25 --allow-unseen --json")


# --------------------------------------------------------------------------- drift --drop-invalid
def test_drift_drop_invalid_checks_the_valid_rows(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    from core.data import preparation
    from core.modeling import registry

    s = make_settings(tmp_path / "drift", lab.settings.dataset, lab.settings.source_dir)
    preparation.prepare(s)
    promotion.promote(s, register_lr(s)[0])
    batch = preparation.load_split(s, "test").head(60).reset_index(drop=True)
    batch.loc[:4, "support_calls"] = 99  # out of the domain 0..20
    path = tmp_path / "batch.csv"
    batch.to_csv(path, index=False)
    monkeypatch.setattr(catalog, "search_dirs", lambda extra=(): (s.dataset.folder.parent, catalog.BUILTIN_DIR))
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    base = ["--dataset", s.dataset.name, "drift", "--batch", str(path), "--no-domain", "--json"]
    assert cli.main(base) == 2
    assert _json_error(capsys.readouterr().out)["kind"] == "BatchError"
    assert cli.main([*base, "--drop-invalid"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "error" not in json.loads(out)
    assert "--drop-invalid left out 5 row(s)" in err and "support_calls" in err


# --------------------------------------------------------------------------- property: never a traceback
NUMBERS = st.one_of(
    st.integers(min_value=-10**25, max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-0", "0x10", "1e309", "", " ", "١٢", "²", "5_001", "+5", "0.5", "1", "0",
                     "3", "65535", "65536", "1000000", "1000001", "4294967296", "0.9999999999", "1e-300"]),
    st.text(max_size=12),
)
URLS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
              st.sampled_from(["http://", "https://", "ftp://", "file://", "javascript:", "", "HTTP://", "http:/"]),
              st.sampled_from(["127.0.0.1", "localhost", "[::1]", "", " ", "a b", "[::1", "user@127.0.0.1", "-x"]),
              st.sampled_from(["", ":1", ":0", ":65536", ":99999", ":x", ":"]),
              st.sampled_from(["", "/", "/p", "?q", "#f", "/\x00"])),
)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                   st.integers(min_value=10**300, max_value=10**400))
ROWS = st.one_of(
    st.text(max_size=60),
    st.dictionaries(st.sampled_from([*KOBE.features, "other"]), VALUES, max_size=7).map(json.dumps),
    st.builds(lambda f, v: json.dumps({**KOBE.example_row(), f: v}), st.sampled_from(KOBE.features), VALUES),
    st.integers(min_value=1, max_value=30_000).map(lambda n: "[" * n),
    st.sampled_from(["@", "@/nonexistent.json", "@.", '{"lat": NaN}', '{"lat": Infinity}', "[]", "null", ROW]),
    st.text(max_size=20).map(lambda t: "@" + t),
)
PATHS = st.one_of(st.text(max_size=30), st.sampled_from(["", "\x00", "x" * 300, "/", ".", "missing.csv"]))
OPTIONS = {  # each command's options with their values; none of them can start a server or a training
    "prepare": {"--test-size": NUMBERS, "--seed": NUMBERS},
    "serve": {"--port": NUMBERS, "--workers": NUMBERS},
    "predict": {"--input": ROWS, "--url": URLS, "--threshold": NUMBERS},
    "drift": {"--inference-log": NUMBERS},
    "apply": {"--threshold": NUMBERS, "--via": URLS, "--batch": PATHS},
    "train": {"--n-iter": NUMBERS, "--folds": NUMBERS},
    "retrain": {"--batch": PATHS},
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    names = draw(st.lists(st.sampled_from(sorted(OPTIONS[command])), min_size=1, unique=True))
    argv = [command]
    for name in names:
        value = draw(OPTIONS[command][name])
        argv += [f"{name}={value}"] if draw(st.booleans()) else [name, value]
    if command == "predict" and "--input" not in names:
        argv += ["--input", ROW]
    if draw(st.booleans()):
        argv.append("--json")
    return argv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_any_option_value_exits_0_or_2_and_a_refusal_changes_nothing(home: Path, capsys: pytest.CaptureFixture,
                                                                     argv: list[str]) -> None:
    capsys.readouterr()
    before = _state(home)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, err)
    assert "Traceback" not in err
    if "--json" in argv:
        assert out.count("\n") == 1 and isinstance(json.loads(out), dict), (argv, out)
    if code == 2:
        assert "error: " in err
        if "--json" in argv:
            assert _json_error(out)["message"] in err
        else:
            assert out == ""
        assert _state(home) == before, argv


def test_the_property_test_reaches_past_the_parser(home: Path, capsys: pytest.CaptureFixture) -> None:
    """Valid values get through to the work, which fails fast on the empty home (not a usage error)."""
    kinds = {}
    for argv in (["prepare", "--test-size", "0.3"], ["serve", "--port", str(server.free_port()), "--workers", "1"],
                 ["predict", "--input", ROW, "--threshold", "0.4"], ["drift", "--inference-log", "10"],
                 ["apply", "--threshold", "0.4"], ["train", "--n-iter", "1", "--folds", "2"]):
        assert cli.main([*argv, "--json"]) == 2
        kinds[argv[0]] = _json_error(capsys.readouterr().out)["kind"]
    assert kinds == {"prepare": "DataUnavailableError", "serve": "TrackingError", "predict": "ServerNotRunningError",
                     "drift": "BatchError", "apply": "NotPreparedError", "train": "NotPreparedError"}
    assert _state(home) == {}

