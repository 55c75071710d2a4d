"""The managed model server's state file and whether its process still runs.

A base module because two stages ask it: `core.serving.server` (which writes the file when it
starts a server and reads it for `status`) and `core.data.dataset_store` (which must not replace
or remove a dataset whose server runs, and sits below serving). Nothing here starts or stops a
process.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import psutil

from core.config import Settings

STATE_FILE = "serve.json"


def state_path(settings: Settings) -> Path:
    """The server's state file of the settings' dataset (pid, port, version served, ...)."""
    return settings.runtime_dir / STATE_FILE


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The state file's content (None when there is none or it does not read)."""
    path = state_path(settings)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None


def reap(pid: int) -> None:
    """Collect the exit status of our own dead child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def live_process(state: Mapping[str, Any]) -> psutil.Process | None:
    """The server process named by a state file, if it still runs (and is not a reused PID)."""
    try:
        proc = psutil.Process(int(state["pid"]))
        if abs(proc.create_time() - float(state["create_time"])) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            reap(proc.pid)
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError, TypeError):
        return None


def live_server(settings: Settings) -> dict[str, Any] | None:
    """The state of the settings' model server when its process runs, else None (read only)."""
    state = read_state(settings)
    return state if state is not None and live_process(state) is not None else None
