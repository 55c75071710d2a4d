"""The one lifecycle lock of a workbench home: training, retraining and promotion share it, so
that a second one, from any session or the command line, is refused while one runs
(`TrainingBusyError`, or the caller's own error type, naming what holds it and since when).
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
def training_lock(settings: Settings, activity: str = "training",
                  busy: type[Exception] = TrainingBusyError) -> Iterator[None]:
    """Hold the one lifecycle lock of this home (non-blocking) for `activity` ("training",
    "retraining", "promotion"); `busy` (TrainingBusyError by default) when something holds it.
    The lock is released by the OS when its process dies, so a killed holder never blocks the next."""
    from filelock import FileLock, Timeout

    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(_lock_path(settings)), thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout as err:
        raise busy(
            f"A {holder(settings)} is already running{running_since(settings)}. Training, retraining and "
            f"promotion take turns: wait for it to finish (the Compare page lists its result when it is "
            f"done), then start the {activity} again."
        ) from err
    try:
        _owner_path(settings).write_text(json.dumps({"pid": os.getpid(), "started": time.time(),
                                                     "activity": activity}))
        yield
    finally:
        lock.release()


def _owner(settings: Settings) -> dict:
    try:
        owner = json.loads(_owner_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def holder(settings: Settings) -> str:
    """What holds (or last held) the lock: "training", "retraining" or "promotion"."""
    return str(_owner(settings).get("activity", "training"))


def running_since(settings: Settings) -> str:
    """' (since HH:MM:SS, process N)' for the holder of the lock, or '' when unknown."""
    owner = _owner(settings)
    if "started" not in owner or "pid" not in owner:
        return ""
    return f" (since {time.strftime('%H:%M:%S', time.localtime(owner['started']))}, process {owner['pid']})"


def is_training(settings: Settings) -> bool:
    """True while some process or session holds the training lock."""
    try:
        with training_lock(settings):
            return False
    except TrainingBusyError:
        return True
