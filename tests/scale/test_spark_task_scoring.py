"""Spark scoring of a multiclass and a regression champion (issue 34) on `local[2]` writes the task's
columns as in-process scoring does, with the same values (to 1e-9) and metrics (to 1e-6). One test
per task (a Spark session is slow to start; one serves the module)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.modeling import registry
from tests.task_homes import make_task_home


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_spark_writes_the_tasks_columns_as_in_process_scoring(spark: object, task: str, tmp_path: Path) -> None:
    from core.scoring import local
    from core.scoring import spark as spark_scoring

    home = make_task_home(tmp_path / "home", task)
    s = home.settings
    tracking.use(s)
    champ = registry.champion(s)
    here = local.score(s, champ, in_process=True, output=tmp_path / "local.parquet")  # the prepared production batch
    there = spark_scoring.score_spark(s, master="local[2]", model=champ)
    mine = pd.read_parquet(here.output)
    theirs = pd.concat([pd.read_parquet(p) for p in sorted(Path(there.output).rglob("*.parquet"))], ignore_index=True)
    features = list(s.features)
    mine, theirs = (f.sort_values(features).reset_index(drop=True) for f in (mine, theirs))
    assert there.task == task and there.rows == here.rows == len(mine) == len(theirs)
    spec = s.dataset
    columns = ([local.PRED_CLASS, spec.predicted_class_column, *spec.proba_columns.values()]
               if task == "multiclass" else list(spec.prediction_columns))
    assert set(columns) <= set(theirs.columns) and set(columns) <= set(mine.columns)
    numbers = [c for c in columns if c.startswith(("proba_", "prediction"))]
    assert float(np.max(np.abs(theirs[numbers].to_numpy() - mine[numbers].to_numpy()))) <= 1e-9
    for c in set(columns) - set(numbers):
        assert (theirs[c].astype(str) == mine[c].astype(str)).all(), c
    assert (theirs[s.target].astype(str) == mine[s.target].astype(str)).all()  # the target as the data holds it
    assert set(there.metrics) == set(here.metrics)
    for name, value in here.metrics.items():
        assert there.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert there.summary.keys() == here.summary.keys()
