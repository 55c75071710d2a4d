"""The model server: MLflow's scoring server for the champion, as a managed subprocess.

The server runs in its own process group with its PID, port, model version, start time and who
started it in `<runtime>/serve.json` and its output in `<runtime>/serve.log`. `start` resolves
`@champion` to a version (an alias can move), puts that version's files in `<runtime>/model/`
and serves them with MLflow's own scoring server app under gunicorn (`core/serving/asgi.py`:
the model is loaded once, then the uvicorn workers are forked); `status` detects a stale PID
file and, asked to, compares the version served with the champion's (`stale`); `stop` ends the
whole process group; `stop_all` every managed server of a home (the app's launcher calls it on
exit). `core/serving/client.py` talks to it.

Why not `mlflow models serve` itself: it starts the mlflow command line (2-5 s of imports), asks
the registry for the model, then uvicorn, whose workers are spawned and each import MLflow and
load the model again. Here the server process starts first; meanwhile the starting process reads
the champion's version and folder from the embedded store (`core.modeling.registry`, no MLflow
import) and links the folder in place (bench/serve_start.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import psutil
import requests

from core import catalog
from core.config import PROJECT_ROOT, Settings, valid_port
from core.errors import TrackingError
from core.files import atomic_write
from core import runtime
from core.runtime import STATE_FILE, state_path  # noqa: F401 (server.state_path and STATE_FILE: the API)
from core.serving.asgi import MODEL_PATH_ENV
from core.modeling import registry
from core.modeling.model_version import ModelVersion
from core.modeling.registry import champion_version
from core.serving.champion import clear, put_champion_in_place
from core.serving.client import DATASET_ENV, MODEL_ENV, ServerError
from core.serving import ports
from core.serving.ports import PortInUseError, check_port, free_port, port_in_use  # noqa: F401 (the API)

LOG_FILE = "serve.log"
MODEL_DIR = "model"  # the served version's files, under the runtime folder
LOG_TAIL_LINES = 15
BY_APP, BY_CLI = "app", "cli"  # who started a server: the app's pages (stopped with the app) or `serve`


class ServerStartError(ServerError):
    """The server did not become ready (its log's last lines are in the message)."""


class StaleServerError(ServerError):
    """A managed server already runs on the port asked for, serving another version than the
    champion: `start` neither adopts it nor stops it (the message names its pid and how to stop it)."""


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
    startup_s: float | None = None  # from `start` being called to the first /ping answer
    started_by: str | None = None  # BY_APP or BY_CLI
    champion_version: str | None = None  # filled by `status(..., with_champion=True)`
    stale: bool = False  # it runs and serves another version than the champion
    dataset: str | None = None  # the dataset whose server it is

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def in_step_text(self) -> str:
        """'serving vX, champion vY' (or what is known of it) for pages and the command line."""
        served = f"serving v{self.model_version}" if self.running else "not serving"
        return f"{served}, champion v{self.champion_version}" if self.champion_version else f"{served}, no champion"


def model_dir(settings: Settings) -> Path:
    """Where the served version's files are (a symlink to the store's folder, or a copy)."""
    return settings.runtime_dir / MODEL_DIR


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


def _write_state(settings: Settings, state: Mapping[str, Any]) -> None:
    atomic_write(state_path(settings), lambda tmp: tmp.write_text(json.dumps(dict(state), indent=2)))


def status(settings: Settings, with_champion: bool = False) -> ServerStatus:
    """The managed server's status; a PID file left by a dead server is removed (`stale_pid_removed`).

    `with_champion` also looks up the champion (`champion_version`) and sets `stale` when the
    server runs another version."""
    state = runtime.read_state(settings)
    port = ports.known_port(settings)  # not running: the port it would start on (its own, remembered)
    base: dict[str, Any] = dict(url=f"http://{settings.serve_host}:{port}", host=settings.serve_host, port=port,
                                log_path=str(log_path(settings)), dataset=settings.dataset.name)
    if with_champion:
        base["champion_version"] = champion_version(settings)
    if state is None:
        return ServerStatus(running=False, **base)
    base.update(url=state["url"], host=state["host"], port=int(state["port"]))
    if runtime.live_process(state) is None:
        state_path(settings).unlink(missing_ok=True)
        return ServerStatus(running=False, stale_pid_removed=True, **base)
    started = datetime.fromisoformat(state["started_at"])
    served = state.get("model_version")
    return ServerStatus(
        running=True,
        pid=int(state["pid"]),
        model_version=served,
        model_uri=state.get("model_uri"),
        started_at=state["started_at"],
        uptime_s=round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        workers=state.get("workers"),
        startup_s=state.get("startup_s"),
        started_by=state.get("started_by"),
        stale=bool(with_champion and base["champion_version"] and served != base["champion_version"]),
        **base,
    )


def _command(settings: Settings, model_uri: str, port: int, workers: int) -> list[str]:
    """Stock `mlflow models serve` of `model_uri` (the baseline of bench/serve.py)."""
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
            "--host", settings.serve_host, "--port", str(port), "--workers", str(int(workers))]


def _server_command(settings: Settings, port: int, workers: int) -> list[str]:
    """MLflow's scoring server app (`core/serving/asgi.py`) under gunicorn: the model loaded once
    (`--preload`), then `workers` uvicorn workers forked; gunicorn's control socket (one fixed
    path per user, shared by every gunicorn) is not used."""
    return [sys.executable, "-m", "gunicorn", "--preload", "--no-control-socket",
            "--workers", str(int(workers)), "--worker-class", "core.serving.worker.Worker",
            "--bind", f"{settings.serve_host}:{port}", "--keep-alive", "5", "--graceful-timeout", "5",
            "core.serving.asgi:create_app()"]


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


def capture_dir(settings: Settings) -> Path:
    """The capture's status files (one per server worker), under the runtime folder."""
    from core.serving.capture import STATUS_DIR

    return settings.runtime_dir / STATUS_DIR


def _capture_config(settings: Settings, model: ModelVersion) -> str:
    """The capture's settings for the server process (`core/serving/capture.py`), as JSON: the
    served version's inputs, its task kind and the log's answer columns, and (binary) its own
    threshold for the class each logged row gets."""
    from core.serving import inference_log
    from core.serving.capture import CaptureConfig

    return CaptureConfig(
        log_path=str(settings.inference_log_path), features=tuple(model.inputs(settings.dataset).features),
        proba_column=settings.dataset.proba_column, state_path=str(state_path(settings)),
        status_dir=str(capture_dir(settings)), threshold=_threshold(model) or 0.5,
        task=model.task, output_columns=tuple(inference_log.output_columns(settings.dataset)),
        sample_rows=int(settings.capture_rows), flush_s=float(settings.capture_flush_s),
        max_rows=settings.log_max_rows, max_days=settings.log_max_days, seed=int(settings.seed),
    ).to_env()


def _threshold(model: ModelVersion) -> float | None:
    """The version's decision threshold (a binary model's), None for a kind that has none."""
    return float(model.decision_threshold) if model.kind.default_threshold is not None else None


def _prepare_capture(settings: Settings) -> None:
    """Before the server starts: the inference log made (or brought up to date) and pruned to the
    retention, the previous server's capture status files removed."""
    import shutil

    from core.serving import inference_log

    inference_log.ensure(settings)
    inference_log.prune_log(settings)
    for folder in (capture_dir(settings), metrics_dir(settings)):
        shutil.rmtree(folder, ignore_errors=True)
    metrics_dir(settings).mkdir(parents=True)


def metrics_dir(settings: Settings) -> Path:
    """prometheus-client's files of the server's workers (`core/serving/metrics.py`)."""
    return settings.runtime_dir / "metrics"


def _server_environment(settings: Settings, folder: Path, model: ModelVersion) -> dict[str, str]:
    """`_environment` plus what the server process needs: the workbench importable (for
    `core.serving.asgi`), the folder of the model to serve and (unless `settings.capture` is
    off) the capture's settings."""
    from core.serving.capture import CONFIG_ENV

    env = _environment(settings)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env[MODEL_PATH_ENV] = str(folder)
    from core.serving.metrics import METRICS_DIR_ENV

    env.pop(CONFIG_ENV, None)
    env.pop(METRICS_DIR_ENV, None)
    # what it serves, named on every answer (core/serving/asgi.py): a client refuses another's answers
    env[DATASET_ENV] = settings.dataset.name
    env[MODEL_ENV] = f"{model.name}/{model.version}"
    if settings.capture:
        env[CONFIG_ENV] = _capture_config(settings, model)
        env[METRICS_DIR_ENV] = str(metrics_dir(settings))
    return env


def start(settings: Settings, port: int | None = None, timeout_s: float | None = None,
          workers: int | None = None, started_by: str = BY_APP) -> ServerStatus:
    """Start serving the current champion on `port` and wait until `/ping` answers.

    Without `port`: `settings.serve_port` when it is set on purpose (`ports.port_fixed`), else
    the dataset's own port (`ports.dataset_port`: the one it remembers when free, else a free one
    no other dataset of the home keeps), so that each dataset's server runs beside the others.
    The port it ran on is remembered for the dataset's next start. Every answer names the dataset,
    model and version served (`X-Workbench-Dataset`, `X-Workbench-Model`).

    `workers` uvicorn processes (default `settings.serve_workers`: 2 on two or more cores,
    which served about twice the requests/s of one worker with 8 concurrent clients here, at
    the same single-shot latency). The server process starts first and imports MLflow while
    this one puts the champion's files in place. `started_by` (BY_APP, BY_CLI)
    is kept in the state file: the app's launcher stops the servers its pages started.

    Returns the running server's status, with `startup_s` from this call to the first /ping
    answer (the same server when it already runs on that port and serves the champion). Raises
    `ServerError` for a port outside 1-65535, `PortInUseError` when another program holds the
    port (both before anything else), `StaleServerError` when the managed server already runs on
    that port with another version than the champion (e.g. left by a killed `serve`, the
    champion moved since: it is never adopted), `TrackingError` without a champion,
    `ServerStartError` (with the log's last lines) when the server exits or is not ready within
    `timeout_s`.
    """
    clock = time.monotonic()
    fixed = port is not None or ports.port_fixed(settings)
    wanted = (settings.serve_port if port is None else port) if fixed else None
    if wanted is not None and not valid_port(wanted):
        check_port(settings, wanted)  # raises, saying what is allowed
    workers = settings.serve_workers if workers is None else max(int(workers), 1)
    timeout_s = settings.serve_start_timeout_s if timeout_s is None else float(timeout_s)
    current = status(settings)
    if wanted is None:  # the dataset's own port: the running server's, else remembered or chosen free
        wanted = current.port if current.running else ports.dataset_port(settings, _ports_of_others(settings))
    port = int(wanted)
    if current.running:
        if current.port != port:
            raise ServerError(
                f"The model server already runs on port {current.port} (pid {current.pid}); stop it first."
            )
        champ = champion_version(settings)  # the version asked for: the champion now
        if current.model_version == champ:
            return current
        raise StaleServerError(
            f"A model server already runs on port {port} (pid {current.pid}, started by "
            f"{current.started_by or 'an earlier start'}) and serves version {current.model_version}, but "
            + (f"the champion is version {champ}" if champ else "there is no champion now")
            + f": it was not adopted. Stop it with `python -m core serve stop` (or `kill {current.pid}`), "
            "then start the server again (or use the Serve page's Restart button)."
        )
    check_port(settings, port)  # PortInUseError at once, before the registry is read
    # an embedded store that does not exist yet holds no champion (and is not created by asking)
    if settings.embedded_tracking and not settings.embedded_db_path.exists():
        raise _no_champion()
    model = registry.champion(settings)  # the version served, read once (milliseconds on SQLite)
    if model is None:
        raise _no_champion()
    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    folder = model_dir(settings)
    clear(folder)  # the server process waits for the files of the version resolved below
    if settings.capture:
        _prepare_capture(settings)
    with open(log_path(settings), "wb") as log:
        proc = subprocess.Popen(
            _server_command(settings, port, workers),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=_server_environment(settings, folder, model), cwd=settings.runtime_dir, start_new_session=True,
        )
    try:
        version = put_champion_in_place(settings, folder, model)
    except BaseException:
        _end_group([psutil.Process(proc.pid)], proc.pid)
        runtime.reap(proc.pid)
        raise
    url = f"http://{settings.serve_host}:{port}"
    state: dict[str, Any] = {
        "pid": proc.pid,
        "pgid": proc.pid,
        "create_time": psutil.Process(proc.pid).create_time(),
        "host": settings.serve_host,
        "port": port,
        "url": url,
        "model_version": version,
        # the version's own decision threshold: the capture logs each row's class at it
        "threshold": _threshold(model),
        "model_uri": f"models:/{settings.model_name}/{version}",
        "workers": int(workers),
        "started_at": datetime.now(timezone.utc).isoformat(),
        "started_by": started_by,
        "log": str(log_path(settings)),
    }
    _write_state(settings, state)
    deadline = clock + timeout_s
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
                    _write_state(settings, {**state, "startup_s": round(time.monotonic() - clock, 2)})
                    ports.remember_port(settings, port)  # the dataset's port from now on
                    return status(settings)
            except requests.RequestException:
                pass
            time.sleep(0.05)
    stop(settings)
    raise ServerStartError(
        f"The model server was not ready within {timeout_s:g} s, so it was stopped. "
        f"Last lines of {log_path(settings)}:\n{log_tail(settings)}"
    )


def _no_champion() -> TrackingError:
    return TrackingError("No champion yet: train one on the Train page (or `python -m core train`).")


def _end_group(group: list[psutil.Process], pgid: int, timeout_s: float = 10.0) -> None:
    """TERM, then KILL, the process group `pgid` and the processes in `group` (members that left it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for p in group:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(group, timeout=timeout_s if sig == signal.SIGTERM else 5.0)
        if not alive:
            return
        group = alive


def stop(settings: Settings, timeout_s: float = 10.0) -> ServerStatus:
    """Stop the managed server and every process of its group (TERM, then KILL); idempotent."""
    state = runtime.read_state(settings)
    if state is not None:
        proc = runtime.live_process(state)
        if proc is not None:
            try:
                group = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                group = [proc]
            _end_group(group, int(state.get("pgid", proc.pid)), timeout_s)
            runtime.reap(proc.pid)
        state_path(settings).unlink(missing_ok=True)
    return status(settings)


def restart(settings: Settings, timeout_s: float | None = None) -> ServerStatus:
    """Stop the managed server and start it again on the current champion, on the same port,
    with the same workers and owner (the settings' defaults when none runs)."""
    before = status(settings)
    stop(settings)
    if not before.running:
        return start(settings, timeout_s=timeout_s)
    return start(settings, port=before.port, workers=before.workers, timeout_s=timeout_s,
                 started_by=before.started_by or BY_APP)


def home_datasets(settings: Settings) -> list[Settings]:
    """The settings of every dataset of the settings' home whose definition reads (by name)."""
    found = []
    for name in catalog.available([catalog.user_dir(settings.home)]):
        try:
            found.append(settings.replace(dataset=catalog.find(name, [catalog.user_dir(settings.home)])))
        except catalog.DatasetError:
            continue  # a definition that does not read runs no server of ours
    return found


def _ports_of_others(settings: Settings) -> tuple[int, ...]:
    """The ports the home's other datasets' servers run on or remember (a new port avoids them)."""
    kept = []
    for each in home_datasets(settings):
        if each.dataset.name != settings.dataset.name:
            state = runtime.read_state(each)
            for port in (ports.remembered_port(each), state.get("port") if state else None):
                if isinstance(port, int):
                    kept.append(port)
    return tuple(kept)


def status_all(settings: Settings, with_champion: bool = False) -> list[ServerStatus]:
    """The managed server's status of every dataset of the settings' home, by dataset name."""
    return [status(each, with_champion=with_champion) for each in home_datasets(settings)]


def stop_all(settings: Settings, started_by: str | None = None) -> list[ServerStatus]:
    """Stop the managed server of every dataset of the settings' home (only those started by
    `started_by` when given: the app's launcher stops what the app's pages started, not a
    `python -m core serve` running in another terminal). Returns the status of each server
    found running before, as it was."""
    stopped = []
    for each in home_datasets(settings):
        now = status(each)
        if now.running and (started_by is None or now.started_by == started_by):
            stop(each)
            stopped.append(now)
    return stopped


def wait(settings: Settings, poll_s: float = 1.0) -> ServerStatus:
    """Block while the managed server runs (for `python -m core serve`); return its final status."""
    while True:
        now = status(settings)
        if not now.running:
            return now
        time.sleep(poll_s)
