"""Issue 30, item 2, from the command line: two datasets' servers run at once, each on a port of
its own (no --port), and a row for one dataset sent to the other's address is refused (exit 2,
naming the model that serves there) instead of being scored or refused by the wrong model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.config import Settings
from core.data import dataset_store, preparation
from core.serving import ports, server
from tests.conftest import register_lr_champion

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _frame(columns: tuple[str, ...], target: str, seed: int, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {c: rng.normal(10.0 * (i + 1), 3.0, n).round(2) for i, c in enumerate(columns)}
    score = sum((data[c] - 10.0 * (i + 1)) / 3.0 for i, c in enumerate(columns))
    data[target] = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-score)), "yes", "no")
    return pd.DataFrame(data)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_SERVE_PORT")}
    return {**env, "WORKBENCH_HOME": str(home), "WORKBENCH_SERVE_WORKERS": "1"}


def _settings(home: Path, name: str) -> Settings:
    return Settings.from_env(_env(home), dataset=catalog.find(name, [catalog.user_dir(home)]))


def _core(home: Path, *words: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *words], cwd=ROOT, env=_env(home), capture_output=True,
                          text=True, timeout=120)


def _wait_running(s: Settings, proc: subprocess.Popen, timeout_s: float = 120.0) -> server.ServerStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = server.status(s)
        if now.running and now.startup_s is not None:
            return now
        assert proc.poll() is None, f"`serve --dataset {s.dataset.name}` exited: {proc.stderr.read()}"
        time.sleep(0.2)
    raise AssertionError(f"the server of {s.dataset.name} did not start within {timeout_s:g} s")


def test_two_datasets_servers_run_together_and_a_wrong_address_is_refused(tmp_path: Path) -> None:
    home = tmp_path
    dataset_store.add(home, _frame(("a1", "a2"), "flag", seed=1), "alpha", "flag", positive="yes")
    dataset_store.add(home, _frame(("b1", "b2", "b3"), "bad", seed=2), "beta", "bad", positive="yes")
    alpha, beta = _settings(home, "alpha"), _settings(home, "beta")
    for s in (alpha, beta):
        preparation.prepare(s)
        register_lr_champion(s)
    procs = []
    try:
        for name in ("alpha", "beta"):  # no --port: each dataset's own
            procs.append(subprocess.Popen([sys.executable, "-m", "core", "serve", "--dataset", name], cwd=ROOT,
                                          env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
            _wait_running(alpha if name == "alpha" else beta, procs[-1])
        a_now, b_now = server.status(alpha), server.status(beta)
        assert a_now.running and b_now.running and a_now.port != b_now.port
        assert (ports.remembered_port(alpha), ports.remembered_port(beta)) == (a_now.port, b_now.port)

        one = _core(home, "serve", "status", "--dataset", "beta", "--json")
        assert one.returncode == 0, one.stderr
        assert {k: json.loads(one.stdout)[k] for k in ("dataset", "running", "port")} == \
            {"dataset": "beta", "running": True, "port": b_now.port}
        every = _core(home, "serve", "status", "--all", "--json")
        assert every.returncode == 0, every.stderr
        listed = {s["dataset"]: s for s in json.loads(every.stdout)["servers"]}
        assert listed["alpha"]["running"] and listed["alpha"]["port"] == a_now.port
        assert listed["beta"]["running"] and listed["beta"]["port"] == b_now.port
        assert json.loads(every.stdout)["running"] == 2

        b_row = json.dumps({"b1": 10.0, "b2": 20.0, "b3": 30.0})
        reached = _core(home, "predict", "--dataset", "beta", "--input", b_row, "--json")
        assert reached.returncode == 0, reached.stderr
        answer = json.loads(reached.stdout)
        assert answer["url"] == b_now.url and answer["checked"] is True and answer["dataset"] == "beta"
        assert answer["model_version"] == b_now.model_version and 0.0 <= answer["proba"] <= 1.0

        a_row = json.dumps({"a1": 10.0, "a2": 20.0})
        wrong = _core(home, "predict", "--dataset", "alpha", "--input", a_row, "--url", b_now.url, "--json")
        assert wrong.returncode == 2, (wrong.stdout, wrong.stderr)
        error = json.loads(wrong.stdout)["error"]
        assert error["kind"] == "WrongServerError"
        assert f"dataset 'beta' (model '{beta.model_name}' version {b_now.model_version})" in error["message"]
        assert "alpha" in error["message"]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for s in (alpha, beta):
            server.stop(s)
    assert not server.status(alpha).running and not server.status(beta).running
    assert ports.known_port(alpha) == a_now.port  # remembered for the next start
