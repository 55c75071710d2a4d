"""The app's launcher (scripts/serve_app.sh, what `make app` runs once installed): Ctrl+C stops
the app and the model server its pages started; nothing is left running."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from core.serving import server
from tests.conftest import ROOT, make_champion_home


def test_ctrl_c_on_the_app_stops_the_model_server_it_started(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = make_champion_home(tmp_path_factory.mktemp("launcher")).replace(serve_port=server.free_port())
    app_port = server.free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(WORKBENCH_HOME=str(s.home), WORKBENCH_APP_PORT=str(app_port), WORKBENCH_SERVE_PORT=str(s.serve_port))
    log = open(s.home / "app.log", "w")
    launcher = subprocess.Popen(["bash", str(ROOT / "scripts" / "serve_app.sh")],
                                cwd=ROOT, env={**env, "STREAMLIT_SERVER_HEADLESS": "true"}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{app_port}/_stcore/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            pytest.fail("the app did not start: " + (s.home / "app.log").read_text())
        started = server.start(s)  # as the Serve page does (started_by "app")
        group = [psutil.Process(started.pid), *psutil.Process(started.pid).children(recursive=True)]
        os.killpg(launcher.pid, signal.SIGINT)  # Ctrl+C in the terminal reaches the whole group
        launcher.wait(timeout=60)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
        server.stop(s)
        log.close()
    text = (s.home / "app.log").read_text()
    assert "Stopping the model servers the app started" in text, text
    assert not server.status(s).running and not server.state_path(s).exists()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in group)
    assert not server.port_in_use("127.0.0.1", app_port)
