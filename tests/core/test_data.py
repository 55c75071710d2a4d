"""Acquisition and preparation on the real Kobe files."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from core import tracking
from core.config import Settings
from core.data import acquire, preparation
from core.dataset import Source
from core.errors import ChecksumError, DataUnavailableError
from tests.conftest import ROOT, make_settings


def _source_dir() -> Path:
    s = Settings.from_env()
    if s.source_dir is None:
        pytest.skip("KOBE_DATA_DIR not set")
    return s.source_dir


def _with_sources(s: Settings, sources: list[Source]) -> Settings:
    """Settings whose dataset definition names other raw sources."""
    return s.replace(dataset=dataclasses.replace(s.dataset, sources=tuple(sources)))


def test_acquire_copies_from_data_dir_and_verifies(settings: Settings) -> None:
    _source_dir()
    summary = acquire.acquire(settings)
    assert summary.files == {"dataset_kobe_dev.parquet": "copied", "dataset_kobe_prod.parquet": "copied"}
    assert settings.raw_dev.exists() and settings.raw_prod.exists()
    assert acquire.acquire(settings).files["dataset_kobe_dev.parquet"] == "present"


def test_checksum_mismatch_is_rejected_and_nothing_written(tmp_path: Path) -> None:
    src = _source_dir()
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    for name in ("dataset_kobe_dev.parquet", "dataset_kobe_prod.parquet"):
        (bad_dir / name).write_bytes((src / name).read_bytes())
    with open(bad_dir / "dataset_kobe_dev.parquet", "ab") as fh:
        fh.write(b"tampered")
    s = make_settings(tmp_path / "home", source_dir=bad_dir)
    with pytest.raises(ChecksumError) as err:
        acquire.acquire(s)
    msg = str(err.value)
    assert "dataset_kobe_dev.parquet" in msg and s.dataset.source("dataset_kobe_dev.parquet").sha256 in msg
    assert not s.raw_dev.exists()
    assert not s.raw_dir.exists() or not any(s.raw_dir.glob("*"))


def test_corrupt_present_file_is_replaced_not_used(settings: Settings) -> None:
    _source_dir()
    settings.raw_dir.mkdir(parents=True)
    settings.raw_dev.write_bytes(b"not parquet")
    assert acquire.acquire(settings).files["dataset_kobe_dev.parquet"] == "copied"
    assert len(pd.read_parquet(settings.raw_dev)) == 24271


def test_offline_without_files_says_what_to_do(tmp_path: Path) -> None:
    # an address on the loopback that refuses connections: what offline looks like
    base = make_settings(tmp_path, source_dir=None, download_timeout_s=2.0)
    s = _with_sources(base, [dataclasses.replace(src, url="http://127.0.0.1:9/" + src.file)
                             for src in base.dataset.sources])
    with pytest.raises(DataUnavailableError) as err:
        acquire.acquire(s)
    msg = str(err.value)
    assert "dataset_kobe_dev.parquet and dataset_kobe_prod.parquet" in msg
    assert "KOBE_DATA_DIR" in msg and "WORKBENCH_DATA_DIR" in msg and str(s.raw_dir) in msg
    assert "could not download from 127.0.0.1" in msg and "HTTPConnectionPool" not in msg
    assert not s.raw_dev.exists()


def test_missing_file_in_data_dir(tmp_path: Path) -> None:
    s = make_settings(tmp_path / "home", source_dir=tmp_path / "empty")
    with pytest.raises(DataUnavailableError, match="KOBE_DATA_DIR"):
        acquire.acquire(s)


def test_prepare_outputs(prepared_settings: Settings) -> None:
    s = prepared_settings
    train, test = preparation.load_split(s, "train"), preparation.load_split(s, "test")
    prod, filtered = preparation.load_split(s, "prod"), preparation.load_split(s, "filtered")
    cols = [*s.dataset.model_columns, s.target]  # every feature set's features, then the label
    display = [c for c in s.dataset.display if c not in cols]
    for df in (train, test, prod, filtered):
        assert list(df.columns) == [*cols, *display]  # display columns kept, after the model's
        assert not df[cols].isna().any().any()
    assert (len(filtered), len(train), len(test), len(prod)) == (20285, 16228, 4057, 5412)
    assert abs(train[s.target].mean() - test[s.target].mean()) < 0.01  # stratified
    assert abs(len(test) / len(filtered) - 0.2) < 0.001


def test_prepare_is_deterministic_and_seed_matters(prepared_settings: Settings, tmp_path: Path) -> None:
    s2 = make_settings(tmp_path)
    preparation.prepare(s2)
    pd.testing.assert_frame_equal(preparation.load_split(prepared_settings, "test"), preparation.load_split(s2, "test"))
    preparation.prepare(s2, seed=7)
    assert not preparation.load_split(prepared_settings, "test").equals(preparation.load_split(s2, "test"))


def test_prepare_logs_mlflow_run(prepared_settings: Settings) -> None:
    run = tracking.last_run(prepared_settings, preparation.PREPARE_RUN)
    assert run is not None and run["status"] == "FINISHED"
    assert run["metrics"]["rows_train"] == 16228 and run["metrics"]["rows_test"] == 4057
    assert run["metrics"]["rows_dropped_missing"] == 3986
    assert run["params"]["seed"] == "42" and run["params"]["test_size"] == "0.2"
    full = mlflow.MlflowClient(prepared_settings.tracking_uri).get_run(run["run_id"])
    contexts = {d.tags[0].value for d in full.inputs.dataset_inputs}
    assert contexts == {"data_filtered", "base_train", "base_test", "prod_filtered"}


def test_bad_test_size_rejected(settings: Settings) -> None:
    with pytest.raises(DataUnavailableError, match="between 0 and 1"):
        preparation.prepare(settings, test_size=1.5)
    assert not settings.train_path.exists()


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_prepare_json(tmp_path: Path) -> None:
    _source_dir()
    out = _cli(["prepare", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object
    assert result["rows"] == 20285 and result["train_rows"] == 16228 and result["test_rows"] == 4057
    assert result["prod_rows"] == 5412
    assert set(result["positive_rate"]) == {"all", "train", "test", "prod"}
    assert len(result["mlflow_run_id"]) == 32


def test_cli_bad_input_exit_2_without_traceback(tmp_path: Path) -> None:
    out = _cli(["prepare", "--test-size", "2", "--json"], tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "between 0 and 1" in out.stderr
    assert json.loads(out.stdout)["error"]["kind"] == "usage"  # with --json: one JSON error object
