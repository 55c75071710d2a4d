"""The served version in step with the champion, on a real server: after another version is
promoted, the server is stale and `status`, `predict`, `apply --via` and `serve status` say so;
`serve stop` stops it and a restart serves the champion."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.config import Settings
from core.modeling import registry
from core.modeling import promotion
from core.serving import champion, predict, server
from tests.conftest import ROOT, make_champion_home, register_lr_champion

SHOT = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2, "playoffs": 0, "shot_distance": 12}


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory):
    """A home whose server was started on v1, after which v2 was registered and promoted."""
    s = make_champion_home(tmp_path_factory.mktemp("stale")).replace(serve_port=server.free_port())
    server.start(s)
    try:
        second = register_lr_champion(s, "second-model")  # registry.promote on a second registered version
        assert second == "2" and registry.champion(s).version == "2"
        yield s
    finally:
        server.stop(s)


def _cli(s: Settings, *words: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(s.home), "WORKBENCH_SERVE_PORT": str(s.serve_port)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "core", *words], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_champion_is_read_as_the_registry_says(promoted: Settings, tmp_path: Path) -> None:
    assert server.champion_version(promoted) == registry.champion(promoted).version == "2"
    model = registry.champion(promoted)  # what the server start reads without MLflow
    files = registry.local_files(model)
    from core import tracking

    uri = tracking.client(promoted).get_model_version_download_uri(promoted.model_name, "2")
    assert model.version == "2" and files.as_uri() == uri.rstrip("/")
    assert server.champion_version(promoted.replace(home=tmp_path)) is None  # no store: none, and none made
    assert not (tmp_path / "mlruns").exists()


def test_a_promotion_makes_the_running_server_stale(promoted: Settings) -> None:
    now = server.status(promoted, with_champion=True)
    assert now.running and now.model_version == "1" and now.champion_version == "2" and now.stale
    assert now.in_step_text == "serving v1, champion v2"
    assert not server.status(promoted).stale  # not looked up unless asked

    pred = predict.predict_one(promoted, SHOT, log_source=None, model=registry.champion(promoted))
    assert pred.model_version == "1" and pred.champion_version == "2" and pred.stale

    out = _cli(promoted, "predict", "--input", json.dumps(SHOT), "--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["stale"] is True and answer["model_version"] == "1" and answer["champion_version"] == "2"
    assert "warning: the model server at" in out.stderr and "serves v1, but the champion is v2" in out.stderr

    out = _cli(promoted, "serve", "status", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["running"] is True and report["pid"] == now.pid and report["port"] == promoted.serve_port
    assert (report["model_version"], report["champion_version"], report["stale"]) == ("1", "2", True)
    assert report["uptime_s"] >= 0 and report["startup_s"] > 0 and report["started_by"] == "app"
    assert "stale" in out.stderr


@pytest.mark.slow
def test_serve_does_not_adopt_a_server_of_another_version(promoted: Settings) -> None:
    """A server left running (e.g. by a `serve` killed with -9) that serves v1 while the champion
    is v2: `serve` refuses it (exit 2) naming its pid, its version and how to stop it, instead of
    reporting it ready; `server.start` likewise. The server is left as it was."""
    now = server.status(promoted)
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(promoted.serve_port)], cwd=ROOT,
                            env={**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
                                 "WORKBENCH_HOME": str(promoted.home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGKILL: the adopted server is left running, as it was
        out, err = proc.communicate()
        pytest.fail(f"`serve` adopted the server of v1 while the champion is v2: {err}")
    assert proc.returncode == 2, err
    assert f"pid {now.pid}" in err and "serves version 1" in err and "champion is version 2" in err
    assert "python -m core serve stop" in err and "Traceback" not in err
    with pytest.raises(server.StaleServerError, match=f"pid {now.pid}"):
        server.start(promoted)
    after = server.status(promoted)
    assert after.running and after.pid == now.pid and after.model_version == "1"


def test_apply_via_the_stale_server_says_so(promoted: Settings) -> None:
    out = _cli(promoted, "apply", "--via", server.status(promoted).url, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["path"] == "http" and result["model_version"] == "1" and result["stale"] is True
    assert "warning: the model server at" in out.stderr and "not the champion" in out.stderr
    out = _cli(promoted, "apply", "--in-process", "--json")  # in-process is the champion itself
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["stale"] is False and "warning" not in out.stderr


def test_serve_stop_then_a_restart_serves_the_champion(promoted: Settings) -> None:
    before = server.status(promoted)
    group = [psutil.Process(before.pid), *psutil.Process(before.pid).children(recursive=True)]
    out = _cli(promoted, "serve", "stop", "--json")
    assert out.returncode == 0, out.stderr
    stopped = json.loads(out.stdout)
    assert stopped["running"] is False and [s["pid"] for s in stopped["stopped"]] == [before.pid]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in group)
    report = json.loads(_cli(promoted, "serve", "status", "--json").stdout)
    assert report["running"] is False and report["champion_version"] == "2" and report["stale"] is False
    assert json.loads(_cli(promoted, "serve", "stop", "--json").stdout)["stopped"] == []  # idempotent

    again = server.start(promoted)
    assert again.model_version == "2" and not server.status(promoted, with_champion=True).stale
    assert not predict.predict_one(promoted, SHOT, log_source=None, model=registry.champion(promoted)).stale
    promotion.promote(promoted, "1")  # back to v1: stale again, and restart() follows the champion
    assert server.status(promoted, with_champion=True).stale
    restarted = server.restart(promoted)
    assert restarted.model_version == "1" and restarted.port == promoted.serve_port
    assert restarted.started_by == server.BY_APP and not server.status(promoted, with_champion=True).stale


def test_predict_decides_at_the_served_versions_own_threshold(promoted: Settings) -> None:
    from core import tracking
    from core.modeling.threshold import VERSION_TAG

    c = tracking.client(promoted)
    c.set_model_version_tag(promoted.model_name, "1", VERSION_TAG, "0.3700")  # the served version's own
    try:
        assert registry.version_info(promoted, "1").threshold == 0.37
        answer = json.loads(_cli(promoted, "predict", "--input", json.dumps(SHOT), "--json").stdout)
        assert answer["model_version"] == "1" and answer["threshold"] == 0.37
        assert answer["label"] == int(answer["proba"] >= 0.37)
        told = json.loads(_cli(promoted, "predict", "--input", json.dumps(SHOT), "--threshold", "0.9",
                               "--json").stdout)
        assert told["threshold"] == 0.9 and told["label"] == int(told["proba"] >= 0.9)
    finally:
        c.delete_model_version_tag(promoted.model_name, "1", VERSION_TAG)
    # no tag: the task kind's default threshold is used
    assert registry.version_info(promoted, "1").threshold is None
    assert registry.version_info(promoted, "1").decision_threshold == 0.5
