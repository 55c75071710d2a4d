"""The verdicts of a drift check: what to do about a batch (`recommend`) and whether it calls
for retraining (`alarm`), from the thresholds in `Settings.drift`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from core.config import Settings
from core.monitoring.drift_report import DriftStats, Estimate, FeatureDrift


def recommend(dataset_drift: bool, stats: DriftStats, prediction: FeatureDrift,
              est: Estimate, realized: dict[str, float] | None, test: dict[str, float],
              drop: float, rows_noun: str = "rows") -> str:
    """One sentence saying what to do about this batch (`rows_noun` names its rows, e.g. 'shots')."""
    drifted = ", ".join(stats.drifted) or "none"
    if realized is not None:
        f1_drop = test["f1"] - realized["f1"]
        auc_drop = test["roc_auc"] - realized["roc_auc"] if np.isfinite(realized["roc_auc"]) else 0.0
        if f1_drop >= drop or auc_drop >= drop:
            return (f"Retrain: on the labelled rows F1 is {realized['f1']:.3f} (test {test['f1']:.3f}) and "
                    f"ROC-AUC {realized['roc_auc']:.3f} (test {test['roc_auc']:.3f}); drifted features: {drifted}.")
    if not est.trustworthy:
        return ("Do not trust the model on batches like this one without labels: it lies outside the "
                f"training data ({est.reasons[0]}). Collect labels for these {rows_noun} and retrain on data "
                "that covers them.")
    if est.f1 <= test["f1"] - drop or est.roc_auc <= test["roc_auc"] - drop:
        return (f"Plan a retrain: the estimated F1 is {est.f1:.3f} (test {test['f1']:.3f}) and ROC-AUC "
                f"{est.roc_auc:.3f} (test {test['roc_auc']:.3f}); drifted features: {drifted}.")
    if dataset_drift or prediction.drift:
        return (f"Watch the next batches and collect labels: features drifted ({drifted}) but the estimated "
                f"performance holds (F1 {est.f1:.3f}, test {test['f1']:.3f}).")
    return "No action needed: the batch looks like the training data and the estimated performance holds."


def alarm(report: Any, settings: Settings) -> list[str]:
    """Why a drift check (`monitoring.DriftReport`) calls for retraining; empty when it does not.

    Thresholds (`Settings.drift`): dataset drift; realised F1 (with labels) or a trustworthy
    estimated F1 at least `performance_drop` below the test F1; any feature with more than
    `trust_out_of_range` of its rows outside the training range.
    """
    t = settings.drift
    test_f1 = report.test_metrics["f1"]
    reasons = []
    if report.dataset_drift:
        reasons.append(f"dataset drift ({report.n_drifted} of {report.n_features} features drifted)")
    if report.realized is not None and report.realized["f1"] <= test_f1 - t.performance_drop:
        reasons.append(f"realised F1 {report.realized['f1']:.3f} vs {test_f1:.3f} on the test split")
    elif report.estimate.trustworthy and report.estimate.f1 <= test_f1 - t.performance_drop:
        reasons.append(f"estimated F1 {report.estimate.f1:.3f} vs {test_f1:.3f} on the test split")
    outside = {k: f.out_of_range for k, f in report.stats.features.items() if f.out_of_range > t.trust_out_of_range}
    categorical = set(settings.dataset.categorical_features)
    ranges = {k: v for k, v in outside.items() if k not in categorical}
    unseen = {k: v for k, v in outside.items() if k in categorical}
    if ranges:
        reasons.append("rows outside the training range: " +
                       ", ".join(f"{k} {share:.1%}" for k, share in ranges.items()))
    if unseen:
        reasons.append("rows in categories never seen in training: " +
                       ", ".join(f"{k} {share:.1%}" for k, share in unseen.items()))
    return reasons
