"""Atomic writes: a temporary file a killed writer left behind is removed by the next write."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from core.files import atomic_write_parquet, atomic_write_text, remove_orphan_temps


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_write_removes_a_killed_writers_temp_file_only(tmp_path: Path) -> None:
    target = tmp_path / "prod_predictions.parquet"
    dead = tmp_path / f".{target.name}.{_dead_pid()}.abc123.tmp"
    dead.write_bytes(b"half a parquet file")
    import os

    alive = tmp_path / f".{target.name}.{os.getpid()}.def456.tmp"  # a writer still at work
    alive.write_bytes(b"being written")
    other = tmp_path / ".other.parquet.1.x.tmp"
    other.write_bytes(b"someone else's")
    atomic_write_parquet(pd.DataFrame({"a": [1, 2]}), target)
    assert not dead.exists() and alive.exists() and other.exists()
    assert pd.read_parquet(target)["a"].tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, alive.name, other.name])
    assert remove_orphan_temps(tmp_path, target.name) == []  # the live writer's file stays


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "state.json", "old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    from core.files import atomic_write

    try:
        atomic_write(target, boom)
    except OSError:
        pass
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]
