"""Whether a model's fast path (`core/modeling/fast_scoring.py`) gives the pipeline's answers,
decided when the model is logged (`model_io.log_model`), never at serving time.

`check` builds the fast path of a fitted model and compares its answers, computed as the served
model computes them (a float matrix for a pipeline of numbers, a frame with text categories
otherwise), with the pipeline's own (`predict_proba`, a regressor's `predict`) on the example
rows and on random rows that keep the dataset's rules (`valid_rows`: every category, unseen ones
and missing values where allowed, numbers over each domain). The verdict, written beside the
model as `code/fast_path.json` (`pyfunc_model.FAST_NOTE`) and in its MLmodel, is the engine:
"fast-path" when every answer is within TOLERANCE, else "scikit-learn" with the reason.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TOLERANCE = 1e-9  # on a probability; on a regressor's prediction, relative to the largest one checked
EXAMPLE_ROWS = 2000
RANDOM_ROWS = 1000
UNSEEN = "__a category never seen in training__"


def valid_rows(rules: Any, n: int, seed: int = 0, example: pd.DataFrame | None = None,
               unseen: bool = True) -> pd.DataFrame:
    """`n` random rows that keep `rules` (a `core.rules.RuleTable`): each category of a
    categorical feature (an unseen one in about 5 % of rows when `unseen`: the served model scores
    them when asked to), numbers uniform over the domain (the example's range for an open bound),
    whole where the rule says so, the allowed values where it lists them; NaN (a number) or None
    (a category) in about 10 % of a nullable feature's rows."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for rule in rules.rules:
        if rule.categorical:
            values = np.array(list(rule.values) + ([UNSEEN] if unseen else []), dtype=object)
            weights = np.full(len(values), 1.0)
            if unseen:
                weights[-1] = max(len(rule.values), 1) / 19  # about 5 %
            column = rng.choice(values, size=n, p=weights / weights.sum()).astype(object)
            if rule.nullable:
                column[rng.random(n) < 0.1] = None
        else:
            if rule.values:
                column = rng.choice(np.asarray(rule.values, dtype=np.float64), size=n)
            else:
                seen = example[rule.name].to_numpy(dtype=np.float64, na_value=np.nan) \
                    if example is not None and rule.name in example.columns else np.array([])
                seen = seen[np.isfinite(seen)]
                lo = rule.minimum if rule.minimum is not None else (float(seen.min()) if seen.size else -1e3)
                hi = rule.maximum if rule.maximum is not None else (float(seen.max()) if seen.size else 1e3)
                column = rng.uniform(lo, hi, size=n)
                if rule.integer:
                    column = np.clip(np.round(column), np.ceil(lo), np.floor(hi))
            if rule.nullable:
                column = column.copy()
                column[rng.random(n) < 0.1] = np.nan
        columns[rule.name] = column
    return pd.DataFrame(columns)


def pipeline_answers(model: Any, frame: pd.DataFrame, regression: bool) -> np.ndarray:
    """The pipeline's own answers of `frame` (its features, categories as text with NaN for missing)."""
    return np.asarray(model.predict(frame) if regression else model.predict_proba(frame), dtype=np.float64)


def served_input(fast: Any, frame: pd.DataFrame, features: list[str]) -> Any:
    """What the served model gives the fast path for `frame`: a float matrix in the model's order
    for a pipeline of numbers, the frame otherwise."""
    if getattr(fast, "takes_matrix", False):
        return frame.loc[:, features].to_numpy(dtype=np.float64, na_value=np.nan)
    return frame.loc[:, features]


def fast_answers(fast: Any, frame: pd.DataFrame, features: list[str], regression: bool) -> np.ndarray:
    x = served_input(fast, frame, features)
    return np.asarray(fast.predict(x) if regression else fast.predict_proba(x), dtype=np.float64)


def difference(want: np.ndarray, got: np.ndarray, regression: bool) -> float:
    """The largest difference, relative to the largest prediction's size (at least 1) for a regressor."""
    if want.shape != got.shape:
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(want)))) if regression and want.size else 1.0
    with np.errstate(invalid="ignore"):
        d = np.abs(want - got)
    same_nan = np.isnan(want) & np.isnan(got)
    d = np.where(same_nan, 0.0, d)
    return float(np.nanmax(np.where(np.isnan(d), np.inf, d))) / scale if d.size else 0.0


def check(model: Any, example: pd.DataFrame, rules: Any, regression: bool, seed: int = 0) -> dict[str, Any]:
    """The fast path's verdict for `model` (see the module docstring): {"engine", "note",
    "checked_rows", "max_difference"}."""
    from core.modeling.fast_scoring import Unsupported, fast_model

    features = [str(c) for c in getattr(model, "feature_names_in_", [])]
    try:
        fast = fast_model(model)
    except (Unsupported, AttributeError, KeyError, TypeError, ValueError) as err:
        return {"engine": "scikit-learn", "note": f"no fast path for this pipeline: {str(err)[:300]}",
                "checked_rows": 0, "max_difference": None}
    if rules is None or not features:
        return {"engine": "scikit-learn", "note": "no fast path: the model has no input rules to check it on",
                "checked_rows": 0, "max_difference": None}
    categorical = [r.name for r in rules.rules if r.categorical]
    rows = example.loc[:, features].sample(min(len(example), EXAMPLE_ROWS), random_state=seed) \
        if len(example) else example.loc[:, features]
    rows = pd.concat([rows.reset_index(drop=True),
                      valid_rows(rules, RANDOM_ROWS, seed, example).loc[:, features]], ignore_index=True)
    for c in categorical:
        rows[c] = rows[c].astype(object).where(rows[c].notna(), np.nan)
    want = pipeline_answers(model, rows, regression)
    try:
        got = fast_answers(fast, rows, features, regression)
    except Exception as err:  # noqa: BLE001 - whatever fails here, the pipeline serves
        return {"engine": "scikit-learn", "note": f"the fast path failed on the checked rows "
                                                  f"({type(err).__name__}: {str(err)[:300]})",
                "checked_rows": len(rows), "max_difference": None}
    gap = difference(want, got, regression)
    if not gap <= TOLERANCE:
        return {"engine": "scikit-learn", "note": f"the fast path's answers differ from the pipeline's by up to "
                                                  f"{gap:.3g} (more than {TOLERANCE:g}) on {len(rows):,} rows "
                                                  "checked: served by the pipeline",
                "checked_rows": len(rows), "max_difference": gap}
    return {"engine": "fast-path", "note": f"equal to the pipeline within {TOLERANCE:g} on {len(rows):,} rows "
                                           f"(largest difference {gap:.3g})",
            "checked_rows": len(rows), "max_difference": gap}
