"""Ports of the model server: is one free, which program holds it, a free one, and each dataset's own.

Each dataset's server has a port of its own, so that several run at once: chosen on its first
start (DEFAULT_SERVE_PORT when free and no other dataset of the home keeps it, else one the system
gives) and remembered in the dataset's runtime folder (`serve_port`), reused on the next start
when free. A port set on purpose (`--port`, WORKBENCH_SERVE_PORT, settings made with another
`serve_port`) wins over the remembered one.
"""
from __future__ import annotations

import errno
import socket
from pathlib import Path

import psutil

from core.config import DEFAULT_SERVE_PORT, PORT_RULE, Settings, valid_port
from core.serving.client import ServerError


class PortInUseError(ServerError):
    """The port is taken by another program."""


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


# --------------------------------------------------------------------------- each dataset's port
PORT_FILE = "serve_port"  # under the dataset's runtime folder: the port its server last ran on


def port_file(settings: Settings) -> Path:
    """Where the settings' dataset remembers its server's port."""
    return settings.runtime_dir / PORT_FILE


def port_fixed(settings: Settings) -> bool:
    """True when the settings name the port on purpose (WORKBENCH_SERVE_PORT, or another port than
    the default): every start then uses `settings.serve_port`, not the dataset's remembered one."""
    return bool(settings.serve_port_fixed or settings.serve_port != DEFAULT_SERVE_PORT)


def remembered_port(settings: Settings) -> int | None:
    """The port the dataset's server last ran on (None when none is remembered or the file is bad)."""
    try:
        text = port_file(settings).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and valid_port(int(text)) else None


def remember_port(settings: Settings, port: int) -> None:
    """Keep `port` as the dataset's server's port (for its next start)."""
    from core.files import atomic_write

    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(port_file(settings), lambda tmp: tmp.write_text(f"{int(port)}\n"))


def known_port(settings: Settings) -> int:
    """The port the dataset's server runs or would run on, without choosing one: the fixed port,
    else the remembered one, else `settings.serve_port` (read only: for status and pages)."""
    if port_fixed(settings):
        return int(settings.serve_port)
    return remembered_port(settings) or int(settings.serve_port)


def dataset_port(settings: Settings, others: tuple[int, ...] = ()) -> int:
    """The port to start the dataset's server on: the fixed port when there is one (checked by the
    start), else the remembered one when it is free, else DEFAULT_SERVE_PORT when it is free and
    not in `others` (ports other datasets of the home keep), else a free port from the system."""
    if port_fixed(settings):
        return int(settings.serve_port)
    kept = remembered_port(settings)
    if kept is not None and not port_in_use(settings.serve_host, kept):
        return kept
    if DEFAULT_SERVE_PORT not in others and not port_in_use(settings.serve_host, DEFAULT_SERVE_PORT):
        return DEFAULT_SERVE_PORT
    while True:
        port = free_port(settings.serve_host)
        if port not in others:
            return port
