"""The model server: `mlflow models serve` for the champion, as a managed subprocess.

The server runs in its own process group with its PID, port and model version in
`<runtime>/serve.json` and its output in `<runtime>/serve.log`. `start` resolves `@champion`
to a version (an alias can move) and serves `models:/<name>/<version>`; `status` detects a
stale PID file; `stop` ends the whole process group. `core/serving/client.py` talks to it.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import psutil
import requests

from core.config import PORT_RULE, Settings, valid_port
from core.errors import TrackingError
from core.files import atomic_write
from core.modeling import registry
from core.serving.client import ServerError

STATE_FILE = "serve.json"
LOG_FILE = "serve.log"
LOG_TAIL_LINES = 15


class ServerStartError(ServerError):
    """The server did not become ready (its log's last lines are in the message)."""


class PortInUseError(ServerError):
    """The port is taken by another program."""


# --------------------------------------------------------------------------- process management
@dataclass(frozen=True)
class ServerStatus:
    """What runs at the managed server's address, and which model version it serves."""

    running: bool
    url: str
    host: str
    port: int
    pid: int | None = None
    model_version: str | None = None
    model_uri: str | None = None
    started_at: str | None = None
    uptime_s: float | None = None
    log_path: str = ""
    stale_pid_removed: bool = False
    workers: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_path(settings: Settings) -> Path:
    return settings.runtime_dir / STATE_FILE


def log_path(settings: Settings) -> Path:
    return settings.runtime_dir / LOG_FILE


def log_tail(settings: Settings, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the server log (progress bars' carriage returns folded)."""
    path = log_path(settings)
    if not path.exists():
        return "(no server log)"
    text = path.read_text(errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(the server log is empty)"


def _read_state(settings: Settings) -> dict[str, Any] | None:
    path = state_path(settings)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None


def _write_state(settings: Settings, state: Mapping[str, Any]) -> None:
    atomic_write(state_path(settings), lambda tmp: tmp.write_text(json.dumps(dict(state), indent=2)))


def _reap(pid: int) -> None:
    """Collect the exit status of our own dead child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _live_process(state: Mapping[str, Any]) -> psutil.Process | None:
    """The server process named by the state file, if it still runs (and is not a reused PID)."""
    try:
        proc = psutil.Process(int(state["pid"]))
        if abs(proc.create_time() - float(state["create_time"])) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError, TypeError):
        return None


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on host:port (TIME_WAIT leftovers do not count), or the
    port cannot be bound at all."""
    return _bind_error(host, port) is not None


def _bind_error(host: str, port: int) -> OSError | None:
    """Why binding host:port fails right now, or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err
        except OverflowError as err:  # a port outside 0-65535
            return OSError(errno.EINVAL, str(err))
    return None


def check_port(settings: Settings, port: object) -> int:
    """`port` when the server can listen on it now, else a ServerError saying why (checked
    before anything starts, so that a bad port fails at once instead of after the start timeout)."""
    if not valid_port(port):
        raise ServerError(f"The model server's port must be {PORT_RULE}, not {port!r} "
                          f"(--port, or WORKBENCH_SERVE_PORT).")
    err = _bind_error(settings.serve_host, int(port))  # type: ignore[call-overload]
    if err is None:
        return int(port)  # type: ignore[call-overload]
    if err.errno == errno.EADDRINUSE:
        raise PortInUseError(
            f"Port {port} on {settings.serve_host} is already taken{_owner_of_port(port)}. "
            f"Stop that program or choose another port (--port, or WORKBENCH_SERVE_PORT)."
        )
    if err.errno == errno.EACCES:
        raise PortInUseError(f"Port {port} on {settings.serve_host} cannot be used: permission denied "
                             f"(ports below 1024 need administrator rights); choose a port from 1024 to 65535.")
    raise PortInUseError(f"Port {port} on {settings.serve_host} cannot be used ({err.strerror or err}); "
                         f"choose another port (--port, or WORKBENCH_SERVE_PORT) or serve_host.")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _owner_of_port(port: int) -> str:
    """'pid N (name)' of the listener on `port` when visible, else ''."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return ""


def status(settings: Settings) -> ServerStatus:
    """The managed server's status; a PID file left by a dead server is removed (`stale_pid_removed`)."""
    state = _read_state(settings)
    base = dict(url=settings.serve_url, host=settings.serve_host, port=settings.serve_port,
                log_path=str(log_path(settings)))
    if state is None:
        return ServerStatus(running=False, **base)
    base.update(url=state["url"], host=state["host"], port=int(state["port"]))
    if _live_process(state) is None:
        state_path(settings).unlink(missing_ok=True)
        return ServerStatus(running=False, stale_pid_removed=True, **base)
    started = datetime.fromisoformat(state["started_at"])
    return ServerStatus(
        running=True,
        pid=int(state["pid"]),
        model_version=state.get("model_version"),
        model_uri=state.get("model_uri"),
        started_at=state["started_at"],
        uptime_s=round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        workers=state.get("workers"),
        **base,
    )


def _command(settings: Settings, model_uri: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
            "--host", settings.serve_host, "--port", str(port), "--workers", str(int(workers))]


def _environment(settings: Settings) -> dict[str, str]:
    """The caller's environment with the venv's bin first on PATH (uvicorn), our store, no access log."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["MLFLOW_REGISTRY_URI"] = settings.tracking_uri
    # uvicorn's access log would add a line to serve.log per request (and ~4 % of the server's
    # CPU); every prediction made through the workbench is in the inference log instead.
    env.setdefault("UVICORN_ACCESS_LOG", "false")
    # it binds to loopback: no reverse proxy's X-Forwarded-* headers to rewrite on each request
    env.setdefault("UVICORN_PROXY_HEADERS", "false")
    return env


def start(settings: Settings, port: int | None = None, timeout_s: float | None = None,
          workers: int | None = None) -> ServerStatus:
    """Start serving the current champion on `port` and wait until `/ping` answers.

    `workers` uvicorn processes (default `settings.serve_workers`: 2 on two or more cores,
    which served about twice the requests/s of one worker with 8 concurrent clients here, at
    the same single-shot latency).

    Returns the running server's status (the same server when it already runs on that port).
    Raises `ServerError` for a port outside 1-65535, `PortInUseError` when another program
    holds the port (both before anything else), `TrackingError` without a champion,
    `ServerStartError` (with the log's last lines) when the server exits or is not ready
    within `timeout_s`.
    """
    wanted = settings.serve_port if port is None else port
    if not valid_port(wanted):
        check_port(settings, wanted)  # raises, saying what is allowed
    port = int(wanted)
    workers = settings.serve_workers if workers is None else max(int(workers), 1)
    timeout_s = settings.serve_start_timeout_s if timeout_s is None else float(timeout_s)
    current = status(settings)
    if current.running:
        if current.port == port:
            return current
        raise ServerError(
            f"The model server already runs on port {current.port} (pid {current.pid}); stop it first."
        )
    check_port(settings, port)  # PortInUseError at once, before the registry is read
    # an embedded store that does not exist yet holds no champion (and is not created by asking)
    has_store = not settings.embedded_tracking or settings.embedded_db_path.exists()
    champ = registry.champion(settings) if has_store else None
    if champ is None:
        raise TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")
    model_uri = f"models:/{settings.model_name}/{champ.version}"
    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path(settings), "wb") as log:
        proc = subprocess.Popen(
            _command(settings, model_uri, port, workers),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=_environment(settings), cwd=settings.runtime_dir, start_new_session=True,
        )
    url = f"http://{settings.serve_host}:{port}"
    _write_state(settings, {
        "pid": proc.pid,
        "pgid": proc.pid,
        "create_time": psutil.Process(proc.pid).create_time(),
        "host": settings.serve_host,
        "port": port,
        "url": url,
        "model_version": champ.version,
        "model_uri": model_uri,
        "workers": int(workers),
        "started_at": datetime.now(timezone.utc).isoformat(),
        "log": str(log_path(settings)),
    })
    deadline = time.monotonic() + timeout_s
    with requests.Session() as session:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                state_path(settings).unlink(missing_ok=True)
                raise ServerStartError(
                    f"The model server exited during startup (exit code {code}). "
                    f"Last lines of {log_path(settings)}:\n{log_tail(settings)}"
                )
            try:
                if session.get(f"{url}/ping", timeout=1.0).status_code == 200:
                    return status(settings)
            except requests.RequestException:
                pass
            time.sleep(0.2)
    stop(settings)
    raise ServerStartError(
        f"The model server was not ready within {timeout_s:g} s, so it was stopped. "
        f"Last lines of {log_path(settings)}:\n{log_tail(settings)}"
    )


def stop(settings: Settings, timeout_s: float = 10.0) -> ServerStatus:
    """Stop the managed server and every process of its group (TERM, then KILL); idempotent."""
    state = _read_state(settings)
    if state is not None:
        proc = _live_process(state)
        if proc is not None:
            try:
                group = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                group = [proc]
            pgid = int(state.get("pgid", proc.pid))
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pgid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
                for p in group:  # members that left the group
                    try:
                        p.send_signal(sig)
                    except psutil.NoSuchProcess:
                        pass
                _, alive = psutil.wait_procs(group, timeout=timeout_s if sig == signal.SIGTERM else 5.0)
                _reap(proc.pid)
                if not alive:
                    break
                group = alive
        state_path(settings).unlink(missing_ok=True)
    return status(settings)


def wait(settings: Settings, poll_s: float = 1.0) -> ServerStatus:
    """Block while the managed server runs (for `python -m core serve`); return its final status."""
    while True:
        now = status(settings)
        if not now.running:
            return now
        time.sleep(poll_s)
