"""Prediction intervals of a regression model: conformal prediction on cross-validated residuals.

A regression version answers with its prediction and a symmetric interval
`[prediction - halfwidth, prediction + halfwidth]` meant to hold the true value in a share
`level` of rows (0.9 by default, `train --interval`). The halfwidth is the conformal quantile of
the absolute out-of-fold residuals `|y - oof|` of the training split (each row predicted by a
copy of the pipeline fitted without it): with `n` residuals, the `ceil((n + 1) * level)`-th
smallest. For exchangeable rows this covers a new row with probability at least `level`
(split-conformal's finite-sample guarantee, here with K-fold residuals as in MAPIE's "CV"
method: the served model is refit on every row, so its errors are if anything a little smaller
than the out-of-fold ones, and the coverage a little above `level`).

Why by hand rather than MAPIE (0.9.2 is on the package index, not installed): the method is
these few lines over out-of-fold predictions the training computes anyway; the registered model
stays a plain scikit-learn Pipeline whose halfwidth is one number in the version's tags and
`code/task.json`, so MLflow's safe skops format needs no `mapie.*` types trusted and the server
needs no extra package; and a dependency would have to earn its place (STYLE.md, 11) for what
MAPIE's `MapieRegressor(method="base", cv=K)` computes the same way.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_LEVEL = 0.9


def check_level(level: float) -> float:
    """`level` as a float; ValueError unless it lies strictly between 0 and 1."""
    value = float(level)
    if not 0.0 < value < 1.0 or value != value:
        raise ValueError(f"The interval's level must lie strictly between 0 and 1 (e.g. 0.9), got {level}.")
    return value


def conformal_halfwidth(y_true: np.ndarray, oof: np.ndarray, level: float = DEFAULT_LEVEL) -> float:
    """The halfwidth of the `level` interval from out-of-fold predictions `oof` of the targets
    `y_true`: the `ceil((n + 1) * level)`-th smallest absolute residual (the largest one when
    that rank passes `n`, i.e. fewer than `1 / (1 - level) - 1` rows: then the guarantee is not
    met, and the interval is as wide as the data allow). ValueError without rows."""
    level = check_level(level)
    r = np.sort(np.abs(np.asarray(y_true, dtype=float) - np.asarray(oof, dtype=float)))
    r = r[np.isfinite(r)]
    if not len(r):
        raise ValueError("No residuals to compute an interval from.")
    rank = min(math.ceil((len(r) + 1) * level), len(r))
    return float(r[rank - 1])


def bounds(prediction: np.ndarray, halfwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the symmetric interval around each prediction."""
    p = np.asarray(prediction, dtype=float)
    return p - halfwidth, p + halfwidth


def coverage_by_bin(y_true: np.ndarray, prediction: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    bins: int = 10) -> dict[str, list[float]]:
    """The share of targets inside their interval per bin of predicted value (quantile bins, at
    most `bins`): `{"mid": [...], "coverage": [...], "rows": [...]}`, what the coverage chart draws."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float)
    inside = (y >= np.asarray(lower, dtype=float)) & (y <= np.asarray(upper, dtype=float))
    if not len(p):
        return {"mid": [], "coverage": [], "rows": []}
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    out: dict[str, list[float]] = {"mid": [], "coverage": [], "rows": []}
    for b in range(max(len(edges) - 1, 1)):
        mask = which == b
        if mask.any():
            out["mid"].append(float(np.median(p[mask])))
            out["coverage"].append(float(inside[mask].mean()))
            out["rows"].append(float(mask.sum()))
    return out
