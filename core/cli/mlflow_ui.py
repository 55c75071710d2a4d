"""`mlflow-ui`: the MLflow UI on the workbench's own store, in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Any

from core.cli import options
from core.config import Settings
from core.dataset import DatasetSpec
from core.errors import WorkbenchError
from core.progress import ProgressFn


class MlflowUIError(WorkbenchError):
    """The MLflow UI could not be started."""


def cmd_mlflow_ui(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core import tracking
    from core.serving import server

    port = settings.mlflow_ui_port if args.port is None else args.port
    if tracking.is_tracking_server(settings):  # a tracking server has its own UI
        base = tracking.ui_base_url(settings)
        sys.stderr.write(f"the workbench's store is the MLflow server at {base}; its UI is there, nothing to start\n")
        return {"url": base, "started": False}
    if server.port_in_use("127.0.0.1", port):
        raise MlflowUIError(f"Port {port} on 127.0.0.1 is already taken (an MLflow UI already running there? open "
                            f"http://127.0.0.1:{port}); choose another with --port or WORKBENCH_MLFLOW_UI_PORT.")
    if settings.embedded_tracking:
        tracking.use(settings)  # the store exists before the UI opens it
    url = f"http://127.0.0.1:{port}"
    sys.stderr.write(f"MLflow UI on {tracking.store_description(settings)} at {url}; press Ctrl-C to stop\n")
    sys.stderr.flush()
    command, env = tracking.ui_command(settings, port)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and a plain `kill` both stop the UI with this command
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:  # its own messages go to stderr: stdout holds only the result (one JSON object with --json)
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                                start_new_session=True)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            _stop(proc)
            sys.stderr.write("stopped\n")
            return {"url": url, "started": True, "exit_code": proc.returncode}
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code != 0:
        raise MlflowUIError(f"The MLflow UI exited with status {code} (its messages are above).")
    return {"url": url, "started": True, "exit_code": code}


def _stop(proc: subprocess.Popen) -> None:
    """TERM, then KILL, the UI's process group (its server and workers)."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def add_mlflow_ui(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("mlflow-ui", help="start the MLflow UI on the workbench's store (127.0.0.1) until Ctrl-C")
    p.add_argument("--port", type=options.port, default=None, metavar="PORT",
                   help="port on 127.0.0.1, 1-65535 (default WORKBENCH_MLFLOW_UI_PORT, else 5000)")
    p.set_defaults(func=cmd_mlflow_ui)
