"""The ONNX export of a fitted pipeline, where ONNX Runtime gives the pipeline's own answers.

`export` converts a pipeline with skl2onnx and keeps the result only when ONNX Runtime's
probabilities equal `predict_proba` (to `TOLERANCE`) on the rows it is given; the served model
(`core/modeling/pyfunc_model.py`) then runs it instead of the pipeline. Which pipelines, decided
by measuring the same models both ways (bench/engines.py, bench/RESULTS.md):

- numbers only, every step linear in double precision (scalers, logistic regression):
  exported; one row costs about 16 µs in ONNX Runtime against 690 µs in scikit-learn, with the
  same probabilities to 1e-16; the same for a multiclass logistic regression (its k
  probabilities) and a linear regressor (ridge, least squares: its predictions), each kept only
  when ONNX Runtime gives the pipeline's own answers on the rows checked;
- trees (decision tree, LightGBM): not exported. ONNX Runtime's tree ensembles compare float32
  values against float32 thresholds; the decision tree's answers then differed from
  scikit-learn's on 4 of 4,057 Kobe test rows (by up to 0.63), LightGBM's by up to 1e-7;
- categorical features: not exported (skl2onnx 1.20 cannot convert OneHotEncoder's infrequent
  categories).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.modeling.pyfunc_model import ONNX_INPUT, onnx_output, onnx_session, task_name

TOLERANCE = 1e-12  # on a probability; on a regressor's prediction, relative to the largest one checked
LINEAR_STEPS = ("StandardScaler", "MinMaxScaler", "LogisticRegression", "Ridge", "LinearRegression")


def exportable(model: Any) -> bool:
    """True when every step of `model` is one ONNX Runtime computes in double precision."""
    steps = [s for _, s in getattr(model, "steps", [("model", model)]) if s not in (None, "passthrough")]
    return bool(steps) and all(type(s).__name__ in LINEAR_STEPS and type(s).__module__.startswith("sklearn.")
                               for s in steps)


def export(model: Any, rows: pd.DataFrame, task: dict[str, Any] | None = None) -> bytes | None:
    """The serialized ONNX model of `model` (a fitted classifier, or regressor for a regression
    `task`, on `rows`' numeric columns), or None when it is not `exportable`, skl2onnx cannot
    convert it, or ONNX Runtime's answers differ from the pipeline's (`predict_proba`, a
    regressor's `predict`) on `rows` by more than TOLERANCE (times the largest prediction's size
    for a regressor, at least 1)."""
    regression = task_name(task) == "regression"
    classes = len(getattr(model, "classes_", []))
    if not exportable(model) or rows.empty or (classes < 2 if not regression else classes != 0):
        return None
    if task_name(task) == "binary" and classes != 2:
        return None
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType
    except ImportError:  # installed by requirements.txt; without it the pipeline is served
        return None

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    try:
        onx = convert_sklearn(model, initial_types=[(ONNX_INPUT, DoubleTensorType([None, rows.shape[1]]))],
                              target_opset={"": 18, "ai.onnx.ml": 3},
                              options=None if regression else {id(final): {"zipmap": False}})
    except (RuntimeError, NotImplementedError, ValueError, TypeError):  # a step skl2onnx does not know
        return None
    data = onx.SerializeToString()
    x = rows.to_numpy(dtype=np.float64)
    try:
        session = onnx_session(data)
        got = session.run([session.get_outputs()[onnx_output(task)].name], {ONNX_INPUT: x})[0]
    except Exception:  # noqa: BLE001 - ONNX Runtime lacks an operator for this graph: serve the pipeline
        return None
    want = np.asarray(model.predict(rows) if regression else model.predict_proba(rows))
    got = np.asarray(got).reshape(want.shape) if regression and np.size(got) == np.size(want) else np.asarray(got)
    scale = max(1.0, float(np.max(np.abs(want)))) if regression and want.size else 1.0
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE * scale):
        return None
    return data
