"""Settings from the environment (`core/config.py`), file helpers (`core/files.py`) and progress
reporting (`core/progress.py`)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core import files
from core.config import Settings
from core.dataset import DatasetError, DatasetSpec
from core.errors import ConfigError
from core.progress import report, scaled


def test_settings_read_the_environment(tmp_path: Path, spec: DatasetSpec) -> None:
    env = {"WORKBENCH_HOME": str(tmp_path / "home"), "KOBE_DATA_DIR": str(tmp_path / "raw"),
           "WORKBENCH_SERVE_PORT": "6001", "WORKBENCH_SERVE_WORKERS": "3", "WORKBENCH_APP_PORT": "9000",
           "MLFLOW_TRACKING_URI": "http://tracking.example:5000"}
    s = Settings.from_env(env, dataset=spec)
    assert s.home == (tmp_path / "home").resolve() and s.source_dir == (tmp_path / "raw").resolve()
    assert (s.serve_port, s.serve_workers, s.app_port) == (6001, 3, 9000)
    assert s.tracking_uri == "http://tracking.example:5000" and not s.embedded_tracking
    assert s.artifact_location is None and s.serve_url == "http://127.0.0.1:6001"
    preferred = Settings.from_env({**env, "WORKBENCH_DATA_DIR": str(tmp_path / "other")}, dataset=spec)
    assert preferred.source_dir == (tmp_path / "other").resolve()  # WORKBENCH_DATA_DIR first
    embedded = Settings.from_env({"WORKBENCH_HOME": str(tmp_path)}, dataset=spec)
    assert embedded.embedded_tracking and embedded.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()


def test_the_dataset_comes_from_the_environment_unless_given(tmp_path: Path, spec: DatasetSpec) -> None:
    env = {"WORKBENCH_HOME": str(tmp_path), "WORKBENCH_DATASET": "kobe"}
    assert Settings.from_env(env).dataset.name == "kobe"
    assert Settings.from_env({**env, "WORKBENCH_DATASET": "nosuch"}, dataset=spec).dataset.name == "tiny"
    with pytest.raises(DatasetError, match="no dataset called 'nosuch'"):
        Settings.from_env({**env, "WORKBENCH_DATASET": "nosuch"})
    kobe = Settings.from_env(env)
    assert kobe.data_dir == tmp_path.resolve() / "data"  # the embedded default keeps data/ itself


@pytest.mark.parametrize("workers", ["0", "17", "two", "-1"])
def test_a_bad_worker_count_is_refused(tmp_path: Path, spec: DatasetSpec, workers: str) -> None:
    with pytest.raises(ConfigError, match="WORKBENCH_SERVE_WORKERS must be a whole number from 1 to 16"):
        Settings.from_env({"WORKBENCH_HOME": str(tmp_path), "WORKBENCH_SERVE_WORKERS": workers}, dataset=spec)


def test_replace_gives_a_changed_copy(tiny: Settings) -> None:
    other = tiny.replace(seed=7)
    assert other.seed == 7 and tiny.seed == 42 and other.dataset is tiny.dataset


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.txt"
    files.atomic_write(path, lambda tmp: tmp.write_text("first"))
    assert path.read_text() == "first"

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_write(path, broken)
    assert path.read_text() == "first" and sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]
    assert files.sha256_file(path) == hashlib.sha256(b"first").hexdigest()


def test_keep_previous_renames_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    assert files.keep_previous(path) is None
    path.write_text("old")
    kept = files.keep_previous(path)
    assert kept is not None and not path.exists() and kept.read_text() == "old"
    assert kept.name.startswith("out.") and kept.suffix == ".parquet"


def test_progress_is_clipped_and_scaled() -> None:
    seen: list[tuple[float, str]] = []
    record = lambda f, step: seen.append((f, step))  # noqa: E731
    report(record, 1.5, "over")
    report(record, -1, "under")
    half = scaled(record, 0.5, 0.7)
    half(0.5, "middle")
    assert seen == [(1.0, "over"), (0.0, "under"), (pytest.approx(0.6), "middle")]
    assert scaled(None, 0, 1) is None
    report(None, 0.5, "nobody listens")
