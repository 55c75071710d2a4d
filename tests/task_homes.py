"""Homes with a multiclass or a regression champion, without the training stage: a tiny dataset
of each kind written inline (its definition under the home's own datasets, its raw file beside
it), prepared, and a scikit-learn pipeline (the definition's preprocessing + a logistic
regression or a ridge) fitted on the training split, logged with `model_io.log_model(task=...)`,
registered with the task's tags and made champion. Used by the serving tests, the benchmark
(bench/task_serve.py) and the page screenshots.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import catalog
from core.config import Settings
from core.files import sha256_file

FLOWERS = """\
name = "{name}"
title = "Tiny flowers"
description = "Which of three species is a flower? (a tiny multiclass dataset)"
row_noun = "flower"
rows_noun = "flowers"
example = {{ petal = 4.5, sepal = 6.0, leaves = 3 }}

[target]
column = "species"
task = "multiclass"
classes = ["setosa", "versicolor", "virginica"]
class_labels = ["Setosa", "Versicolor", "Virginica"]

[[features]]
name = "petal"
kind = "numeric"
label = "Petal length"
unit = "cm"
min = 0.0
max = 10.0

[[features]]
name = "sepal"
kind = "numeric"
label = "Sepal length"
unit = "cm"
min = 0.0
max = 10.0

[[features]]
name = "leaves"
kind = "numeric"
integer = true
label = "Leaves"
min = 0
max = 20

[[sources]]
file = "{file}"
sha256 = "{sha}"

[dev]
source = "{file}"
where = 'batch == "dev"'

[prod]
source = "{file}"
where = 'batch == "prod"'
"""

HOUSES = """\
name = "{name}"
title = "Tiny houses"
description = "What does a house cost? (a tiny regression dataset)"
row_noun = "house"
rows_noun = "houses"
example = {{ area = 120.0, rooms = 4 }}

[target]
column = "price"
task = "regression"
unit = "USD"

[[features]]
name = "area"
kind = "numeric"
label = "Area"
unit = "m2"
min = 10.0
max = 400.0

[[features]]
name = "rooms"
kind = "numeric"
integer = true
label = "Rooms"
min = 1
max = 12

[[sources]]
file = "{file}"
sha256 = "{sha}"

[dev]
source = "{file}"
where = 'batch == "dev"'

[prod]
source = "{file}"
where = 'batch == "prod"'
"""

SPECIES = ("setosa", "versicolor", "virginica")
HALFWIDTH = 310.0  # the regression champion's interval halfwidth (as training would compute it)
LEVEL = 0.9


def flowers_frame(n: int = 600, seed: int = 5) -> pd.DataFrame:
    """Three species told apart by petal and sepal length (leaves are noise); a dev and a prod batch."""
    rng = np.random.default_rng(seed)
    species = rng.integers(0, 3, n)
    petal = np.clip(rng.normal(1.5 + 2.2 * species, 0.7), 0, 10).round(2)
    sepal = np.clip(rng.normal(5.0 + 0.8 * species, 0.6), 0, 10).round(2)
    leaves = rng.integers(0, 21, n)
    return pd.DataFrame({"petal": petal, "sepal": sepal, "leaves": leaves,
                         "species": np.asarray(SPECIES, dtype=object)[species],
                         "batch": np.where(np.arange(n) < int(n * 0.8), "dev", "prod")})


def houses_frame(n: int = 600, seed: int = 6) -> pd.DataFrame:
    """A price from area and rooms, with noise; a dev and a prod batch."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(20, 300, n).round(1)
    rooms = np.clip((area / 35 + rng.normal(0, 1, n)).round(), 1, 12).astype("int64")
    price = (800 + 18.5 * area + 120 * rooms + rng.normal(0, 190, n)).round(2)
    return pd.DataFrame({"area": area, "rooms": rooms, "price": price,
                         "batch": np.where(np.arange(n) < int(n * 0.8), "dev", "prod")})


KINDS = {"multiclass": (FLOWERS, flowers_frame, "flowers"), "regression": (HOUSES, houses_frame, "houses")}


@dataclass(frozen=True)
class TaskHome:
    """A home with a champion of one task kind: its settings, the champion's version, the fitted
    pipeline, the logged model's URI and the task dict it was logged with."""

    settings: Settings
    version: str
    model: Any
    model_uri: str
    task: dict[str, Any]


def settings_for(home: Path, spec: Any, source_dir: Path) -> Settings:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR",
                        "WORKBENCH_SERVE_PORT")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=spec, source_dir=source_dir)


def _prepare(s: Settings) -> None:
    """`preparation.prepare`; where it cannot prepare a regression target yet (a stratified split,
    labels cast to whole numbers: preparation before issue 34's), with a random split and the
    target kept as numbers."""
    from unittest.mock import patch

    from core.data import preparation

    try:
        preparation.prepare(s)
        done = s.dataset.task != "regression" or preparation.load_split(s, "train")[s.target].dtype.kind == "f"
    except ValueError:
        done = False
    if done:
        return

    def split(df: pd.DataFrame, test_size: float, seed: int, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        test = df.sample(frac=test_size, random_state=seed)
        return df.drop(test.index).reset_index(drop=True), test.reset_index(drop=True)

    def labelled(df: pd.DataFrame, spec: Any, label: str) -> pd.DataFrame:
        y, _ = spec.target.encode(df[spec.target.column])
        return df.assign(**{spec.target.column: y})

    with patch.object(preparation, "split", split), patch.object(preparation, "labelled", labelled):
        preparation.prepare(s)


def make_task_home(home: Path, task: str, name: str | None = None) -> TaskHome:
    """`home` with the tiny dataset of `task` ("multiclass" or "regression") defined among its own
    datasets (named `name`, default "flowers" / "houses"), prepared, and a champion registered."""
    import mlflow
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    from core import tracking
    from core.data import preparation
    from core.modeling import model_io, preprocess, promotion, registry
    from core.modeling.model_version import CLASSES_TAG, INTERVAL_TAG, TASK_TAG

    text, frame_of, default_name = KINDS[task]
    name = name or default_name
    folder = catalog.user_dir(home) / name
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"{name}.parquet"
    frame_of().to_parquet(raw, index=False)
    (folder / "dataset.toml").write_text(text.format(name=name, file=raw.name, sha=sha256_file(raw)))
    spec = catalog.load(folder / "dataset.toml")
    s = settings_for(home, spec, folder)
    _prepare(s)
    train = preparation.load_split(s, "train")
    x = model_io.feature_frame(train, s.features, spec.categorical_features)
    final = LogisticRegression(max_iter=1000) if task == "multiclass" else Ridge(alpha=1.0)
    model = Pipeline([*preprocess.preprocessor(spec, 0), ("model", final)]).fit(x, train[s.target])
    if task == "multiclass":
        told: dict[str, Any] = {"task": "multiclass", "classes": list(spec.target.names)}
        tags = {TASK_TAG: task, CLASSES_TAG: json.dumps(list(spec.target.names))}
    else:
        told = {"task": "regression", "interval": {"level": LEVEL, "halfwidth": HALFWIDTH}}
        tags = {TASK_TAG: task, INTERVAL_TAG: json.dumps(told["interval"])}
    with mlflow.start_run(run_name=f"{task}-fixture-model", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=spec.rules,
                                  categorical=spec.categorical_features, task=told)
    version = registry.register(s, info.model_uri, tags=tags)
    promotion.promote(s, version)
    return TaskHome(settings=s, version=version, model=model, model_uri=info.model_uri, task=told)
