"""Benchmark: which library computes a served model's probabilities, the scikit-learn pipeline
itself or its ONNX export run by ONNX Runtime, on the same fitted models (logistic regression,
decision tree, LightGBM; Kobe's six numbers, and its `extended` set with three categorical
features), measured in the same run:

- can skl2onnx convert it, and how far are ONNX Runtime's probabilities from `predict_proba`
  (max |difference|, and rows differing by more than 1e-6 on the 4,057-row test split: a tree
  in float32 also differs by ~1e-8 everywhere, as its probabilities are float32)?
- one row (what a served request scores): median of 500 calls, pandas row into the pipeline vs
  a numpy row into ONNX Runtime (one thread);
- 1,000,000 rows: one call each (ONNX Runtime on every core).

Trees go into ONNX Runtime as float32 (its tree ensembles take no doubles), numbers-only linear
pipelines as one double matrix. `core/modeling/onnx_export.py` exports what this shows to be
faster with the same answers.

Run: `.venv/bin/python bench/engines.py` (KOBE_DATA_DIR for the raw files; WORKBENCH_HOME to
reuse a prepared home). Prints the load average with every line.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from _home import bench_home

from core.data import preparation
from core.data.columns import feature_frame
from core.modeling import preprocess

ROWS = 1_000_000
CALLS = 500


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def estimator(kind: str):
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    return {"lr": LogisticRegression(max_iter=500), "dt": DecisionTreeClassifier(max_depth=8, random_state=0),
            "lightgbm": LGBMClassifier(n_estimators=100, num_leaves=31, verbosity=-1, n_jobs=1)}[kind]


def convert(model, features: tuple[str, ...], cats: tuple[str, ...], kind: str):
    """(ONNX bytes, feed function) or (None, reason)."""
    from lightgbm import LGBMClassifier
    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    if kind == "lightgbm":
        try:  # LightGBM's converter: only this benchmark needs it (pip install onnxmltools==1.16.0)
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        except ImportError:
            return None, "onnxmltools is not installed"
        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                    convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    number = DoubleTensorType if kind == "lr" else FloatTensorType
    dtype = np.float64 if kind == "lr" else np.float32
    if cats:
        types = [(c, StringTensorType([None, 1]) if c in cats else number([None, 1])) for c in features]

        def feed(df: pd.DataFrame) -> dict:
            return {c: (df[c].to_numpy(dtype=object) if c in cats else df[c].to_numpy(dtype=dtype)).reshape(-1, 1)
                    for c in features}
    else:
        types = [("X", number([None, len(features)]))]

        def feed(df: pd.DataFrame) -> dict:
            return {"X": df.to_numpy(dtype=dtype)}
    try:
        onx = convert_sklearn(model, initial_types=types, target_opset={"": 18, "ai.onnx.ml": 3},
                              options={id(model.steps[-1][1]): {"zipmap": False}})
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return None, f"{type(err).__name__}: {str(err)[:50 - len(type(err).__name__)]}"
    return onx.SerializeToString(), feed


def per_call_ms(fn, calls: int = CALLS) -> float:
    for _ in range(30):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000.0


def main() -> None:
    import onnxruntime as ort
    from sklearn.pipeline import Pipeline

    settings = bench_home()
    train, test = preparation.load_split(settings, "train"), preparation.load_split(settings, "test")
    print(f"{len(train):,} training rows, {len(test):,} test rows; {load()} on {os.cpu_count()} cores")
    print(f"{'features':9s} {'model':9s} {'ONNX export':34s} {'max |diff|':>10s} {'rows>1e-6':>9s} "
          f"{'1 row sk':>9s} {'1 row ort':>9s} {'1M sk':>7s} {'1M ort':>7s}")
    for feature_set in ("default", "extended"):
        spec = settings.dataset.with_feature_set(feature_set)
        features, cats = spec.features, spec.categorical_features
        x, xt = feature_frame(train, features, cats), feature_frame(test, features, cats)
        big = xt.sample(ROWS, replace=True, random_state=0).reset_index(drop=True)
        for kind in ("lr", "dt", "lightgbm"):
            model = Pipeline([*preprocess.preprocessor(spec, 0), ("model", estimator(kind))]).fit(x, train[settings.target])
            row = xt.head(1)
            sk_one = per_call_ms(lambda: model.predict_proba(row))
            t = time.perf_counter()
            want = model.predict_proba(big)
            sk_big = time.perf_counter() - t
            data, feed = convert(model, features, cats, kind)
            label = f"{'cat' if cats else 'num'} {kind}"
            if data is None:
                print(f"{feature_set:9s} {kind:9s} {'no: ' + feed[:30]:34s} {'':>10s} {'':>9s} {sk_one:9.3f} {'':>9s} "
                      f"{sk_big:7.2f} {'':>7s}  {load()}")
                continue
            one = ort.SessionOptions()
            one.intra_op_num_threads = 1
            session = ort.InferenceSession(data, one, providers=["CPUExecutionProvider"])
            out = session.get_outputs()[1].name
            diff = np.abs(session.run([out], feed(xt))[0][:, 1] - model.predict_proba(xt)[:, 1])
            row_feed = feed(row)
            ort_one = per_call_ms(lambda: session.run([out], row_feed))
            every = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            t = time.perf_counter()
            got = every.run([out], feed(big))[0]
            ort_big = time.perf_counter() - t
            assert got.shape == want.shape, label
            print(f"{feature_set:9s} {kind:9s} {'yes':34s} {diff.max():10.1e} {int((diff > 1e-6).sum()):9d} "
                  f"{sk_one:9.3f} {ort_one:9.3f} {sk_big:7.2f} {ort_big:7.2f}  {load()}")
    print("times: one row in ms (median of 500 calls), 1,000,000 rows in s (one call)")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
