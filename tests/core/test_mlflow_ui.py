"""`python -m core mlflow-ui`: the real MLflow UI on the workbench's store, on 127.0.0.1, showing
the registered champion and the runs the pages link to; stopped by a plain `kill`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import requests

from core import tracking
from core.config import Settings
from core.modeling import registry
from core.serving import server
from tests.conftest import ROOT


def test_mlflow_ui_serves_the_workbench_store(champion_settings: Settings) -> None:
    port = server.free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(champion_settings.home), "WORKBENCH_MLFLOW_UI_PORT": str(port)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "core", "mlflow-ui", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = requests.get(f"{base}/api/2.0/mlflow/registered-models/get",
                                      params={"name": champion_settings.model_name}, timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, proc.stderr.read() if proc.poll() else "no answer"
        champion = registry.champion(champion_settings)
        aliases = {a["alias"]: a["version"] for a in answer.json()["registered_model"].get("aliases", [])}
        assert aliases.get("champion") == champion.version
        assert [c.laddr.ip for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN] == ["127.0.0.1"]
        exp_id = tracking.use(champion_settings)
        run = requests.get(f"{base}/api/2.0/mlflow/runs/get", params={"run_id": champion.run_id}, timeout=5).json()
        assert run["run"]["info"]["experiment_id"] == exp_id  # the page's link names this experiment and run
        assert requests.get(base, timeout=5).status_code == 200  # the UI itself
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["url"] == base and json.loads(out)["started"] is True and "stopped" in err
    assert not server.port_in_use("127.0.0.1", port)
