"""Evidently's Spark engine on the batches of bench/spark_drift.py: its DataDriftTable over the same
features, against the same training split, timed and measured as our `drift --engine spark`.

Runs in a separate virtual environment (Evidently does not install beside the workbench's pins):

    python3.11 -m venv /work/venv-evidently
    /work/venv-evidently/bin/pip install "evidently==0.7.23" "pandas<3" "pyspark==3.5.9"
    /work/venv-evidently/bin/python bench/evidently_spark.py --reference TRAIN.parquet --batch B.parquet \\
        --numeric lat,lon,... [--categorical ...] [--master local[*]]

Evidently 0.7.23 keeps its Spark engine in its legacy API (`evidently.legacy.spark.engine.SparkEngine`,
supported: the column and dataset drift metrics with chi-square, Jensen-Shannon, PSI and Wasserstein,
numeric and categorical columns). Prints the wall time of the report's `run` (the Spark session
already started, the data read lazily by it), the whole script's, the peak resident memory of this
process and of its children (the JVM), and the drifted columns.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time

import psutil


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--numeric", default="")
    ap.add_argument("--categorical", default="")
    ap.add_argument("--stattest", default="wasserstein", help="numeric columns' test (Evidently's name)")
    ap.add_argument("--master", default="local[*]")
    args = ap.parse_args()
    t_start = time.perf_counter()
    peak = {"self": 0.0, "children": 0.0}
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not done.is_set():
            try:
                peak["self"] = max(peak["self"], me.memory_info().rss / 1e6)
                peak["children"] = max(peak["children"], sum(c.memory_info().rss for c in me.children(recursive=True))
                                       / 1e6)
            except psutil.Error:
                pass
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report
    from evidently.legacy.spark.engine import SparkEngine

    spark = (SparkSession.builder.master(args.master).appName("evidently-bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    numeric = [c for c in args.numeric.split(",") if c]
    categorical = [c for c in args.categorical.split(",") if c]
    columns = numeric + categorical
    ref = spark.read.parquet(args.reference).select(*columns)
    cur = spark.read.parquet(args.batch).select(*columns)
    mapping = ColumnMapping(numerical_features=numeric, categorical_features=categorical, target=None,
                            prediction=None)
    report = Report(metrics=[DataDriftTable(num_stattest=args.stattest)])
    t0 = time.perf_counter()
    report.run(reference_data=ref, current_data=cur, column_mapping=mapping, engine=SparkEngine)
    result = report.as_dict()["metrics"][0]["result"]
    run_s = time.perf_counter() - t0
    done.set()
    drifted = sorted(c for c, v in result["drift_by_columns"].items() if v["drift_detected"])
    print(json.dumps({"run_s": round(run_s, 2), "total_s": round(time.perf_counter() - t_start, 2),
                      "peak_rss_mb": round(peak["self"]), "peak_children_rss_mb": round(peak["children"]),
                      "dataset_drift": result["dataset_drift"], "drifted": drifted,
                      "scores": {c: v["drift_score"] for c, v in result["drift_by_columns"].items()},
                      "load": os.getloadavg()}))
    spark.stop()


if __name__ == "__main__":
    main()
