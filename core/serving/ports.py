"""Ports of the model server: is one free, which program holds it, and a free one for tests."""
from __future__ import annotations

import errno
import socket

import psutil

from core.config import PORT_RULE, Settings, valid_port
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
