"""Where a served request's time goes, per model family (issue 33 item 1).

Run: `KOBE_DATA_DIR=... .venv/bin/python bench/serve_profile.py HOME:VERSION [HOME:VERSION ...]`
(HOME a workbench home with the version registered, e.g. one trained by
`train --models lr,dt,lightgbm --feature-set extended`). For each version, in-process (no HTTP):
one row (median of 300 calls) and one 200,000-row request (one call each), split into

- parse: MLflow's reading of the JSON body into a DataFrame (`scoring_server._parse_json_data`);
- rules: the served model's `check` (the dataset's input rules, categorical or numeric);
- codes + encoding: the pipeline's steps before the estimator (`transform`: category codes,
  one-hot, target encoding, scaling); with a fast path, also its own encoding of the same rows
  (`fast_scoring.FastPipeline.transform`);
- model: the final estimator (the tree, the boosted trees, the linear model) on that matrix;
- calibration: the calibrated model's `predict_proba` less its pipeline's;
- answer: the served answer (`task_answer`) and its JSON (`predictions_to_json`);
- served total: MLflow's `invocations` with the whole body, as the workbench's server calls it
  (`core/serving/schema.py`: no MLflow casts), with the
  engine the model serves with (and, when it has a fast path, with the pipeline for comparison).

Prints the 1-minute load average: on this shared 2-core machine figures are "(loaded)" above ~1.5.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

ROW_CALLS = 300
BATCH_ROWS = 200_000


def timed(fn, n: int) -> float:
    """Median ms of `n` calls of `fn`."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000.0


def served_of(home: str, version: str):
    import mlflow

    from core.config import Settings
    from core.tracking import use

    env = dict(os.environ, WORKBENCH_HOME=home)
    env.pop("MLFLOW_TRACKING_URI", None)
    settings = Settings.from_env(env)
    use(settings)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    return settings, pyfunc


def profile(home: str, version: str) -> None:
    import pandas as pd
    from mlflow.pyfunc import scoring_server

    from core.data import preparation
    from core.serving.scoring_app import predictions_to_json

    from core.serving.schema import served_without_casts

    settings, pyfunc = served_of(home, version)
    served_without_casts(pyfunc)  # as the workbench's server serves it: the model checks its input itself
    served = pyfunc._model_impl
    model = served.sklearn_model
    names = list(served.rules.names)
    test = preparation.load_split(settings, "test")
    prod = preparation.load_split(settings, "prod")
    if not all(n in prod.columns for n in names):
        print(f"{home} v{version}: the prod split lacks some features; skipped")
        return
    big = prod.loc[:, names].sample(BATCH_ROWS, replace=True, random_state=0).reset_index(drop=True)
    schema = pyfunc.metadata.get_input_schema()  # None once served without casts
    calibrated = hasattr(model, "calibrated_classifiers_")
    pipeline = model.calibrated_classifiers_[0].estimator if calibrated else model
    final = pipeline.steps[-1][1]
    pre = pipeline[:-1]
    print(f"\n{home} v{version}: {type(final).__name__}{' calibrated (' + model.method + ')' if calibrated else ''}; "
          f"{len(names)} features ({sum(r.categorical for r in served.rules.rules)} categorical); "
          f"engine {served.engine}; load {os.getloadavg()[0]:.2f}")
    for label, frame, n in (("1 row", big.head(1), ROW_CALLS), (f"{BATCH_ROWS:,} rows", big, 1)):
        body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})
        parse = timed(lambda: scoring_server._parse_json_data(body, pyfunc.metadata, None), n)
        data = scoring_server._parse_json_data(body, pyfunc.metadata, None)
        data = data.data if hasattr(data, "data") else data
        rules = timed(lambda: served.check(data), n)
        checked = frame.loc[:, [str(c) for c in model.feature_names_in_]]
        for c in checked.columns:
            if checked[c].dtype == object:
                checked[c] = checked[c].where(checked[c].notna(), np.nan)
        transform = timed(lambda: pre.transform(checked), n)
        z = pre.transform(checked)
        method = "predict" if served.kind == "regression" else "predict_proba"
        estimator = timed(lambda: getattr(final, method)(z), n)
        whole = timed(lambda: getattr(model, method)(checked), n)
        inner = timed(lambda: getattr(pipeline, method)(checked), n) if calibrated else whole
        raw = getattr(model, method)(checked)
        answer = timed(lambda: predictions_to_json(raw, io.StringIO()), n)
        total = timed(lambda: scoring_server.invocations(body, "application/json", pyfunc, schema), n)
        line = (f"  {label:>12}: parse {parse:.3f} | rules {rules:.3f} | codes+encoding {transform:.3f} | "
                f"model {estimator:.3f} | calibration {max(whole - inner, 0):.3f} | answer {answer:.3f} || "
                f"served total {total:.3f} ms")
        fast = getattr(served, "fast", None)
        if fast is not None:  # the fast path's own preprocessing (codes, tables, scaling) of the checked rows
            inner = fast.calibrated[0][0] if hasattr(fast, "calibrated") else fast  # a calibrated model's pipeline
            given = checked.to_numpy(dtype=np.float64) if served._fast_matrix else checked
            line = line.replace(" ||", f" | fast path: encoding {timed(lambda: inner.transform(given), n):.3f} ||")
        if fast is not None:  # the same request through the pipeline: the fast path switched off
            saved = served.fast, served._fast_matrix
            served.fast, served._fast_matrix = None, False
            try:
                line += f" (pipeline {timed(lambda: scoring_server.invocations(body, 'application/json', pyfunc, schema), n):.3f} ms)"
            finally:
                served.fast, served._fast_matrix = saved
        if label != "1 row":
            line += f"; {BATCH_ROWS / total * 1000:,.0f} rows/s"
        print(line, flush=True)


def main() -> None:
    for arg in sys.argv[1:]:
        home, version = arg.rsplit(":", 1)
        profile(home, version)
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
