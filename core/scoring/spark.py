"""Spark batch scoring ("PipelineAplicacao" on Spark): the champion through `mlflow.pyfunc.spark_udf`.

The same job as in-process scoring, for batches that outgrow one machine: read a parquet (or
CSV) batch — a path or a glob, local or on a cluster's file system — score it with the champion
on a Spark session, write the scored batch as parquet (partitioned by the column the dataset
definition names in `partition_by`, if any), and compute the
metrics from Spark aggregates when the batch has labels (no row is collected to the driver).

Metrics: log loss, Brier score, accuracy, precision, recall and F1 are sums over the rows (one
aggregate pass over the written output); ROC-AUC comes from `pyspark.ml`'s
`BinaryClassificationEvaluator` with `numBins=0` (no down-sampling: the exact trapezoidal area
over every distinct score, as scikit-learn computes it). Probabilities are clipped to
[1e-15, 1 - 1e-15] first, as `core.metrics.from_proba` does.

The session's master is the `master` argument, else `SPARK_MASTER` (Settings.spark_master),
else Spark's standard configuration (`spark-defaults.conf`, `PYSPARK_SUBMIT_ARGS`), which
defaults to `local[*]`. pyspark is imported lazily: it lives in requirements-scale.txt.
"""
from __future__ import annotations

import glob
import importlib.util
import math
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import NotPreparedError, TrackingError, WorkbenchError
from core.modeling import registry
from core.modeling.model_version import ModelVersion
from core.files import keep_previous
from core.progress import ProgressFn, Stopwatch, report
from core.scoring.local import (
    APPLY_RUN,  # one name for the run, whichever engine scores
    CLASS_NAME,
)

EPS = 1e-15


class SparkUnavailableError(WorkbenchError):
    """pyspark or the Java runtime Spark needs is missing, or the session cannot start."""


class SparkBatchError(WorkbenchError):
    """The batch cannot be read or lacks the model's feature columns."""


@dataclass(frozen=True)
class SparkScoreResult:
    """What `score_spark` did: the same fields as in-process scoring, `path` = "spark"."""

    rows: int
    model_version: str
    path: str
    metrics: dict[str, float] | None
    output: str
    mlflow_run_id: str
    seconds: float
    master: str
    batch: str
    checked: bool = True  # the model is this dataset's champion, loaded from its registry

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available() -> bool:
    """True when pyspark is installed (the Production page offers the Spark engine then)."""
    return importlib.util.find_spec("pyspark") is not None


def _check_runtime() -> None:
    if not available():
        raise SparkUnavailableError(
            "pyspark is not installed: Spark scoring is a scale-out extra. Install it with "
            "`.venv/bin/python -m pip install -r requirements-scale.txt`, or use the in-process engine."
        )
    java_home = os.environ.get("JAVA_HOME")
    has_java = shutil.which("java") is not None or (java_home and (Path(java_home) / "bin" / "java").exists())
    if not has_java:
        raise SparkUnavailableError(
            "Spark needs a Java runtime (11 or 17) and none was found on PATH or in JAVA_HOME. "
            "Install one (Debian: `apt-get install default-jre-headless`), or use the in-process engine."
        )


def session(settings: Settings, master: str | None = None) -> Any:
    """A Spark session (an active one is reused) on `master`, SPARK_MASTER, or Spark's own configuration.

    Python workers run this interpreter; a local session gets a few small-machine settings
    (no UI, few shuffle partitions).
    """
    _check_runtime()
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    chosen = master or settings.spark_master
    local = chosen is None or chosen.startswith("local")
    if local:
        # PySpark starts its Python workers with PYSPARK_PYTHON (default `python3`, which lacks
        # this environment's packages); a value set by the user is kept.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # A local session listens on loopback only.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("kobe-workbench-scoring")
    if chosen:
        builder = builder.master(chosen)
    builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    if local:
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    try:
        spark = builder.getOrCreate()
    except (PySparkException, Py4JError) as err:
        raise SparkUnavailableError(
            f"The Spark session could not start on master {chosen or '(Spark default)'}: {err}. "
            f"Check the Java runtime and SPARK_MASTER, or use the in-process engine."
        ) from err
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _read_batch(spark: Any, settings: Settings, batch: str) -> Any:
    from pyspark.errors import AnalysisException

    if _is_local(batch):
        local = batch.removeprefix("file://")
        if not glob.glob(local):
            raise SparkBatchError(f"No batch file matches {batch}. Give an existing parquet or CSV path or glob.")
    try:
        if batch.lower().endswith(".csv"):
            df = spark.read.csv(batch, header=True, inferSchema=True)
        else:
            df = spark.read.parquet(batch)
    except AnalysisException as err:
        raise SparkBatchError(f"Spark cannot read the batch {batch}: {err}. Give parquet files (or a .csv).") from err
    missing = [c for c in settings.features if c not in df.columns]
    if missing:
        raise SparkBatchError(
            f"The batch {batch} lacks the feature column(s) {', '.join(missing)}; "
            f"the model needs {', '.join(settings.features)}."
        )
    return df


def _output_dir(settings: Settings) -> Path:
    return settings.model_output_dir / "prod_predictions_spark"


def _input_types(model_uri: str, settings: Settings) -> dict[str, str]:
    """The Spark type each feature goes to the model as: the type its signature declares (string
    for a category, long for a whole number, double otherwise); models logged before signatures
    declared longs say double for every number."""
    import mlflow

    declared: dict[str, str] = {}
    try:
        signature = mlflow.models.get_model_info(model_uri).signature
        declared = {c.name: c.type.name for c in signature.inputs.inputs} if signature is not None else {}
    except (mlflow.exceptions.MlflowException, AttributeError, OSError):
        pass
    text = set(settings.dataset.categorical_features)
    fallback = {c: "string" if c in text else "double" for c in settings.features}
    return {c: {"long": "long", "integer": "long", "string": "string"}.get(declared.get(c, ""), fallback[c])
            for c in settings.features}


def _aggregate_metrics(scored: Any, settings: Settings, threshold: float) -> tuple[int, dict[str, float] | None]:
    """Row count and, when labels are present, the metrics from Spark aggregates."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    if settings.target not in scored.columns:
        return int(scored.count()), None
    y = F.col(settings.target).cast("double")
    p = F.least(F.greatest(F.col(settings.dataset.proba_column), F.lit(EPS)), F.lit(1 - EPS))
    pred = (p >= F.lit(threshold)).cast("double")
    labelled_flag = F.col(settings.target).isNotNull().cast("long")
    totals = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(labelled_flag).alias("n"),
        F.sum(y).alias("pos"),
        F.sum(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("ll"),
        F.sum((p - y) * (p - y)).alias("sq"),
        F.sum(pred * y).alias("tp"),
        F.sum(pred * y.isNotNull().cast("double")).alias("pp"),
        F.sum((pred == y).cast("double")).alias("correct"),
    ).first()
    rows, n = int(totals["rows"]), int(totals["n"] or 0)
    if n == 0:
        return rows, None
    pos, tp, pp = float(totals["pos"]), float(totals["tp"]), float(totals["pp"])
    precision = tp / pp if pp else 0.0
    recall = tp / pos if pos else 0.0
    f1 = 2 * tp / (pp + pos) if (pp + pos) else 0.0
    if 0 < pos < n:
        labelled = scored.where(F.col(settings.target).isNotNull()).select(
            y.alias("label"), p.alias("score")
        )
        evaluator = BinaryClassificationEvaluator(
            rawPredictionCol="score", labelCol="label", metricName="areaUnderROC", numBins=0
        )
        roc_auc = float(evaluator.evaluate(labelled))
    else:
        roc_auc = math.nan
    return rows, {
        "log_loss": float(totals["ll"]) / n,
        "f1": f1,
        "roc_auc": roc_auc,
        "accuracy": float(totals["correct"]) / n,
        "precision": precision,
        "recall": recall,
        "brier": float(totals["sq"]) / n,
    }


def score_spark(
    settings: Settings,
    batch: str | Path | None = None,
    master: str | None = None,
    threshold: float | None = None,
    on_progress: ProgressFn = None,
    *,
    model: ModelVersion | None,
) -> SparkScoreResult:
    """Score a batch with `model` (the champion, read once by the caller) on Spark; log a
    `PipelineAplicacao` run.

    `batch` is a parquet (or .csv) path or glob, the prepared production batch when None.
    The scored batch (every input column, plus the probability `spec.proba_column`, the class
    `spec.pred_column` = probability >= `threshold`, that class as the data holds it
    (`spec.predicted_class_column`) and by its name (`CLASS_NAME`), and `model_version`: the
    columns local scoring writes) is written as parquet (partitioned by the
    definition's `partition_by` column when it names one) under
    `data/07_model_output/prod_predictions_spark/` (a previous output is kept, renamed).
    The session is stopped at the end unless one was already active.
    """
    import mlflow

    from core import tracking

    clock = Stopwatch()
    if batch is None and not settings.prod_filtered_path.exists():
        raise NotPreparedError(
            "There is no production batch yet: prepare the data first (Data page, or `python -m core prepare`)."
        )
    if model is None:
        raise TrackingError(registry.NO_CHAMPION)
    champ, settings = model, model.scoped(settings)
    threshold = champ.decision_threshold if threshold is None else float(threshold)
    if batch is None:
        batch = settings.prod_filtered_path
    batch = str(batch)
    model_uri = champ.uri

    report(on_progress, 0.1, "Starting the Spark session")
    _check_runtime()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    owned = SparkSession.getActiveSession() is None
    spark = session(settings, master)
    try:
        used_master = spark.sparkContext.master
        df = _read_batch(spark, settings, batch)
        report(on_progress, 0.25, "Loading the champion as a Spark UDF")
        exp_id = tracking.use(settings)
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=ArrayType(DoubleType()), env_manager="local")
        features = F.struct(*[F.col(c).cast(kind).alias(c) for c, kind in _input_types(model_uri, settings).items()])
        proba_col, pred_col = settings.dataset.proba_column, settings.dataset.pred_column
        scored = df.withColumn(proba_col, udf(features).getItem(1))
        scored = scored.withColumn(pred_col, (F.col(proba_col) >= F.lit(threshold)).cast("int"))
        # the class as the data holds it, its name and the version: the columns local scoring writes
        target = settings.dataset.target
        positive = F.col(pred_col) == 1
        scored = (scored.withColumn(settings.dataset.predicted_class_column,
                                    F.when(positive, F.lit(target.positive)).otherwise(F.lit(target.negative)))
                  .withColumn(CLASS_NAME, F.when(positive, F.lit(target.positive_name))
                              .otherwise(F.lit(target.negative_name)))
                  .withColumn("model_version", F.lit(str(champ.version))))

        report(on_progress, 0.35, "Scoring and writing partitioned parquet")
        out = _output_dir(settings)
        out.parent.mkdir(parents=True, exist_ok=True)
        keep_previous(out)  # a folder: renamed to `<name>.<timestamp>`
        writer = scored.write
        if settings.dataset.partition_by:
            writer = writer.partitionBy(settings.dataset.partition_by)
        writer.parquet(out.as_uri())

        report(on_progress, 0.8, "Computing metrics from Spark aggregates")
        written = spark.read.parquet(out.as_uri())
        rows, metrics = _aggregate_metrics(written, settings, threshold)

        report(on_progress, 0.95, "Logging the PipelineAplicacao run")
        with mlflow.start_run(run_name=APPLY_RUN, experiment_id=exp_id) as run:
            mlflow.log_params({
                "engine": "spark",
                "spark_master": used_master,
                "model_version": champ.version,
                "model_uri": model_uri,
                "batch": batch,
                "threshold": threshold,
                "output": str(out),
            })
            mlflow.log_metric("rows", rows)
            if metrics:
                mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
            run_id = run.info.run_id
    finally:
        if owned:
            spark.stop()
    report(on_progress, 1.0, "Done")
    return SparkScoreResult(
        rows=rows,
        model_version=champ.version,
        path="spark",
        metrics=metrics,
        output=str(out),
        mlflow_run_id=run_id,
        seconds=round(clock.seconds, 3),
        master=used_master,
        batch=batch,
    )
