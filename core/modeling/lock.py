"""The one training lock of a workbench home: a second training, from any session or the
command line, is refused while one runs (`TrainingBusyError`, naming the holder).
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from typing import Iterator

from core.config import Settings
from core.errors import TrainingBusyError


# --------------------------------------------------------------------------- lock
def _lock_path(settings: Settings):
    return settings.runtime_dir / "training.lock"


def _owner_path(settings: Settings):
    return settings.runtime_dir / "training.owner.json"


@contextmanager
def training_lock(settings: Settings) -> Iterator[None]:
    """Hold the one training lock of this home (non-blocking); TrainingBusyError when taken."""
    from filelock import FileLock, Timeout

    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(_lock_path(settings)), thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout as err:
        raise TrainingBusyError(
            f"A training is already running{running_since(settings)}. Wait for it to finish "
            "(the Compare page lists its candidates when it is done), then start another."
        ) from err
    try:
        _owner_path(settings).write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
        yield
    finally:
        lock.release()


def running_since(settings: Settings) -> str:
    """' (since HH:MM:SS, process N)' for the holder of the lock, or '' when unknown."""
    try:
        owner = json.loads(_owner_path(settings).read_text())
    except (OSError, ValueError):
        return ""
    return f" (since {time.strftime('%H:%M:%S', time.localtime(owner['started']))}, process {owner['pid']})"


def is_training(settings: Settings) -> bool:
    """True while some process or session holds the training lock."""
    try:
        with training_lock(settings):
            return False
    except TrainingBusyError:
        return True
