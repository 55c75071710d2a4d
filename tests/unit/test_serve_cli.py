"""`serve`, `serve status`, `serve stop` and `mlflow-ui` on the command line, the MLflow UI links,
and the server-time header, without a real model server (tests/core/test_served_version.py has one)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from core import catalog, cli, tracking
from core.cli.options import UsageError
from core.cli.run import build_parser
from core.config import Settings
from core.errors import ConfigError
from core.serving import asgi, client, server

KOBE = catalog.find("kobe")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home on Kobe, nothing from the caller's environment."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_MLFLOW_UI_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(server.free_port()))
    return tmp_path / "home"


@pytest.mark.parametrize(("words", "func"), [
    (["serve"], "cmd_serve"),
    (["serve", "--port", "5001", "--workers", "2", "--json"], "cmd_serve"),  # as before
    (["--dataset", "kobe", "serve", "--port", "5002"], "cmd_serve"),
    (["serve", "status", "--json"], "cmd_serve_status"),
    (["serve", "stop"], "cmd_serve_stop"),
    (["serve", "stop", "--all", "--app-only", "--json"], "cmd_serve_stop"),
    (["serve", "stats", "--window", "2h", "--json"], "cmd_serve_stats"),
    (["mlflow-ui", "--port", "5077"], "cmd_mlflow_ui"),
])
def test_serve_and_mlflow_ui_parse(words: list[str], func: str) -> None:
    assert build_parser(KOBE).parse_args(words).func.__name__ == func


@pytest.mark.parametrize("words", [["serve", "restart"], ["serve", "stop", "--port", "1"], ["mlflow-ui", "--port", "0"],
                                   ["mlflow-ui", "--port", "99999"]])
def test_bad_serve_and_mlflow_ui_words_are_usage_errors(words: list[str]) -> None:
    with pytest.raises(UsageError):
        build_parser(KOBE).parse_args(words)


def test_serve_status_and_stop_on_an_empty_home_touch_nothing(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["serve", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["running"] is False and report["pid"] is None and report["champion_version"] is None
    assert report["stale"] is False and report["model_version"] is None
    assert cli.main(["serve", "stop", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": [], "running": False}
    assert not home.exists() or not any(home.rglob("*"))  # looking creates no store, no folder


def test_serve_stats_on_an_empty_home_and_a_bad_window(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["serve", "stats", "--window", "15m", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_requests"] == 0 and report["window_minutes"] == 15.0 and report["per_bucket"] == []
    assert [b["n_requests"] for b in report["latency_by_rows"]] == [0, 0, 0, 0]
    assert report["single_row_p50_ms"] is None and report["p50_ms"] is None
    assert report["capture"]["enabled"] is True and report["capture"]["write_failures"] == 0
    assert not home.exists() or not any(home.rglob("*"))
    assert cli.main(["serve", "stats", "--window", "soon", "--json"]) == 2
    assert "15m, 2h, 7d" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_mlflow_ui_with_a_tracking_server_names_it_and_starts_nothing(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.org:5000/")
    assert cli.main(["mlflow-ui", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"url": "http://mlflow.example.org:5000", "started": False}


def test_mlflow_ui_on_a_taken_port_says_so(home: Path, capsys: pytest.CaptureFixture) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cli.main(["mlflow-ui", "--port", str(port), "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "MlflowUIError" and f"Port {port} on 127.0.0.1 is already taken" in error["message"]


def test_the_ui_port_and_links(tmp_path: Path) -> None:
    env = {"WORKBENCH_HOME": str(tmp_path)}
    s = Settings.from_env({**env, "WORKBENCH_MLFLOW_UI_PORT": "5123"})
    assert s.mlflow_ui_port == 5123 and Settings.from_env(env).mlflow_ui_port == 5000
    with pytest.raises(ConfigError, match="WORKBENCH_MLFLOW_UI_PORT must be a whole number from 1 to 65535"):
        Settings.from_env({**env, "WORKBENCH_MLFLOW_UI_PORT": "0"})
    base = tracking.ui_base_url(s)
    assert base == "http://127.0.0.1:5123"
    assert tracking.ui_run_url(base, "3", "abc") == "http://127.0.0.1:5123/#/experiments/3/runs/abc"
    assert tracking.ui_model_version_url(base, "kobe shot", "7") == "http://127.0.0.1:5123/#/models/kobe%20shot/versions/7"
    team = s.replace(tracking_uri_override="https://user:secret@mlflow.example.org/")
    assert tracking.is_tracking_server(team) and tracking.ui_base_url(team) == "https://user:***@mlflow.example.org"
    command, env_ = tracking.ui_command(s, 5123)
    assert command[command.index("--port") + 1] == "5123" and command[command.index("--workers") + 1] == "1"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == s.tracking_uri
    assert env_["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_the_server_timing_header_is_added_and_read() -> None:
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    # in a thread of its own: a browser test's event loop may be running in this one (one session)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asgi.with_server_timing(app)({"type": "http"}, receive, send)).result()
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"text/plain" and headers[b"server-timing"].startswith(b"app;dur=")
    assert 0 <= client.server_time_ms(headers[b"server-timing"].decode()) < 100
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}
    assert client.server_time_ms(None) is None and client.server_time_ms("cache;desc=hit") is None
    assert client.server_time_ms("db;dur=1.5, app;dur=2") == 3.5
