"""The ONNX export of a fitted pipeline, where ONNX Runtime gives the pipeline's own answers.

`export` converts a pipeline with skl2onnx and keeps the result only when ONNX Runtime's
probabilities equal `predict_proba` (to `TOLERANCE`) on the rows it is given; the served model
(`core/modeling/pyfunc_model.py`) then runs it instead of the pipeline. Which pipelines, decided
by measuring the same models both ways (bench/engines.py, bench/RESULTS.md):

- numbers only, every step linear in double precision (scalers, logistic regression):
  exported; one row costs about 16 µs in ONNX Runtime against 690 µs in scikit-learn, with the
  same probabilities to 1e-16;
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

from core.modeling.pyfunc_model import ONNX_INPUT, onnx_proba, onnx_session

TOLERANCE = 1e-12
LINEAR_STEPS = ("StandardScaler", "MinMaxScaler", "LogisticRegression")


def exportable(model: Any) -> bool:
    """True when every step of `model` is one ONNX Runtime computes in double precision."""
    steps = [s for _, s in getattr(model, "steps", [("model", model)]) if s not in (None, "passthrough")]
    return bool(steps) and all(type(s).__name__ in LINEAR_STEPS and type(s).__module__.startswith("sklearn.")
                               for s in steps)


def export(model: Any, rows: pd.DataFrame) -> bytes | None:
    """The serialized ONNX model of `model` (a fitted binary classifier on `rows`' numeric columns),
    or None when it is not `exportable`, skl2onnx cannot convert it, or ONNX Runtime's
    probabilities differ from `predict_proba` on `rows` by more than TOLERANCE."""
    if not exportable(model) or len(getattr(model, "classes_", [])) != 2 or rows.empty:
        return None
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType
    except ImportError:  # installed by requirements.txt; without it the pipeline is served
        return None

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    try:
        onx = convert_sklearn(model, initial_types=[(ONNX_INPUT, DoubleTensorType([None, rows.shape[1]]))],
                              target_opset={"": 18, "ai.onnx.ml": 3}, options={id(final): {"zipmap": False}})
    except (RuntimeError, NotImplementedError, ValueError, TypeError):  # a step skl2onnx does not know
        return None
    data = onx.SerializeToString()
    x = rows.to_numpy(dtype=np.float64)
    try:
        got = onnx_proba(onnx_session(data), x)
    except Exception:  # noqa: BLE001 - ONNX Runtime lacks an operator for this graph: serve the pipeline
        return None
    want = np.asarray(model.predict_proba(rows))
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE):
        return None
    return data
