"""The model server as a managed process, its client and single-shot inference, on a real server."""
from __future__ import annotations

from core.modeling import registry

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core.config import Settings
from core.rules import InvalidInputError
from core.errors import TrackingError
from core.serving import client as serving_client
from core.serving import inference_log, predict, server
from tests.conftest import ROOT

SHOT = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}


def _elsewhere(settings: Settings, home: Path, **changes: object) -> Settings:
    """Same registry, a separate home (own runtime folder): a second server does not clash."""
    return settings.replace(home=home, tracking_uri_override=settings.tracking_uri, **changes)


def test_status_reports_the_served_version(served_settings: Settings) -> None:
    st = server.status(served_settings)
    assert st.running and st.model_version == "1" and st.model_uri == "models:/kobe-shot-model/1"
    assert st.url == f"http://127.0.0.1:{served_settings.serve_port}" and st.uptime_s >= 0
    assert json.loads(server.state_path(served_settings).read_text())["model_version"] == "1"
    assert 0 < st.startup_s < served_settings.serve_start_timeout_s and st.started_by == server.BY_APP
    assert (server.model_dir(served_settings) / "MLmodel").exists()  # the files of v1, in place
    checked = server.status(served_settings, with_champion=True)
    assert checked.champion_version == "1" and not checked.stale and checked.in_step_text == "serving v1, champion v1"
    # starting again on the same port returns the running server
    assert server.start(served_settings).pid == st.pid


def test_predict_one_returns_probability_and_logs_it(served_settings: Settings) -> None:
    before = inference_log.count(served_settings)
    ranges = {"shot_distance": (0.0, 20.0)}
    pred = predict.predict_one(served_settings, {**SHOT, "shot_distance": 45}, ranges=ranges, log_source="test", model=registry.champion(served_settings))
    assert 0.0 < pred.proba < 1.0 and pred.label == int(pred.proba >= 0.5)
    assert pred.model_version == "1" and pred.latency_ms > 0
    # the latency in two parts: the server's own time (its Server-Timing header) and the rest
    assert 0 < pred.server_ms < pred.latency_ms and pred.network_ms == pytest.approx(pred.latency_ms - pred.server_ms,
                                                                                       abs=0.01)
    assert pred.champion_version == "1" and pred.stale is False
    assert len(pred.warnings) == 1 and "shot_distance = 45" in pred.warnings[0]
    assert inference_log.count(served_settings) == before + 1
    last = inference_log.read_last(served_settings, 1)
    assert last.loc[0, served_settings.dataset.proba_column] == pytest.approx(pred.proba)
    assert last.loc[0, "model_version"] == "1" and last.loc[0, "shot_distance"] == 45.0
    assert str(last["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_server_and_in_process_agree(served_settings: Settings) -> None:
    from core.data import preparation
    from core.modeling import model_io, registry

    test = preparation.load_split(served_settings, "test").head(200)
    with serving_client.Client(server.status(served_settings).url, features=served_settings.features) as client:
        http = client.predict_proba(test)
    _, model = registry.load_model(served_settings)
    assert http == pytest.approx(model_io.predict_proba(model, test, served_settings.features), abs=1e-9)


def test_proxied_client_path_gives_the_same_answers(served_settings: Settings, monkeypatch) -> None:
    """With a proxy set for the server's address the client posts through requests instead."""
    url = server.status(served_settings).url
    rows = [[SHOT[f] for f in served_settings.features], [33.9, -118.3, 2, 4, 1, 25]]
    with serving_client.Client(url, features=served_settings.features) as fast:
        assert fast._direct
        expected = fast.predict_rows(rows)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("NO_PROXY", "")
    with serving_client.Client(url, timeout_s=2, features=served_settings.features) as proxied:
        assert not proxied._direct
        with pytest.raises(serving_client.ServerNotRunningError):  # the proxy is down, and we say so
            proxied.predict_rows(rows)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with serving_client.Client(url, features=served_settings.features) as bypassed:
        assert bypassed._direct and bypassed.predict_rows(rows) == pytest.approx(expected, abs=0)


def test_client_survives_the_server_closing_idle_connections(served_settings: Settings) -> None:
    """A kept-alive connection the server closed is replaced, in each thread, without an error."""
    import threading

    url = server.status(served_settings).url
    row = [[SHOT[f] for f in served_settings.features]]
    with serving_client.Client(url, features=served_settings.features) as client:
        first = client.predict_rows(row)
        client._local.conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had dropped it
        assert client.predict_rows(row) == pytest.approx(first, abs=0)
        answers: list = []
        threads = [threading.Thread(target=lambda: answers.append(client.predict_rows(row))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 4 and all(a == pytest.approx(first, abs=0) for a in answers)
        del threads
        import gc

        gc.collect()
        assert len(client._conns) == 1  # the ended threads' connections went with them
    assert len(client._conns) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {k: v for k, v in SHOT.items() if k != "lat"},
        {**SHOT, "period": "two"},
        {**SHOT, "lat": None},
        {**SHOT, "lon": math.nan},
        {**SHOT, "period": 1.5},
        {**SHOT, "playoffs": 4},
    ],
    ids=["missing-column", "wrong-type", "null", "nan", "fractional-period", "out-of-domain"],
)
def test_bad_input_is_caught_before_the_server(served_settings: Settings, bad: dict) -> None:
    before = inference_log.count(served_settings)
    with pytest.raises(InvalidInputError):
        predict.predict_one(served_settings, bad, model=registry.champion(served_settings))
    assert inference_log.count(served_settings) == before


def test_server_error_is_a_readable_message_without_stack_trace(served_settings: Settings) -> None:
    with serving_client.Client(server.status(served_settings).url, features=served_settings.features) as client:
        with pytest.raises(serving_client.PredictionError) as err:
            client.post_json('{"dataframe_split": {"columns": ["lat"], "data": [[null]]}}')
        assert "HTTP 400" in str(err.value) and "Traceback" not in str(err.value)
        assert client.ping()  # the server keeps running
        assert 0 < client.predict_rows([[SHOT[f] for f in served_settings.features]])[0] < 1


def test_cli_predict_prints_one_json_object(served_settings: Settings) -> None:
    env = {**os.environ, "WORKBENCH_HOME": str(served_settings.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    url = server.status(served_settings).url
    out = subprocess.run([sys.executable, "-m", "core", "predict", "--json", json.dumps(SHOT), "--url", url],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"proba_made", "proba", "label", "model_version", "latency_ms"} <= set(result)  # the contract
    assert result["proba_made"] == result["proba"]
    assert result["model_version"] == "1" and result["stale"] is False and result["champion_version"] == "1"
    assert 0 < result["server_ms"] < result["latency_ms"] and result["network_ms"] >= 0
    assert "warning" not in out.stderr
    bad = subprocess.run([sys.executable, "-m", "core", "predict", "--json", json.dumps({**SHOT, "period": 1.5}),
                          "--url", url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "period must be one of 1, 2" in bad.stderr and "Traceback" not in bad.stderr


def test_killed_server_is_reported_down_then_restarts(served_settings: Settings) -> None:
    st = server.status(served_settings)
    group = [psutil.Process(st.pid), *psutil.Process(st.pid).children(recursive=True)]
    os.killpg(st.pid, signal.SIGKILL)
    psutil.wait_procs(group, timeout=10)
    with pytest.raises(serving_client.ServerNotRunningError) as err:
        predict.predict_one(served_settings, SHOT, url=st.url, log_source=None, model=registry.champion(served_settings))
    assert "not running" in str(err.value)
    down = server.status(served_settings)
    assert not down.running and down.stale_pid_removed
    again = server.start(served_settings)
    assert again.running and again.pid != st.pid and again.model_version == "1"
    assert predict.predict_one(served_settings, SHOT, log_source=None, model=registry.champion(served_settings)).model_version == "1"


def test_stop_leaves_no_process_behind(served_settings: Settings, tmp_path: Path) -> None:
    # a second server in another home on a free port; stopped right away after readiness
    s = _elsewhere(served_settings, tmp_path, serve_port=server.free_port())
    st = server.start(s, workers=2)
    try:
        assert st.workers == 2
        master = psutil.Process(st.pid)
        deadline = time.monotonic() + 10  # gunicorn forks its workers a fraction of a second apart
        while len(master.children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = [master, *master.children(recursive=True)]
        assert len(members) == 3  # gunicorn's master and its two uvicorn workers
    finally:
        stopped = server.stop(s)  # also when an assertion fails: no server left behind
    assert not stopped.running and not server.state_path(s).exists()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in members)
    assert not server.port_in_use("127.0.0.1", st.port)
    assert server.stop(s).running is False  # idempotent


def test_port_taken_by_another_program(champion_settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = _elsewhere(champion_settings, tmp_path, serve_port=port)
        with pytest.raises(server.PortInUseError) as err:
            server.start(s)
    assert f"Port {port}" in str(err.value) and "already taken" in str(err.value)
    assert not server.state_path(s).exists()


def test_not_ready_in_time_quotes_the_log_and_cleans_up(champion_settings: Settings, tmp_path: Path) -> None:
    s = _elsewhere(champion_settings, tmp_path, serve_port=server.free_port())
    with pytest.raises(server.ServerStartError) as err:
        server.start(s, timeout_s=0.3)
    assert "not ready within 0.3 s" in str(err.value) and "serve.log" in str(err.value)
    assert not server.status(s).running and not server.state_path(s).exists()


def test_stale_pid_file_is_detected_and_removed(settings: Settings) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    settings.runtime_dir.mkdir(parents=True)
    server.state_path(settings).write_text(json.dumps({
        "pid": dead.pid, "create_time": 0, "host": "127.0.0.1", "port": 5999,
        "url": "http://127.0.0.1:5999", "model_version": "3", "started_at": "2026-01-01T00:00:00+00:00",
    }))
    st = server.status(settings)
    assert not st.running and st.stale_pid_removed and not server.state_path(settings).exists()


def test_start_without_champion_says_train_first(prepared_settings: Settings, tmp_path: Path) -> None:
    s = _elsewhere(prepared_settings, tmp_path)
    with pytest.raises(TrackingError, match="No champion yet"):
        server.start(s)


def test_client_on_a_closed_port_says_server_not_running() -> None:
    with serving_client.Client(f"http://127.0.0.1:{server.free_port()}", timeout_s=2) as client:
        assert not client.ping()
        with pytest.raises(serving_client.ServerNotRunningError, match="not running"):
            client.predict_rows([[34.0, -118.2, 5.0, 2.0, 0.0, 10.0]])


def test_curl_example_is_the_exact_request() -> None:
    cmd = predict.curl_example("http://127.0.0.1:5001", {k: float(v) for k, v in SHOT.items()}, tuple(SHOT))
    body = json.loads(cmd.split("-d '", 1)[1].rstrip("'"))
    assert body == {"dataframe_split": {"columns": list(SHOT), "data": [[float(v) for v in SHOT.values()]]}}


def test_parse_predictions_reads_both_answer_shapes() -> None:
    assert serving_client.parse_predictions('{"predictions": [[0.25, 0.75], [0.5, 0.5]]}').tolist() == [0.75, 0.5]
    assert serving_client.parse_predictions('{"predictions": [[1e-05, 0.99999]]}').tolist() == [0.99999]
    assert serving_client.parse_predictions('{"predictions": [0.1, 0.2]}').tolist() == [0.1, 0.2]


def test_cli_serve_runs_in_the_foreground_until_terminated(champion_settings: Settings, tmp_path: Path) -> None:
    s = _elsewhere(champion_settings, tmp_path, serve_port=server.free_port())
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": s.tracking_uri}
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(s.serve_port), "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with serving_client.Client(s.serve_url) as client:
            deadline = time.monotonic() + s.serve_start_timeout_s
            while not client.ping() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.3)
            assert client.ping(), proc.stderr.read() if proc.poll() is not None else "not ready"
        members = [psutil.Process(server.status(s).pid), *psutil.Process(server.status(s).pid).children(True)]
        assert server.status(s).started_by == server.BY_CLI
        # the app's launcher, on exit, stops what the app's pages started, not this one
        assert server.stop_all(s, started_by=server.BY_APP) == [] and server.status(s).running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop(s)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert {k: result[k] for k in ("url", "running")} == {"url": s.serve_url, "running": False} and "stopped" in err
    assert 0 < result["startup_s"] < 60 and f"ready in {result['startup_s']:.1f} s" in err
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in members)


def test_worker_count_comes_from_the_environment_and_bad_values_are_refused(tmp_path: Path) -> None:
    from core.config import Settings as S
    from core.errors import ConfigError

    assert S.from_env({"WORKBENCH_SERVE_WORKERS": "3"}).serve_workers == 3
    assert 1 <= S.from_env({}).serve_workers <= 2
    for bad in ("0", "many", "17", "-1"):
        with pytest.raises(ConfigError, match="WORKBENCH_SERVE_WORKERS must be a whole number from 1 to 16"):
            S.from_env({"WORKBENCH_SERVE_WORKERS": bad})
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "WORKBENCH_SERVE_WORKERS": "many"}
    out = subprocess.run([sys.executable, "-m", "core", "serve"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "WORKBENCH_SERVE_WORKERS" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("change", "problem"), [
    ({"period": 9}, "period: out-of-domain values in 1 row (period must be one of 1, 2, 3, 4, 5, 6, 7)"),
    ({"shot_distance": 150}, "shot_distance: out-of-domain values in 1 row"),
    ({"lon": None}, "lon: empty (NaN) values in 1 row"),
])
def test_the_served_model_refuses_what_the_definition_refuses(served_settings: Settings, change: dict,
                                                              problem: str) -> None:
    """Any client (plain requests here) meets the same rule table as the workbench's own form."""
    import requests

    row = {**SHOT, **change}
    with pytest.raises(InvalidInputError):
        served_settings.dataset.rules.validate_row(row)
    url = server.status(served_settings).url
    body = {"dataframe_split": {"columns": list(served_settings.features),
                                "data": [[row[f] for f in served_settings.features]]}}
    resp = requests.post(f"{url}/invocations", json=body, timeout=10)
    assert resp.status_code == 400 and problem in resp.json()["message"]
    ok = requests.post(f"{url}/invocations", json={"dataframe_split": {
        "columns": list(served_settings.features), "data": [[SHOT[f] for f in served_settings.features]]}}, timeout=10)
    assert ok.status_code == 200 and 0 < ok.json()["predictions"][0][1] < 1
