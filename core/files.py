"""Small file helpers: checksums and atomic writes (temp file, then rename)."""
from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


TEMP_SUFFIX = ".tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_orphan_temps(directory: Path, name: str) -> list[Path]:
    """Delete the temporary files `atomic_write` left beside `directory / name` when its process
    was killed (their names carry the writer's pid; a live writer's file is left alone)."""
    removed = []
    for tmp in directory.glob(f".{name}.*{TEMP_SUFFIX}"):
        parts = tmp.name[len(name) + 2:].split(".")
        if parts and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it over `path`.

    A failure leaves `path` as it was and removes the temporary file; a temporary file left by a
    killed writer (`kill -9` leaves no chance to remove it) is removed by the next write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temps(path.parent, path.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write a frame as parquet atomically."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def timestamp() -> str:
    """UTC timestamp for file names, e.g. 20261122T153000123456Z (sortable, unique enough)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def keep_previous(path: Path) -> Path | None:
    """Rename an existing file to `<stem>.<timestamp><suffix>` so a new one never overwrites it."""
    if not path.exists():
        return None
    kept = path.with_name(f"{path.stem}.{timestamp()}{path.suffix}")
    os.replace(path, kept)
    return kept
