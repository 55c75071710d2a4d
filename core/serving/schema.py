"""Which input schema the workbench's model server lets MLflow apply before the model sees a request.

A model's signature declares whole-number features `long` (so that `pyfunc.predict` and
`mlflow models predict` take int64 data) and the others `double`. Before the model sees a
request, MLflow's scoring server casts each column to that type, silently: a JSON 2.5 sent for a
`long` column arrives as 2, a JSON "5" sent for a `double` column as 5.0, and a parquet float
column for a `long` one is refused with "Can not safely convert float64 to int64". The
workbench's loader (`core/modeling/pyfunc_model.py`) checks every request itself against the
dataset's rules (types, whole numbers, nulls, domains, categories) and says which column and row
is wrong, so in the workbench's own server MLflow's casts only lose information.

`served_without_casts` therefore removes the *input* part of the loaded model's signature in the
server's memory (the outputs and the `allow_unseen` parameter stay; the stored model keeps its
whole signature for every other client). Only models whose loader says it checks raw input
(`CHECKS_RAW_INPUT`) are changed: models logged before keep MLflow's casts, which their loaders
rely on.
"""
from __future__ import annotations

from typing import Any


def checks_raw_input(model: Any) -> bool:
    """True when the loaded pyfunc model's implementation checks any input layout itself."""
    impl = getattr(model, "_model_impl", None)
    return bool(getattr(type(impl), "CHECKS_RAW_INPUT", False)) and getattr(impl, "rules", None) is not None


def served_without_casts(model: Any) -> bool:
    """Drop MLflow's input schema from the loaded `model` (see the module docstring) when its
    loader checks raw input; True when it did."""
    if not checks_raw_input(model):
        return False
    from mlflow.models import ModelSignature

    signature = model.metadata.signature
    if signature is None or signature.inputs is None:
        return False
    model.metadata.signature = ModelSignature(inputs=None, outputs=signature.outputs,
                                              params=getattr(signature, "params", None))
    return True
