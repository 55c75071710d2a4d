"""Tiny multiclass and regression homes for the monitoring tests (not Kobe, not binary).

Each home holds a dataset definition under the home's `data/datasets/NAME/` (so `--dataset NAME`
finds it from the command line), its prepared splits written as preparation writes them
(contract 1 of issue 34: the target column holds the encoded label, class positions as int64
for multiclass, the number as float64 for regression) and a champion: a scikit-learn pipeline
logged with `mlflow.sklearn`, registered with the version tags training sets (task, classes or
interval) and promoted.

- "tiers" (multiclass): `tier` low / mid / high from two numbers and a colour, a softmax of a
  linear score; production shifts `x1` upwards (more "high" rows).
- "prices" (regression): `price` from `size`, `age` and a `zone`, noise growing with `size`
  (heteroscedastic); production shifts `size` upwards (larger errors).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import catalog
from core.config import Settings
from core.files import sha256_file

MULTI_TOML = """\
name = "tiers"
title = "Tiers"
row_noun = "item"
rows_noun = "items"
experiment = "tiers-experiment"
model_name = "tiers-model"

[target]
column = "tier"
task = "multiclass"
classes = ["L", "M", "H"]
class_labels = ["low", "mid", "high"]

[[features]]
name = "x1"
kind = "numeric"
min = -10.0
max = 20.0

[[features]]
name = "x2"
kind = "numeric"
min = -10.0
max = 10.0

[[features]]
name = "colour"
kind = "categorical"
values = ["red", "green", "blue"]

[[sources]]
file = "tiers.parquet"
sha256 = "{sha}"

[dev]
source = "tiers.parquet"
where = 'part == "dev"'

[prod]
source = "tiers.parquet"
where = 'part == "prod"'
"""

REG_TOML = """\
name = "prices"
title = "Prices"
row_noun = "house"
rows_noun = "houses"
experiment = "prices-experiment"
model_name = "prices-model"

[target]
column = "price"
task = "regression"
unit = "k€"

[[features]]
name = "size"
kind = "numeric"
min = 0.0
max = 400.0

[[features]]
name = "age"
kind = "numeric"
min = 0.0
max = 100.0

[[features]]
name = "zone"
kind = "categorical"
values = ["a", "b", "c"]

[[sources]]
file = "prices.parquet"
sha256 = "{sha}"

[dev]
source = "prices.parquet"
where = 'part == "dev"'

[prod]
source = "prices.parquet"
where = 'part == "prod"'
"""
CLASSES = ("L", "M", "H")


def tiers_frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """`n` rows of the multiclass data; `shift` moves x1 (the class follows the same law)."""
    x1 = rng.normal(2.0 + shift, 2.0, n)
    x2 = rng.normal(0.0, 1.5, n)
    colour = rng.choice(["red", "green", "blue"], n)
    bump = np.select([colour == "red", colour == "green"], [0.8, 0.0], -0.8)
    score = np.column_stack([-1.2 * x1 + 0.5 * x2, 0.0 * x1 + bump, 1.2 * x1 - 0.5 * x2 - 2.0])
    p = np.exp(score - score.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return pd.DataFrame({"x1": x1.clip(-10, 20), "x2": x2.clip(-10, 10), "colour": colour,
                         "tier": np.asarray(CLASSES)[y]})


def prices_frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """`n` rows of the regression data; `shift` moves size up (where the noise is larger)."""
    size = np.clip(rng.gamma(4.0, 25.0, n) + shift, 10, 400)
    age = rng.uniform(0, 100, n)
    zone = rng.choice(["a", "b", "c"], n)
    effect = np.select([zone == "a", zone == "b"], [40.0, 0.0], -30.0)
    price = 50 + 2.0 * size - 0.8 * age + effect + rng.normal(0, 1, n) * (5 + 0.25 * size)
    return pd.DataFrame({"size": size, "age": age, "zone": zone, "price": price})


@dataclasses.dataclass(frozen=True)
class TaskHome:
    settings: Settings
    model: Any
    version: Any  # the champion's ModelVersion
    prod: pd.DataFrame  # the raw production rows (target as in the data)
    calm: pd.DataFrame  # raw rows like the dev data, never seen in training (target as in the data)


def _settings(home: Path, name: str) -> Settings:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=catalog.find(name, [catalog.user_dir(home)]))


def _write_home(home: Path, name: str, toml: str, dev: pd.DataFrame, prod: pd.DataFrame) -> Settings:
    folder = catalog.user_dir(home) / name
    folder.mkdir(parents=True, exist_ok=True)
    raw = pd.concat([dev.assign(part="dev"), prod.assign(part="prod")], ignore_index=True)
    raw.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "dataset.toml").write_text(toml.format(sha=sha256_file(folder / f"{name}.parquet")))
    s = _settings(home, name)
    s.raw_dir.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(s.raw_dir / f"{name}.parquet", index=False)
    return s


def _prepared(s: Settings, dev: pd.DataFrame, prod: pd.DataFrame, classifier: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the splits as preparation does (encoded target) and return (train, test)."""
    from sklearn.model_selection import train_test_split

    t = s.dataset.target

    def encoded(frame: pd.DataFrame) -> pd.DataFrame:
        y, bad = t.encode(frame[t.column])
        assert bad == 0
        return frame.assign(**{t.column: y.astype("int64") if classifier else y})

    filtered, prod_e = encoded(dev), encoded(prod)
    train, test = train_test_split(filtered, test_size=0.3, random_state=0,
                                   stratify=filtered[t.column] if classifier else None)
    for frame, path in ((filtered, s.filtered_path), (train, s.train_path), (test, s.test_path),
                        (prod_e, s.prod_filtered_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    return train, test


def _pipeline(s: Settings, final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = list(s.dataset.categorical_features)
    nums = [f for f in s.features if f not in cats]
    pre = ColumnTransformer([("num", StandardScaler(), nums),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
    return make_pipeline(pre, final)


def _register(s: Settings, model: Any, tags: dict[str, str]) -> Any:
    import mlflow

    from core import tracking
    from core.modeling import promotion, registry

    with mlflow.start_run(run_name="task-fixture", experiment_id=tracking.use(s)):
        info = mlflow.sklearn.log_model(model, name="model")
    version = registry.register(s, info.model_uri, tags=tags)
    promotion.promote(s, version)
    return registry.champion(s)


def multiclass_home(home: Path, n: int = 1500, seed: int = 0) -> TaskHome:
    """A prepared multiclass home with a logistic regression champion (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression

    from core.modeling import model_io
    from core.modeling.model_version import CLASSES_TAG, TASK_TAG

    rng = np.random.default_rng(seed)
    dev, prod = tiers_frame(rng, n), tiers_frame(rng, 600, shift=4.0)
    s = _write_home(home, "tiers", MULTI_TOML, dev, prod)
    train, _ = _prepared(s, dev, prod, classifier=True)
    x = model_io.feature_frame(train, s.features, s.dataset.categorical_features)
    model = _pipeline(s, LogisticRegression(max_iter=1000)).fit(x, train[s.target])
    version = _register(s, model, {TASK_TAG: "multiclass", CLASSES_TAG: json.dumps(list(s.dataset.target.names))})
    return TaskHome(s, model, version, prod, tiers_frame(rng, 600))


def regression_home(home: Path, n: int = 2000, seed: int = 0, level: float = 0.9) -> TaskHome:
    """A prepared regression home with a ridge champion and its conformal interval (the
    `level` quantile of cross-validated absolute residuals)."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_predict

    from core.modeling import model_io
    from core.modeling.model_version import INTERVAL_TAG, TASK_TAG

    rng = np.random.default_rng(seed)
    dev, prod = prices_frame(rng, n), prices_frame(rng, 600, shift=120.0)
    s = _write_home(home, "prices", REG_TOML, dev, prod)
    train, _ = _prepared(s, dev, prod, classifier=False)
    x = model_io.feature_frame(train, s.features, s.dataset.categorical_features)
    y = train[s.target].to_numpy()
    model = _pipeline(s, Ridge(alpha=1.0))
    oof = cross_val_predict(model, x, y, cv=5)
    halfwidth = float(np.quantile(np.abs(y - oof), level))
    model.fit(x, y)
    version = _register(s, model, {TASK_TAG: "regression",
                                   INTERVAL_TAG: json.dumps({"level": level, "halfwidth": halfwidth})})
    return TaskHome(s, model, version, prod, prices_frame(rng, 600))
