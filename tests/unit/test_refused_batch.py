"""A refused batch writes nothing (issue 29, item 7): every check of a batch comes before the
first write, caches included. `drift --batch` of a file with a value far outside a feature's
domain, a missing column, no rows or unreadable bytes exits 2 and leaves the home's `data/` and
`mlruns/` byte for byte as they were: no training reference or sample, no model copy, no stored
batch, no queued run, no change to the SQLite store. The same for `retrain --batch`, `apply
--batch` and the Drift page's reader; a valid batch still builds the caches it needs.

Each test works on a fresh copy of one prepared home with a champion and no caches yet (the
case where a check has the most to write)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from core import catalog, cli
from core.config import Settings
from core.data import batches, preparation
from core.data.batch_files import BatchError
from core.dataset import DatasetSpec
from core.monitoring import reference, stream
from core.modeling import registry
from core.monitoring.champion import model_cache_path
from tests.unit.conftest import make_settings, register_lr

FAR = 1.7e308  # finite, far outside usage_hours' domain 0..100 (and beyond float32)


# --------------------------------------------------------------------------- homes
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec, source_dir: Path) -> Settings:
    """A home with the tiny data prepared and a champion, never checked: no reference, no
    training sample, no model copy, no stored batch."""
    from core.modeling import promotion, registry

    s = make_settings(tmp_path_factory.mktemp("pristine") / "home", spec, source_dir)
    preparation.prepare(s)
    promotion.promote(s, register_lr(s, run_name="refused-batch-fixture")[0])
    assert not s.monitoring_dir.exists() and not s.batches_dir.exists()
    return s


@pytest.fixture
def home(pristine: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh copy of the pristine home, which `python -m core` (`cli.main`) works on."""
    s = make_settings(tmp_path / "home", pristine.dataset, pristine.source_dir)
    shutil.copytree(pristine.home, s.home)
    monkeypatch.setattr(catalog, "search_dirs", lambda extra=(): (s.dataset.folder.parent, catalog.BUILTIN_DIR))
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    return s


def snapshot(s: Settings) -> dict[str, str]:
    """Every file and folder under the home's `data/` and `mlruns/`: path -> SHA-256 (a folder: "dir")."""
    out = {}
    for top in (s.home / "data", s.home / "mlruns"):
        for p in sorted(top.rglob("*")):
            out[str(p.relative_to(s.home))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two snapshots, one line per path (empty: nothing)."""
    return ([f"added {p}" for p in sorted(set(after) - set(before))]
            + [f"removed {p}" for p in sorted(set(before) - set(after))]
            + [f"changed {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]])


def run(s: Settings, *words: str) -> int:
    return cli.main(["--dataset", s.dataset.name, *words, "--json"])


# --------------------------------------------------------------------------- batches
def rows(s: Settings, n: int = 60) -> pd.DataFrame:
    """`n` labelled rows of the prepared test split, as the model takes them."""
    return preparation.load_split(s, "test").head(n).reset_index(drop=True)


def far_value(s: Settings) -> pd.DataFrame:
    return rows(s).assign(usage_hours=lambda d: d["usage_hours"].where(d.index != 7, FAR))


def missing_column(s: Settings) -> pd.DataFrame:
    return rows(s).drop(columns=["support_calls"])


def no_rows(s: Settings) -> pd.DataFrame:
    return rows(s).head(0)


def not_numeric(s: Settings) -> pd.DataFrame:
    return rows(s).astype({"usage_hours": str}).assign(usage_hours=lambda d: d["usage_hours"].where(
        d.index != 3, "lots"))  # a text column, as a spreadsheet exports it


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


BAD: dict[str, Callable[[Settings], pd.DataFrame]] = {
    "far_value": far_value, "missing_column": missing_column, "no_rows": no_rows, "not_numeric": not_numeric}


# --------------------------------------------------------------------------- drift --batch
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_refused_drift_batch_leaves_the_home_as_it_was(home: Settings, tmp_path: Path, case: str, suffix: str,
                                                         capsys: pytest.CaptureFixture) -> None:
    path = write(BAD[case](home), tmp_path / f"{case}{suffix}")
    before = snapshot(home)
    assert run(home, "drift", "--batch", str(path)) == 2
    assert '"kind": "BatchError"' in capsys.readouterr().out
    assert changes(before, snapshot(home)) == []


def test_the_issues_case_in_a_home_of_its_own(spec: DatasetSpec, source_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """As reported, in a home not copied: its registry's artifacts are its own, so a model loaded
    from them (MLflow then writes `registered_model_meta` beside them) would show in `mlruns/`."""
    from core.modeling import promotion, registry

    s = make_settings(tmp_path / "own", spec, source_dir)
    preparation.prepare(s)
    promotion.promote(s, register_lr(s, run_name="refused-batch-own-home")[0])
    monkeypatch.setattr(catalog, "search_dirs", lambda extra=(): (s.dataset.folder.parent, catalog.BUILTIN_DIR))
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    path = write(far_value(s), tmp_path / "far.parquet")
    before = snapshot(s)
    assert run(s, "drift", "--batch", str(path)) == 2
    assert changes(before, snapshot(s)) == []


@pytest.mark.parametrize("content", [b"PAR1 not really parquet PAR1", b"\x89PNG\r\n\x1a\n....", b""])
def test_an_unreadable_drift_batch_leaves_the_home_as_it_was(home: Settings, tmp_path: Path,
                                                             content: bytes) -> None:
    path = tmp_path / "batch.parquet"
    path.write_bytes(content)
    before = snapshot(home)
    assert run(home, "drift", "--batch", str(path)) == 2
    assert changes(before, snapshot(home)) == []


def test_drop_invalid_refusing_every_row_leaves_the_home_as_it_was(home: Settings, tmp_path: Path) -> None:
    path = write(rows(home).assign(usage_hours=FAR), tmp_path / "all_bad.parquet")
    before = snapshot(home)
    assert run(home, "drift", "--batch", str(path), "--drop-invalid") == 2  # no valid rows left
    assert changes(before, snapshot(home)) == []


def test_a_bad_record_batch_late_in_a_streamed_file_writes_nothing(home: Settings, tmp_path: Path) -> None:
    """Read in record batches of 20 rows, the file's only bad row is in its last one: the champion
    and the reference are not cached before the whole file was read and found valid."""
    frame = rows(home, 100)
    frame.loc[95, "usage_hours"] = FAR
    path = write(frame, tmp_path / "late.parquet")
    assert stream.streamable(path, home)
    before = snapshot(home)
    with pytest.raises(BatchError, match="usage_hours"):
        stream.check_file(path, home, model=registry.champion(home), log=False, chunk_rows=20)
    assert changes(before, snapshot(home)) == []


# --------------------------------------------------------------------------- retrain, apply, the page's reader
def test_a_refused_retrain_batch_stores_none_of_the_batches(home: Settings, tmp_path: Path) -> None:
    good = write(rows(home), tmp_path / "good.csv")
    bad = write(far_value(home), tmp_path / "bad.parquet")
    before = snapshot(home)
    assert run(home, "retrain", "--batch", str(good), "--batch", str(bad)) == 2
    assert changes(before, snapshot(home)) == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_refused_apply_batch_leaves_the_home_as_it_was(home: Settings, tmp_path: Path, suffix: str) -> None:
    path = write(far_value(home), tmp_path / f"bad{suffix}")
    before = snapshot(home)
    assert run(home, "apply", "--batch", str(path), "--in-process") == 2
    assert changes(before, snapshot(home)) == []


def test_the_drift_pages_reader_refuses_an_upload_without_writing(home: Settings) -> None:
    """The Drift page hands the uploaded file to `batches.read_batch` before `check.check`."""
    import io

    buf = io.BytesIO()
    far_value(home).to_parquet(buf, index=False)
    upload = io.BytesIO(buf.getvalue())
    upload.name = "upload.parquet"
    before = snapshot(home)
    with pytest.raises(BatchError, match="usage_hours"):
        batches.read_batch(upload, home, name="upload.parquet")
    assert changes(before, snapshot(home)) == []


# --------------------------------------------------------------------------- a valid batch
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_valid_drift_batch_builds_the_caches_and_stores_the_batch(home: Settings, tmp_path: Path,
                                                                    suffix: str) -> None:
    path = write(rows(home), tmp_path / f"good{suffix}")
    assert run(home, "drift", "--batch", str(path), "--wait-for-mlflow") == 0
    ref = reference.load_reference(home)
    info = registry.champion(home)
    assert info is not None
    assert reference.reference_path(home).is_file() and reference.sample_path(home, ref.train_digest).is_file()
    assert model_cache_path(home, info.version, info.run_id).is_file()
    assert len(list(home.batches_dir.glob(f"*{suffix}"))) == 1
    before = snapshot(home)  # a second check finds every cache in place
    assert run(home, "drift", "--batch", str(path), "--wait-for-mlflow", "--no-domain") == 0
    again = changes(before, snapshot(home))
    assert not any("09_monitoring/" in line and "pending_runs" not in line for line in again), again
    # with every cache in place, a refused batch is still refused before anything is written
    bad = write(far_value(home), tmp_path / f"bad{suffix}")
    before = snapshot(home)
    assert run(home, "drift", "--batch", str(bad)) == 2
    assert changes(before, snapshot(home)) == []
