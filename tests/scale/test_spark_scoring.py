"""Spark batch scoring on `local[2]` gives the in-process probabilities (to 1e-9) and metrics (to 1e-6).

One Spark session serves the module (start-up is the slow part); `score_spark` reuses an active
session and leaves it running. Without pyspark or Java the module is skipped (CI=true: fails).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.config import Settings
from core.data import preparation
from core.errors import TrackingError
from core.modeling import metrics, model_io, registry
from tests.conftest import make_champion_home
from tests.scale.conftest import require_spark


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Own home (scoring logs runs and writes outputs): prepared data and a champion LR model."""
    return make_champion_home(tmp_path_factory.mktemp("spark-home"))


@pytest.fixture(scope="module")
def batch(spark_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The production batch with a row id, written as two parquet files (scored through a glob)."""
    prod = preparation.load_split(spark_home, "prod").reset_index(drop=True)
    prod = prod.assign(row_id=np.arange(len(prod), dtype="int64"))
    folder = tmp_path_factory.mktemp("batch")
    half = len(prod) // 2
    prod.iloc[:half].to_parquet(folder / "part-a.parquet", index=False)
    prod.iloc[half:].to_parquet(folder / "part-b.parquet", index=False)
    prod.attrs["glob"] = str(folder / "*.parquet")
    return prod


@pytest.fixture(scope="module")
def scored(spark: object, spark_home: Settings, batch: pd.DataFrame):
    from core.scoring import spark as spark_scoring

    return spark_scoring.score_spark(spark_home, batch.attrs["glob"], master="local[2]", model=registry.champion(spark_home))


def test_probabilities_match_in_process_scoring(scored, spark_home: Settings, batch: pd.DataFrame) -> None:
    out = pd.read_parquet(scored.output).sort_values("row_id").reset_index(drop=True)
    _, model = registry.load_model(spark_home)
    expected = model_io.predict_proba(model, batch, spark_home.features)
    assert len(out) == len(batch) == scored.rows
    assert (out["row_id"].to_numpy() == batch["row_id"].to_numpy()).all()
    np.testing.assert_allclose(out["proba_made"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert (out["pred_made"].to_numpy() == (expected >= registry.champion(spark_home).decision_threshold)).all()


def test_metrics_match_from_proba(scored, spark_home: Settings, batch: pd.DataFrame) -> None:
    _, model = registry.load_model(spark_home)
    expected = metrics.from_proba(batch[spark_home.target].to_numpy(),
                                  model_io.predict_proba(model, batch, spark_home.features),
                                  registry.champion(spark_home).decision_threshold)
    assert scored.metrics is not None and set(scored.metrics) == set(expected)
    for name, value in expected.items():
        assert math.isclose(scored.metrics[name], value, rel_tol=0, abs_tol=1e-6), name


def test_result_fields_output_and_run(scored, spark_home: Settings) -> None:
    d = scored.to_dict()
    assert {"rows", "model_version", "path", "metrics", "output", "mlflow_run_id", "seconds"} <= set(d)
    assert d["path"] == "spark" and d["master"] == "local[2]"
    assert d["model_version"] == registry.champion(spark_home).version
    out = Path(scored.output)
    assert out.is_relative_to(spark_home.model_output_dir)
    assert sorted(p.name for p in out.glob("period=*")) and (out / "_SUCCESS").exists()
    run = tracking.last_run(spark_home, "PipelineAplicacao")
    assert run is not None and run["run_id"] == scored.mlflow_run_id
    assert run["params"]["engine"] == "spark"
    assert run["metrics"]["rows"] == scored.rows


def test_unlabelled_batch_has_no_metrics_and_keeps_previous_output(
    spark: object, scored, spark_home: Settings, batch: pd.DataFrame, tmp_path: Path
) -> None:
    from core.scoring import spark as spark_scoring

    path = tmp_path / "unlabelled.parquet"
    batch.drop(columns=[spark_home.target]).head(200).to_parquet(path, index=False)
    before = set(spark_home.model_output_dir.iterdir())
    result = spark_scoring.score_spark(spark_home, path, master="local[2]", model=registry.champion(spark_home))
    assert result.rows == 200 and result.metrics is None
    kept = set(spark_home.model_output_dir.iterdir()) - before
    assert len(kept) == 1 and next(iter(kept)).name.startswith("prod_predictions_spark.")


def test_missing_feature_column_is_refused(spark: object, spark_home: Settings, tmp_path: Path) -> None:
    from core.scoring import spark as spark_scoring

    path = tmp_path / "bad.parquet"
    preparation.load_split(spark_home, "prod").drop(columns=["lat"]).to_parquet(path, index=False)
    with pytest.raises(spark_scoring.SparkBatchError, match="lat"):
        spark_scoring.score_spark(spark_home, path, master="local[2]", model=registry.champion(spark_home))


def test_no_matching_batch_is_refused(spark: object, spark_home: Settings, tmp_path: Path) -> None:
    from core.scoring import spark as spark_scoring

    with pytest.raises(spark_scoring.SparkBatchError, match="No batch file matches"):
        spark_scoring.score_spark(spark_home, str(tmp_path / "nothing-*.parquet"), master="local[2]", model=registry.champion(spark_home))


def test_without_champion_says_train_first(settings: Settings) -> None:
    require_spark()
    from core.scoring import spark as spark_scoring

    preparation.prepare(settings)
    with pytest.raises(TrackingError, match="No champion yet"):
        spark_scoring.score_spark(settings, master="local[2]", model=registry.champion(settings))


def test_unprepared_home_says_prepare_first(settings: Settings) -> None:
    from core.errors import NotPreparedError
    from core.scoring import spark as spark_scoring

    with pytest.raises(NotPreparedError, match="prepare"):
        spark_scoring.score_spark(settings, model=registry.champion(settings))


def test_both_engines_write_the_same_columns(spark: object, spark_home: Settings, batch: pd.DataFrame,
                                             tmp_path: Path) -> None:
    """Issue 30: Spark's output lacked the class name (and the class as the data holds it, and the
    version) that local scoring writes. Scored again here (an earlier test replaced the output);
    last in the module: local scoring logs a run of its own."""
    from core.scoring import local
    from core.scoring import spark as spark_scoring

    scored = spark_scoring.score_spark(spark_home, batch.attrs["glob"], master="local[2]",
                                       model=registry.champion(spark_home))

    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, index=False)
    here = local.score(spark_home, registry.champion(spark_home), batch=path, in_process=True,
                       output=tmp_path / "local.parquet")
    mine = pd.read_parquet(here.output)
    theirs = pd.read_parquet(scored.output).sort_values("row_id").reset_index(drop=True)
    spec = spark_home.dataset
    assert set(mine.columns) <= set(theirs.columns), set(mine.columns) - set(theirs.columns)
    assert {"class_name", spec.predicted_class_column, "model_version"} <= set(theirs.columns)
    for column in (spec.pred_column, spec.predicted_class_column, "class_name", "model_version"):
        assert theirs[column].astype(str).tolist() == mine[column].astype(str).tolist(), column
    assert set(theirs["class_name"]) == {spec.target.positive_name, spec.target.negative_name}
