"""The metrics of `core.modeling.metrics`, for every group of rows at once (metrics per segment).

`binary`, `multiclass` and `regression` take the rows' group (`codes`, 0..k-1: e.g. the segments
of one feature, `core.monitoring.segments`) and return one dict per group with the keys and values
that `metrics.from_proba`, `metrics.multiclass` and `metrics.regression` return on that group's
rows (equal to scikit-learn's to rounding: tests/unit/test_segments.py compares them), except
that a group's macro F1 averages over the classes present in it (see `multiclass`).

Hand-written, numpy only: scikit-learn's metric functions validate, label-encode and (ROC-AUC)
sort their input on every call, so one call per segment costs one pass over all the rows per
feature for each of the seven binary metrics (13.8 s for 28 segments of 1,000,000 rows, loaded;
bench/segments.py). Every figure here but ROC-AUC is a sum per group (`np.bincount`), and ROC-AUC
is the Mann-Whitney statistic on one sort of the rows by (group, score).
"""
from __future__ import annotations

import numpy as np


def _sums(codes: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=k).astype("float64")[:k]


def _ratio(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """a / b, `empty` where b is 0 (scikit-learn's `zero_division=0`, or NaN)."""
    out = np.full(len(a), empty, dtype="float64")
    np.divide(a, b, out=out, where=b > 0)
    return out


def _small_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """The codes in the narrowest integer type: numpy's stable sort of 16-bit integers is a radix sort."""
    return codes.astype(np.int16 if k < 2**15 else np.int64, copy=False)


def auc(y: np.ndarray, p: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """ROC-AUC of score `p` for labels `y` (1/0) in each group; NaN where a group lacks a class.

    The rows sorted by score, then stably by group: within a group the scores are in order;
    each run of equal scores counts its negatives below it and half of its own (ties one half),
    exactly scikit-learn's `roc_auc_score` (the trapezoid under the ROC curve)."""
    by_score = np.argsort(p, kind="stable")
    order = by_score[np.argsort(_small_codes(codes, k)[by_score], kind="stable")]
    c, s, pos = codes[order], p[order], y[order]
    n = len(c)
    if n == 0:
        return np.full(k, np.nan)
    start = np.ones(n, dtype=bool)
    start[1:] = (c[1:] != c[:-1]) | (s[1:] != s[:-1])
    tie = np.cumsum(start) - 1                      # each row's run of equal scores in its group
    runs = int(tie[-1]) + 1
    run_group = c[start]
    run_pos = np.bincount(tie, weights=pos, minlength=runs)
    run_neg = np.bincount(tie, minlength=runs) - run_pos
    below = np.cumsum(run_neg) - run_neg            # negatives before each run (all groups)
    first = np.searchsorted(run_group, np.arange(k))  # each group's first run (runs are in group order)
    offset = np.concatenate([below, [0.0]])[np.minimum(first, runs)]
    below = below - offset[run_group]               # negatives before each run within its group
    num = _sums(run_group, k, run_pos * (below + 0.5 * run_neg))
    p_total, n_total = _sums(run_group, k, run_pos), _sums(run_group, k, run_neg)
    return _ratio(num, p_total * n_total, np.nan)


def binary(y: np.ndarray, proba: np.ndarray, threshold: float | None, codes: np.ndarray,
           k: int) -> list[dict[str, float]]:
    """`metrics.from_proba` per group (the class is `proba >= threshold`, 0.5 when None)."""
    y = np.asarray(y, dtype="float64").astype(int).astype("float64")
    p = np.clip(np.asarray(proba, dtype="float64"), 1e-15, 1 - 1e-15)
    pred = (p >= (0.5 if threshold is None else threshold)).astype("float64")
    rows = _sums(codes, k)
    loss = _sums(codes, k, -(y * np.log(p) + (1 - y) * np.log1p(-p)))
    tp, positives, predicted = _sums(codes, k, y * pred), _sums(codes, k, y), _sums(codes, k, pred)
    correct = _sums(codes, k, (pred == y).astype("float64"))
    brier = _sums(codes, k, (p - y) ** 2)
    roc = auc(y, p, codes, k)
    f1 = _ratio(2 * tp, positives + predicted)
    precision, recall = _ratio(tp, predicted), _ratio(tp, positives)
    return [{"log_loss": float(loss[g] / rows[g]), "f1": float(f1[g]), "roc_auc": float(roc[g]),
             "accuracy": float(correct[g] / rows[g]), "precision": float(precision[g]), "recall": float(recall[g]),
             "brier": float(brier[g] / rows[g])} if rows[g] else {} for g in range(k)]


def multiclass(y: np.ndarray, proba: np.ndarray, codes: np.ndarray, k: int) -> list[dict[str, float]]:
    """`metrics.multiclass` per group (the class positions in `y`; F1 per class as `f1_<i>`)."""
    p = np.clip(np.asarray(proba, dtype="float64"), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    yi = np.asarray(y, dtype="float64").astype(np.int64)
    m = p.shape[1]
    pred = p.argmax(axis=1)
    rows = _sums(codes, k)
    loss = _sums(codes, k, -np.log(p[np.arange(len(yi)), yi]))
    correct = _sums(codes, k, (pred == yi).astype("float64"))
    cells = np.int64(m) * codes
    true_c = np.bincount(cells + yi, minlength=k * m)[:k * m].reshape(k, m).astype("float64")
    pred_c = np.bincount(cells + pred, minlength=k * m)[:k * m].reshape(k, m).astype("float64")
    tp_c = np.bincount((cells + yi)[pred == yi], minlength=k * m)[:k * m].reshape(k, m).astype("float64")
    f1 = np.zeros((k, m))
    present = (true_c + pred_c) > 0
    np.divide(2 * tp_c, true_c + pred_c, out=f1, where=present)
    # macro F1 over the classes present in the group (actual or predicted), scikit-learn's default
    # when no labels are given: a segment holding two of three classes is not marked down a third
    # for the class it cannot hold (`metrics.multiclass` averages over every class: on the whole
    # batch, where every class is present, the two agree)
    macro = _ratio((f1 * present).sum(axis=1), present.sum(axis=1).astype("float64"))
    return [{"log_loss": float(loss[g] / rows[g]), "accuracy": float(correct[g] / rows[g]),
             "f1_macro": float(macro[g]), **{f"f1_{i}": float(f1[g, i]) for i in range(m)}}
            if rows[g] else {} for g in range(k)]


def regression(y: np.ndarray, output: np.ndarray, codes: np.ndarray, k: int) -> list[dict[str, float]]:
    """`metrics.regression` per group: `output` the predictions (n,) or with their interval (n, 3)."""
    y = np.asarray(y, dtype="float64")
    out = np.asarray(output, dtype="float64")
    pred = out[:, 0] if out.ndim == 2 else out
    err = y - pred
    rows = _sums(codes, k)
    sse, sae = _sums(codes, k, err ** 2), _sums(codes, k, np.abs(err))
    mean = _ratio(_sums(codes, k, y), rows)
    sst = _sums(codes, k, (y - mean[codes]) ** 2)
    zeros = _sums(codes, k, (y == 0).astype("float64"))
    ape = _sums(codes, k, np.abs(err) / np.maximum(np.abs(y), np.finfo("float64").eps))
    inside = None
    if out.ndim == 2:
        inside = _sums(codes, k, ((y >= out[:, 1]) & (y <= out[:, 2])).astype("float64"))
    result = []
    for g in range(k):
        if not rows[g]:
            result.append({})
            continue
        if rows[g] < 2:
            r2 = float("nan")
        elif sst[g] > 0:
            r2 = float(1 - sse[g] / sst[g])
        else:  # scikit-learn's force_finite: a constant target is fit perfectly or not at all
            r2 = 1.0 if sse[g] == 0 else 0.0
        d = {"rmse": float(np.sqrt(sse[g] / rows[g])), "mae": float(sae[g] / rows[g]), "r2": r2}
        if not zeros[g]:
            d["mape"] = float(ape[g] / rows[g])
        if inside is not None:
            d["interval_coverage"] = float(inside[g] / rows[g])
        result.append(d)
    return result
