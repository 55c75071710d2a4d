"""Acquisition, preparation and the training profile (`core/data/acquire.py`, `preparation.py`,
`profile.py`) on the tiny dataset."""
from __future__ import annotations

import dataclasses
import functools
import http.server
import math
import shutil
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.data import acquire, preparation, profile
from core.dataset import Subset
from core.errors import ChecksumError, DataUnavailableError, NotPreparedError
from core.files import sha256_file
from tests.unit.conftest import (
    DEV_FILE,
    DEV_MISSING,
    DEV_RETAIL,
    DEV_WHOLESALE,
    FEATURES,
    PROD_FILE,
    PROD_ONLINE,
    PROD_RETAIL,
    TARGET,
    Lab,
    definition_text,
    dev_frame,
    make_settings,
    prod_frame,
    with_spec,
    write_definition,
)


def _raw_files(s: Settings) -> list[str]:
    """Every file in data/01_raw (temporary files included)."""
    return sorted(p.name for p in s.raw_dir.iterdir()) if s.raw_dir.exists() else []


# --------------------------------------------------------------------------- acquisition
def test_acquire_copies_the_raw_files_from_the_data_folder(tiny: Settings, source_dir: Path) -> None:
    summary = acquire.acquire(tiny)
    assert summary.files == {DEV_FILE: "copied", PROD_FILE: "copied"}
    assert summary.raw_dir == str(tiny.raw_dir)
    for name in (DEV_FILE, PROD_FILE):
        assert (tiny.raw_dir / name).read_bytes() == (source_dir / name).read_bytes()
    assert tiny.raw_dev == tiny.raw_dir / DEV_FILE and tiny.raw_prod == tiny.raw_dir / PROD_FILE
    assert acquire.acquire(tiny).files == {DEV_FILE: "present", PROD_FILE: "present"}


def test_a_non_default_dataset_keeps_its_data_apart(tiny: Settings) -> None:
    assert tiny.data_dir == tiny.home / "data" / "datasets" / "tiny"
    assert tiny.raw_dir == tiny.data_dir / "01_raw" and tiny.mlruns_dir == tiny.home / "mlruns"
    assert tiny.features == FEATURES and tiny.target == TARGET
    assert (tiny.experiment_name, tiny.model_name) == ("tiny-experiment", "tiny-model")
    assert tiny.model_uri == "models:/tiny-model@champion"


def test_a_checksum_mismatch_is_refused_and_nothing_lands_in_raw(tiny: Settings, source_dir: Path,
                                                                 tmp_path: Path) -> None:
    bad = tmp_path / "tampered"
    shutil.copytree(source_dir, bad)
    with open(bad / DEV_FILE, "ab") as fh:
        fh.write(b"tampered")
    s = tiny.replace(source_dir=bad)
    with pytest.raises(ChecksumError) as err:
        acquire.acquire(s)
    msg = str(err.value)
    assert DEV_FILE in msg and s.dataset.source(DEV_FILE).sha256 in msg and sha256_file(bad / DEV_FILE) in msg
    assert _raw_files(s) == []


def test_a_corrupt_present_file_is_replaced_not_used(tiny: Settings, source_dir: Path) -> None:
    tiny.raw_dir.mkdir(parents=True)
    tiny.raw_dev.write_bytes(b"not parquet")
    assert acquire.acquire(tiny).files == {DEV_FILE: "copied", PROD_FILE: "copied"}
    assert sha256_file(tiny.raw_dev) == sha256_file(source_dir / DEV_FILE)


def test_a_file_missing_from_the_data_folder_is_named(tiny: Settings, tmp_path: Path, source_dir: Path) -> None:
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(source_dir / DEV_FILE, half / DEV_FILE)
    with pytest.raises(DataUnavailableError) as err:
        acquire.acquire(tiny.replace(source_dir=half))
    assert PROD_FILE in str(err.value) and str(half) in str(err.value)
    assert _raw_files(tiny) == [DEV_FILE]  # the first file was fine and stays


def test_without_a_data_folder_or_an_address_the_files_cannot_be_had(tiny: Settings) -> None:
    with pytest.raises(DataUnavailableError, match=f"{DEV_FILE} is missing .*no download address"):
        acquire.acquire(tiny.replace(source_dir=None))


def test_a_source_without_a_published_sum_is_taken_as_it_is(tiny: Settings, tmp_path: Path,
                                                            source_dir: Path) -> None:
    own = tmp_path / "own"
    shutil.copytree(source_dir, own)
    with open(own / DEV_FILE, "ab") as fh:
        fh.write(b"edited by the analyst")
    s = with_spec(tiny.replace(source_dir=own), sources=tuple(dataclasses.replace(src, sha256="")
                                                               for src in tiny.dataset.sources))
    assert acquire.acquire(s).files == {DEV_FILE: "copied", PROD_FILE: "copied"}
    assert (s.raw_dir / DEV_FILE).read_bytes() == (own / DEV_FILE).read_bytes()


@pytest.fixture
def http_folder(source_dir: Path) -> Iterator[str]:
    """The raw files served over HTTP on the loopback (a stand-in for their public address)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source_dir))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _downloading(s: Settings, base_url: str, **changes: str) -> Settings:
    sources = tuple(dataclasses.replace(src, url=f"{base_url}/{src.file}", **changes) for src in s.dataset.sources)
    return with_spec(s.replace(source_dir=None, download_timeout_s=5.0), sources=sources)


def test_acquire_downloads_from_the_address_and_checks_the_sum(tiny: Settings, http_folder: str,
                                                               source_dir: Path) -> None:
    s = _downloading(tiny, http_folder)
    seen: list[tuple[float, str]] = []
    assert acquire.acquire(s, on_progress=lambda f, step: seen.append((f, step))).files == {
        DEV_FILE: "downloaded", PROD_FILE: "downloaded"}
    assert sha256_file(s.raw_dir / PROD_FILE) == sha256_file(source_dir / PROD_FILE)
    assert seen and all(0.0 <= f <= 1.0 for f, _ in seen) and seen[-1][0] == 1.0


def test_a_download_with_the_wrong_sum_does_not_land(tiny: Settings, http_folder: str) -> None:
    s = _downloading(tiny, http_folder, sha256="0" * 64)
    with pytest.raises(ChecksumError, match=DEV_FILE):
        acquire.acquire(s)
    assert _raw_files(s) == []


def test_offline_the_message_names_the_files_and_what_to_do(tiny: Settings) -> None:
    from core.serving.server import free_port

    s = _downloading(tiny, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(DataUnavailableError) as err:
        acquire.acquire(s)
    msg = str(err.value)
    assert f"{DEV_FILE} and {PROD_FILE}" in msg and "Tiny churn" in msg
    assert "WORKBENCH_DATA_DIR" in msg and str(s.raw_dir) in msg and "could not download from 127.0.0.1" in msg
    assert _raw_files(s) == []


# --------------------------------------------------------------------------- preparation
def test_prepare_forms_dev_and_prod_through_the_where_queries(lab: Lab) -> None:
    s, prep = lab.settings, lab.prep
    retail_complete = DEV_RETAIL - sum(DEV_MISSING.values())
    assert (prep.raw_rows, prep.rows) == (DEV_RETAIL + DEV_WHOLESALE, retail_complete)
    assert (prep.prod_raw_rows, prep.prod_rows) == (PROD_ONLINE + PROD_RETAIL, PROD_ONLINE)
    raw_dev, raw_prod = dev_frame(), prod_frame()
    filtered, prod = preparation.load_split(s, "filtered"), preparation.load_split(s, "prod")
    retail_ids = set(raw_dev.loc[raw_dev["segment"] == "retail", "customer_id"])
    incomplete = set(raw_dev.loc[raw_dev[[*FEATURES, TARGET]].isna().any(axis=1), "customer_id"])
    assert set(filtered["customer_id"]) == retail_ids - incomplete
    assert set(prod["customer_id"]) == set(raw_prod.loc[raw_prod["segment"] == "online", "customer_id"])


def test_prepared_files_keep_features_target_and_display_columns_without_gaps(lab: Lab) -> None:
    s = lab.settings
    for name in ("filtered", "train", "test", "prod"):
        frame = preparation.load_split(s, name)
        assert list(frame.columns) == [*FEATURES, TARGET, "customer_id"], name
        assert not frame.isna().any().any(), name
        assert frame[TARGET].dtype == "int64" and set(frame[TARGET]) == {0, 1}, name
    for path in lab.prep.outputs.values():
        assert Path(path).is_file() and Path(path).suffix == ".parquet"
    assert preparation.is_prepared(s)


def test_the_split_is_stratified_with_the_asked_test_share(lab: Lab) -> None:
    prep = lab.prep
    assert prep.train_rows + prep.test_rows == prep.rows
    assert prep.test_rows == math.ceil(prep.test_size * prep.rows)  # scikit-learn rounds the test share up
    rate = prep.positive_rate
    assert abs(rate["train"] - rate["test"]) <= 1.0 / prep.test_rows
    train, test = preparation.load_split(lab.settings, "train"), preparation.load_split(lab.settings, "test")
    assert not set(train["customer_id"]) & set(test["customer_id"])
    assert rate["train"] == pytest.approx(train[TARGET].mean(), abs=1e-6)


def test_the_split_is_reproducible_and_depends_on_the_seed(lab: Lab) -> None:
    filtered = preparation.load_split(lab.settings, "filtered")
    a, _ = preparation.split(filtered, 0.2, 42, TARGET)
    b, _ = preparation.split(filtered, 0.2, 42, TARGET)
    c, _ = preparation.split(filtered, 0.2, 43, TARGET)
    assert a["customer_id"].tolist() == b["customer_id"].tolist()
    assert a["customer_id"].tolist() != c["customer_id"].tolist()
    train = preparation.load_split(lab.settings, "train")
    assert train["customer_id"].tolist() == a["customer_id"].tolist()  # prepare used seed 42


def test_prepare_logs_its_mlflow_run(lab: Lab) -> None:
    from core import tracking

    s, prep = lab.settings, lab.prep
    run = tracking.last_run(s, preparation.PREPARE_RUN)
    assert run is not None and run["run_id"] == prep.mlflow_run_id and run["status"] == "FINISHED"
    assert run["params"]["features"] == ",".join(FEATURES) and run["params"]["target"] == TARGET
    assert run["params"]["seed"] == "42" and float(run["params"]["test_size"]) == 0.2
    assert run["metrics"]["rows_train"] == prep.train_rows and run["metrics"]["rows_prod"] == prep.prod_rows
    inputs = tracking.client(s).get_run(prep.mlflow_run_id).inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"data_filtered", "base_train", "base_test", "prod_filtered"}


def test_rows_dropped_for_missing_values_do_not_count_rows_left_out_by_where(lab: Lab) -> None:
    assert lab.prep.dropped_missing == sum(DEV_MISSING.values())


def test_overview_reads_the_counts_back(lab: Lab) -> None:
    o = preparation.overview(lab.settings)
    assert o.steps["dev raw"] == DEV_RETAIL + DEV_WHOLESALE and o.steps["prod raw"] == PROD_ONLINE + PROD_RETAIL
    assert o.split_rows == {"train": lab.prep.train_rows, "test": lab.prep.test_rows, "prod": lab.prep.prod_rows}
    assert o.positive_rate["prod"] == pytest.approx(lab.prep.positive_rate["prod"], abs=1e-6)
    assert o.duplicates == lab.prep.duplicates


def test_select_rows_keeps_all_without_a_query_and_refuses_a_bad_one() -> None:
    raw = dev_frame()
    assert preparation.select_rows(raw, "", "dev") is raw
    with pytest.raises(DataUnavailableError, match=r"dev query .*'segment ==='"):
        preparation.select_rows(raw, "segment ===", "dev")
    with pytest.raises(DataUnavailableError, match="colour"):
        preparation.select_rows(raw, 'colour == "red"', "prod")


def test_select_columns_refuses_raw_data_without_a_feature(tiny: Settings) -> None:
    with pytest.raises(DataUnavailableError, match=r"support_calls.*Tiny churn"):
        preparation.select_columns(dev_frame().drop(columns=["support_calls"]), tiny)


def test_prepare_refuses_a_bad_test_share_before_doing_anything(tiny: Settings) -> None:
    with pytest.raises(DataUnavailableError, match="between 0 and 1"):
        preparation.prepare(tiny, test_size=1.5)
    assert not tiny.raw_dir.exists() and not tiny.mlruns_dir.exists()


def test_prepare_with_a_bad_where_query_writes_no_split(tiny: Settings) -> None:
    s = with_spec(tiny, dev=Subset(source=DEV_FILE, where="segment == retail"))  # unquoted: a column name
    with pytest.raises(DataUnavailableError, match="dev query"):
        preparation.prepare(s)
    assert not preparation.is_prepared(s) and not s.model_input_dir.exists()


def test_unprepared_splits_say_how_to_prepare(tiny: Settings) -> None:
    assert not preparation.is_prepared(tiny)
    with pytest.raises(NotPreparedError, match="prepare the data first"):
        preparation.load_split(tiny, "train")


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Settings:
    """Settings in the lab's home for a copy of the tiny data whose target is coded 2 (churned) / 1 (stayed)."""
    folder = tmp_path_factory.mktemp("coded_sources")
    for name, frame in ((DEV_FILE, dev_frame()), (PROD_FILE, prod_frame())):
        frame.assign(**{TARGET: frame[TARGET] + 1}).to_parquet(folder / name, index=False)
    spec = write_definition(folder / "def", definition_text(folder, name="tiny-coded", positive=2, negative=1))
    return make_settings(lab.settings.home, spec, folder)


def test_prepare_maps_the_targets_positive_and_negative_values_to_1_and_0(coded: Settings) -> None:
    prep = preparation.prepare(coded)
    train = preparation.load_split(coded, "train")
    assert set(train[TARGET]) == {0, 1}
    assert 0.0 < prep.positive_rate["train"] < 1.0


# --------------------------------------------------------------------------- profile
def test_training_ranges_and_the_warnings_for_rows_outside_them(lab: Lab) -> None:
    train = preparation.load_split(lab.settings, "train")
    ranges = profile.training_ranges(train, FEATURES)
    assert ranges["usage_hours"] == (train["usage_hours"].min(), train["usage_hours"].max())
    assert ranges["premium"] == (0.0, 1.0)
    inside = {f: lo for f, (lo, _) in ranges.items()}
    assert profile.out_of_training_range(inside, ranges, "customer") == []
    high = ranges["usage_hours"][1] + 5
    warnings = profile.out_of_training_range({**inside, "usage_hours": high}, ranges, "customer")
    assert len(warnings) == 1 and warnings[0].startswith(f"usage_hours = {high:g} lies outside")
    assert "such a customer" in warnings[0]


def test_share_out_of_range_per_feature() -> None:
    ranges = {"a": (0.0, 10.0), "b": (1.0, 2.0)}
    df = pd.DataFrame({"a": [-1.0, 5.0, 11.0, 10.0], "b": [1.0, 1.5, 2.0, 2.0]})
    assert profile.share_out_of_range(df, ranges) == {"a": 0.5, "b": 0.0}
    assert profile.share_out_of_range(df.iloc[0:0], ranges) == {"a": 0.0, "b": 0.0}


def test_the_typical_row_follows_the_definition(lab: Lab) -> None:
    train = preparation.load_split(lab.settings, "train")
    row = profile.typical_row(train, lab.settings.dataset)
    assert list(row) == list(FEATURES)
    assert row["premium"] == float(train["premium"].mode().iloc[0])  # a listed value: the most frequent
    assert row["support_calls"] == round(train["support_calls"].median())  # whole numbers stay whole
    assert row["usage_hours"] == pytest.approx(train["usage_hours"].median(), abs=1e-4)
    lab.settings.dataset.rules.validate_row(row)
    assert np.isclose(row["support_calls"], round(row["support_calls"]))


def test_a_definition_without_production_data_is_refused_or_prepared(tiny: Settings, source_dir: Path) -> None:
    import tomllib

    from core import catalog
    from core.dataset import DatasetError
    from core.errors import WorkbenchError

    raw = tomllib.loads(definition_text(source_dir))
    del raw["prod"]
    try:
        spec = catalog.from_dict(raw, where="tiny/dataset.toml")
    except DatasetError:  # saying [prod] is required is one right answer
        return
    s = tiny.replace(dataset=spec)
    assert s.raw_prod is None
    try:
        preparation.prepare(s)
    except WorkbenchError as err:  # an expected problem, explained
        assert "prod" in str(err)
        return
    assert s.train_path.exists() and s.test_path.exists()  # preparing the dev splits is the other
