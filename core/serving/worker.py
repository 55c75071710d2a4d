"""The worker process gunicorn forks for the model server (`core/serving/server.py`): uvicorn's.

`uvicorn.workers` is deprecated in favour of the separate `uvicorn-worker` package but still
shipped with the pinned uvicorn: using it spares a dependency. Only gunicorn imports this module.
"""
from __future__ import annotations

from uvicorn.workers import UvicornWorker


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's gunicorn worker (uvicorn's own httptools parser and uvloop loop in each forked
    worker) without the access log (every request is in the inference log; uvicorn's
    line per request cost ~4 % of the server's CPU) and without X-Forwarded-* rewriting (it binds
    to loopback)."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "access_log": False, "proxy_headers": False}

    def run(self) -> None:
        """Serve until told to stop, then write what the capture still holds (`core/serving/capture.py`)."""
        from core.serving import capture

        try:
            super().run()
        finally:
            capture.flush_at_exit()
