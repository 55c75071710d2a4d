"""Fixtures of the unit tests: a tiny dataset that is not Kobe, described by its own definition.

"tiny" predicts whether a customer churned from two numeric features (`usage_hours`, a
continuous range; `support_calls`, a whole-number range) and one binary feature (`premium`).
Its two raw sources are written by the fixtures (a dev and a production parquet file, their
SHA-256 put into the definition), and `where` queries on a `segment` column form the dev set
(retail customers) and the production set (online customers). Production is shifted: more
usage, more calls, more premium customers, so drift checks have something to find.

The definition is written as TOML text and parsed with `catalog.load`, so the parser is
exercised by every test that uses it.
"""
from __future__ import annotations

from core.modeling import promotion

import dataclasses
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.config import Settings
from core.dataset import DatasetSpec
from core.files import sha256_file

DEV_FILE, PROD_FILE = "tiny_dev.parquet", "tiny_prod.parquet"
FEATURES = ("usage_hours", "support_calls", "premium")
TARGET = "churn"
# what the raw files hold, by construction (see `dev_frame`, `prod_frame`)
DEV_RETAIL, DEV_WHOLESALE = 640, 160
DEV_MISSING = {"usage_hours": 5, "support_calls": 3, TARGET: 4}  # retail rows with a missing value
PROD_ONLINE, PROD_RETAIL = 360, 90

TOML = """\
# a tiny churn dataset for the unit tests (not Kobe)
name = "{name}"
title = "Tiny churn"
description = "Did a customer churn? Dev: retail customers; production: online customers (shifted)."
row_noun = "customer"
rows_noun = "customers"
experiment = "{name}-experiment"
model_name = "{name}-model"
partition_by = "premium"
display = ["customer_id"]
example = {{ usage_hours = 35.5, support_calls = 2, premium = 0 }}

[target]
column = "churn"
positive = {positive}
negative = {negative}
positive_name = "churned"
negative_name = "stayed"

[[features]]
name = "usage_hours"
kind = "numeric"
label = "Monthly usage"
unit = "h"
help = "Hours of use in the last month."
min = 0.0
max = 100.0
step = 0.1

[[features]]
name = "support_calls"
kind = "numeric"
integer = true
label = "Support calls"
help = "Calls to support in the last month."
min = 0
max = 20

[[features]]
name = "premium"
kind = "binary"
label = "Plan"
values = [0, 1]
value_labels = {{ "0" = "Basic", "1" = "Premium" }}

[[sources]]
file = "{dev_file}"
sha256 = "{dev_sha}"

[[sources]]
file = "{prod_file}"
sha256 = "{prod_sha}"

[dev]
source = "{dev_file}"
where = 'segment == "retail"'
title = "retail customers"

[prod]
source = "{prod_file}"
where = 'segment == "online"'
title = "online customers"
"""


# --------------------------------------------------------------------------- data
def customers(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    """`n` customers; churn follows the same logistic law in dev and production."""
    usage = np.clip(rng.normal(70.0 if shifted else 40.0, 12.0, n), 0.0, 100.0).round(1)
    calls = np.clip(rng.poisson(7.0 if shifted else 3.0, n), 0, 20).astype("float64")
    premium = (rng.random(n) < (0.6 if shifted else 0.3)).astype("int64")
    logit = -0.08 * (usage - 40.0) + 0.6 * (calls - 3.0) - 1.2 * premium
    churn = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype("float64")
    return pd.DataFrame({"usage_hours": usage, "support_calls": calls, "premium": premium, TARGET: churn})


def dev_frame(seed: int = 7) -> pd.DataFrame:
    """The raw dev file: retail rows (some with a missing value) and wholesale rows (left out by `where`)."""
    rng = np.random.default_rng(seed)
    retail = customers(rng, DEV_RETAIL, shifted=False).assign(segment="retail")
    wholesale = customers(rng, DEV_WHOLESALE, shifted=True).assign(segment="wholesale")
    start = 0
    for column, k in DEV_MISSING.items():  # distinct retail rows
        retail.loc[start:start + k - 1, column] = np.nan
        start += k
    df = pd.concat([retail, wholesale], ignore_index=True)
    df.insert(0, "customer_id", np.arange(len(df)))
    df["notes"] = "x"  # a raw column that is neither a feature, the target nor a display column
    return df


def prod_frame(seed: int = 11) -> pd.DataFrame:
    """The raw production file: online customers (shifted) and retail ones (left out by `where`)."""
    rng = np.random.default_rng(seed)
    online = customers(rng, PROD_ONLINE, shifted=True).assign(segment="online")
    retail = customers(rng, PROD_RETAIL, shifted=False).assign(segment="retail")
    df = pd.concat([online, retail], ignore_index=True)
    df.insert(0, "customer_id", np.arange(len(df)) + 10_000)
    return df


def definition_text(source_dir: Path, name: str = "tiny", positive: Any = 1, negative: Any = 0) -> str:
    """The TOML definition of the tiny dataset, with the checksums of the files in `source_dir`."""
    return TOML.format(name=name, positive=positive, negative=negative, dev_file=DEV_FILE, prod_file=PROD_FILE,
                       dev_sha=sha256_file(source_dir / DEV_FILE), prod_sha=sha256_file(source_dir / PROD_FILE))


def write_definition(folder: Path, text: str) -> DatasetSpec:
    """Write `text` as `folder/dataset.toml` and parse it with `catalog.load`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dataset.toml"
    path.write_text(text, encoding="utf-8")
    return catalog.load(path)


def make_settings(home: Path, spec: DatasetSpec, source_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings for an isolated home on `spec`; the tracking store is always the embedded one."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=spec, source_dir=source_dir, **overrides)


def with_spec(settings: Settings, **changes: object) -> Settings:
    """`settings` on a copy of its definition with some fields changed (e.g. another model name)."""
    return settings.replace(dataset=dataclasses.replace(settings.dataset, **changes))


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the two raw files (what WORKBENCH_DATA_DIR would point at)."""
    folder = tmp_path_factory.mktemp("tiny_sources")
    dev_frame().to_parquet(folder / DEV_FILE, index=False)
    prod_frame().to_parquet(folder / PROD_FILE, index=False)
    return folder


@pytest.fixture(scope="session")
def spec(tmp_path_factory: pytest.TempPathFactory, source_dir: Path) -> DatasetSpec:
    """The tiny definition, parsed from its TOML text."""
    return write_definition(tmp_path_factory.mktemp("tiny_def") / "tiny", definition_text(source_dir))


@pytest.fixture
def tiny(tmp_path: Path, spec: DatasetSpec, source_dir: Path) -> Settings:
    """A fresh, empty home on the tiny dataset (raw files copied from `source_dir` on demand)."""
    return make_settings(tmp_path / "home", spec, source_dir)


def register_lr(s: Settings, c: float = 1.0, run_name: str = "unit-fixture-model") -> tuple[str, Any]:
    """Fit a scaled logistic regression on the prepared training split, log it as training logs
    models (with the definition's input rules), register it under the settings' model name;
    returns (version, fitted model)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core import tracking
    from core.data import preparation
    from core.modeling import model_io, registry

    train = preparation.load_split(s, "train")
    x = model_io.feature_frame(train, s.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(x, train[s.target])
    with mlflow.start_run(run_name=run_name, experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules)
    return registry.register(s, info.model_uri), model


@dataclasses.dataclass(frozen=True)
class Lab:
    """The shared prepared home with a champion: settings, the prepare summary, the champion's
    version and its in-memory model."""

    settings: Settings
    prep: Any
    version: str
    model: Any


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec, source_dir: Path) -> Lab:
    """A home with the tiny data acquired and prepared and a logistic regression as champion.

    Shared by the session: tests that change the registry use another model name in it
    (`with_spec(lab.settings, model_name=...)`), never the champion's."""
    from core.data import preparation
    from core.modeling import registry

    s = make_settings(tmp_path_factory.mktemp("tiny_lab"), spec, source_dir)
    prep = preparation.prepare(s)
    version, model = register_lr(s)
    promotion.promote(s, version)
    return Lab(settings=s, prep=prep, version=version, model=model)


@pytest.fixture
def lab_copy(tmp_path: Path, lab: Lab) -> Settings:
    """A new home holding a copy of the lab's data (no runs, no models)."""
    s = make_settings(tmp_path / "copy", lab.settings.dataset, lab.settings.source_dir)
    shutil.copytree(lab.settings.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run", "inference_log*"))
    return s


@contextmanager
def serve_stub(handler: type) -> Iterator[str]:
    """A stand-in HTTP server on a free loopback port with `handler` (a BaseHTTPRequestHandler),
    running in a thread; yields its address and shuts it down afterwards."""
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
