"""ROC-AUC with weighted positives, by ranks (numpy only): the label-free estimate's expected
ROC-AUC (`core.monitoring.health`) and the domain classifier's AUC (`core.monitoring.domain`).

Hand-written because scikit-learn's `roc_auc_score` takes hard labels (a sample weight cannot
split one row into a positive and a negative share) and sorts every row; this groups rows by
distinct score first. Below both of its users, so neither imports the other.
"""
from __future__ import annotations

import numpy as np


def score_groups(score: np.ndarray) -> np.ndarray:
    """The rank of each row's score among the distinct scores (0 for the lowest): `np.unique`'s
    inverse. A model with few distinct scores (a tree's leaves) is grouped by hashing
    (`pd.factorize`, 15x faster than the sort on 1,000,000 rows); many distinct scores by the sort
    (hashing a million distinct values is slower than sorting them)."""
    s = np.asarray(score, dtype="float64")
    if len(s) > 100_000 and len(np.unique(s[:20_000])) < 2_000:
        import pandas as pd

        codes, _ = pd.factorize(s, sort=True)
        return codes
    return np.unique(s, return_inverse=True)[1]


def weighted_auc(score: np.ndarray, weight_pos: np.ndarray, groups: np.ndarray | None = None) -> float:
    """ROC-AUC when row i is positive with probability `weight_pos[i]` (ties count one half).

    Per distinct score: the positive weight and the row count (`score_groups` + `np.bincount`;
    `groups` when already computed for these scores), so the temporaries are the size of the
    distinct scores (a few on a tree's probabilities) plus one index per row: 5,000,000 rows in
    about 150 MB.
    """
    q = np.asarray(weight_pos, dtype="float64")
    inverse = score_groups(score) if groups is None else groups
    pos = np.bincount(inverse, weights=q)
    neg = np.bincount(inverse).astype("float64")
    del inverse
    neg -= pos
    total = pos.sum() * neg.sum()
    if total <= 0:
        return float("nan")
    below = np.cumsum(neg)
    below -= 0.5 * neg  # negatives below each score, ties counting one half
    return float(np.dot(pos, below) / total)
