"""Alerts (issue 32 item 3): a local HTTP receiver gets one alert per alarming check (with the
check id) and none for a calm one; a dead receiver, or one answering 500, leaves the check's
result and exit code unchanged, and its failure is recorded for the Drift page."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.config import Settings
from core.data import preparation
from core.monitoring import alerts
from tests.core.test_drift_chunks import run_cli


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, keeping every JSON body POSTed to it; answers
    `status` (200 by default)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.bodies.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                     "json": json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dead_url() -> str:
    """A URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _join_alerts() -> None:
    """Wait for the alert threads a check started (they are bounded by `alert_budget_s`)."""
    for t in threading.enumerate():
        if t.name == "alert":
            t.join(timeout=30)


def _batches(s: Settings, tmp_path: Path) -> tuple[Path, Path]:
    calm, shifted = tmp_path / "calm.parquet", tmp_path / "shifted.parquet"
    preparation.load_split(s, "test").drop(columns=[s.target]).sample(800, random_state=7).to_parquet(calm)
    preparation.load_split(s, "prod").drop(columns=[s.target]).sample(400, random_state=8).to_parquet(shifted)
    return calm, shifted


STABLE = ("dataset_drift", "features", "alarm", "recommendation", "estimated_performance", "prediction_drift",
          "dataset_drift_rules", "batch")


def test_one_alert_per_alarming_check_and_none_for_a_calm_one(champion_settings: Settings, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    s = champion_settings
    calm, shifted = _batches(s, tmp_path)
    receiver, second = Receiver(), Receiver()
    try:
        env = {"WORKBENCH_ALERT_URL": f"{receiver.url},{second.url}"}
        code, drifted = run_cli(s.home, ["drift", "--batch", str(shifted), "--no-domain"], capsys, env)
        assert code == 0 and drifted["dataset_drift"] is True, drifted
        code, quiet = run_cli(s.home, ["drift", "--batch", str(calm), "--no-domain"], capsys, env)
        assert code == 0 and quiet["dataset_drift"] is False and not quiet["alarm"], quiet
        code, again = run_cli(s.home, ["drift", "--batch", str(shifted), "--no-domain"], capsys, env)
        assert code == 0
        _join_alerts()
    finally:
        receiver.close()
        second.close()
    for got in (receiver, second):  # every URL: one alert per alarming check, none for the calm one
        assert [b["json"]["check_id"] for b in got.bodies] == [drifted["check_id"], again["check_id"]]
    alert = receiver.bodies[0]["json"]
    assert receiver.bodies[0]["type"] == "application/json" and receiver.bodies[0]["path"] == "/hooks/secret-token"
    assert alert["kind"] == "dataset_drift" and alert["dataset"] == "kobe" and alert["model_version"] == "1"
    assert set(alert["drifted"]) == set(drifted["features"]) & {k for k, v in drifted["features"].items()
                                                                  if v["drift"]}
    assert "shot_distance" in alert["drifted"] and "shot_distance" in alert["text"]
    assert alert["text"].startswith("Drift check of Kobe Bryant shots") and alert["link"].endswith("/Drift")
    assert alert["alarm"] == drifted["alarm"]
    log = alerts.recent(s)
    assert {(r["check_id"], r["ok"]) for r in log[:4]} == {(drifted["check_id"], True), (again["check_id"], True)}
    assert all("secret-token" not in r["url"] for r in log)  # a webhook's path is its secret


@pytest.mark.parametrize("receiver_kind", ["dead", "500"])
def test_a_failing_receiver_leaves_the_check_unchanged(receiver_kind: str, champion_settings: Settings,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    s = champion_settings
    _, shifted = _batches(s, tmp_path)
    broken = Receiver(status=500) if receiver_kind == "500" else None
    url = broken.url if broken else _dead_url()
    try:
        code_plain, plain = run_cli(s.home, ["drift", "--batch", str(shifted), "--no-domain"], capsys)
        started = time.monotonic()
        code, out = run_cli(s.home, ["drift", "--batch", str(shifted), "--no-domain"], capsys,
                            {"WORKBENCH_ALERT_URL": url})
        printed_after = time.monotonic() - started
        _join_alerts()
        waited = time.monotonic() - started
    finally:
        if broken:
            broken.close()
    assert code == code_plain == 0
    assert {k: out[k] for k in STABLE} == {k: plain[k] for k in STABLE}
    assert out["dataset_drift"] is True
    assert printed_after < waited or receiver_kind == "dead"  # the check does not wait for the delivery
    assert waited < s.alert_budget_s + 5
    failure = alerts.recent(s)[0]
    assert failure["check_id"] == out["check_id"] and failure["ok"] is False
    assert failure["attempts"] == alerts.ATTEMPTS and failure["error"]
    if broken:
        assert len(broken.bodies) == alerts.ATTEMPTS and failure["status"] == 500  # retried, then given up
