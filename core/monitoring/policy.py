"""The one policy of the monitor: every verdict about a batch, from the thresholds in
`Settings.drift` (`core.config.DriftThresholds`).

- `dataset_drift`: whether the batch drifted as a whole, and which rule fired;
- `trust`: why the label-free performance estimate can't be trusted on it;
- `judge`: adherence (does the champion hold up?), the retraining alarm and the recommendation,
  all three from the same rules:
  - performance, by the model's task kind (`TaskPolicy`): binary, realised F1 or ROC-AUC at least
    `performance_drop` below the test figure, or the log loss `log_loss_rise` (relative) above it;
    multiclass, accuracy or macro F1 that far below, or the log loss that far above; regression,
    RMSE or MAE `error_rise` (relative) above the test figure, or the interval coverage
    `performance_drop` below it (`realised_drop`); without labels, a trustworthy estimate that
    far off (`estimated_drop`);
  - coverage: a feature with more than `trust_out_of_range` of its rows outside the training
    range, or in categories never seen in training (`outside`);
  - drift: `dataset_drift`.

Its callers only phrase the answer: the drift check (`check.check`, the Drift page and
`python -m core drift`) stores `judge`'s verdict in its report; `alarm` reads it back (the Drift
page's retraining alarm); `core.monitoring.adherence` (the Production page and `python -m core
apply`) takes its verdict from `judge`; `retrain --if-needed` retrains when the check of a new
labelled batch rang the alarm (`core.monitoring.retrain_policy.decide`). So none of them can
contradict another.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Collection, Mapping

import numpy as np

from core.config import DriftThresholds, Settings
from core.modeling import metrics

ADHERENT, NOT_ADHERENT, UNKNOWN = "adherent", "not adherent", "unknown (no labels)"


@dataclass(frozen=True)
class Verdict:
    """Everything the policy says about one batch."""

    adherence: str  # ADHERENT, NOT_ADHERENT or UNKNOWN (no labelled rows)
    degraded: tuple[str, ...]  # performance reasons (realised, or a trustworthy estimate)
    outside: tuple[str, ...]  # features leaving the training data
    alarm: tuple[str, ...]  # why retraining is called for (empty: it is not)
    recommendation: str
    calm: bool = False  # the recommendation is "no action needed" (pages show it as good news)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the rules
def dataset_drift(n_drifted: int, n_features: int, domain: Any, t: DriftThresholds) -> tuple[bool, tuple[str, ...]]:
    """Dataset drift and the rules that fired: at least `dataset_share` of the features drift,
    or the domain classifier's 95 % interval (`domain.DomainResult`, or None) lies at or above
    `domain_auc`."""
    rules = []
    if n_features and n_drifted / n_features >= t.dataset_share:
        rules.append(f"{n_drifted} of {n_features} features drifted (limit {t.dataset_share:.0%} of them)")
    if domain is not None and domain.low >= t.domain_auc:
        rules.append(f"the domain classifier tells batch rows from training rows: {domain.text()}, "
                     f"lower bound at or above {t.domain_auc:.2f}")
    return bool(rules), tuple(rules)


# how `estimators.reference_reasons` starts its reasons: the reference is too small, the batch may be fine
REFERENCE_REASONS = ("the estimate's ", "the test split holds fewer than ")


def outside(out_of_range: Mapping[str, float], categorical: Collection[str], t: DriftThresholds) -> tuple[str, ...]:
    """The features with more than `trust_out_of_range` of their rows outside the training range
    (categorical: in categories never seen in training), most first."""
    far = sorted(((k, v) for k, v in out_of_range.items() if v > t.trust_out_of_range), key=lambda kv: -kv[1])
    return tuple(f"{share:.1%} of rows have {name} "
                 + ("in categories never seen in training" if name in categorical else "outside the training range")
                 + f" (limit {t.trust_out_of_range:.0%})" for name, share in far)


def trust(out_of_range: Mapping[str, float], domain_auc: float | None, settings: Settings) -> tuple[str, ...]:
    """Why a label-free estimate can't be trusted on this batch (empty when it can): `outside`,
    or a domain classifier AUC at or above `trust_domain_auc` (the point estimate: any sign of
    leaving the calibration data is enough to doubt an extrapolation)."""
    t = settings.drift
    reasons = list(outside(out_of_range, set(settings.dataset.categorical_features), t))
    if domain_auc is not None and domain_auc >= t.trust_domain_auc:
        reasons.append(f"a classifier tells batch rows from training rows with ROC-AUC {domain_auc:.3f} "
                       f"(limit {t.trust_domain_auc:.2f}): the model is extrapolating")
    return tuple(reasons)


# --------------------------------------------------------------------------- per task kind
@dataclass(frozen=True)
class TaskPolicy:
    """What the policy watches for one task kind (`core.modeling.tasks`): the figures a check
    shows (test, estimated, realised: `keys`), the one that leads a verdict and the history chart
    (`headline`), and the rules that make a batch degraded (`rules`: a figure and how it fails:
    "drop", at least `performance_drop` below the test figure; "rise", at least the relative
    `log_loss_rise` (log loss) or `error_rise` (RMSE, MAE) above it)."""

    task: str
    keys: tuple[str, ...]
    headline: str
    rules: tuple[tuple[str, str], ...]

    def limit(self, metric: str, t: DriftThresholds) -> float:
        """The threshold of one rule's figure."""
        if metric == "log_loss":
            return t.log_loss_rise
        return t.error_rise if metric in ERRORS else t.performance_drop


ERRORS = frozenset({"rmse", "mae"})  # figures in the target's unit (lower is better)
TASK_POLICIES: dict[str, TaskPolicy] = {p.task: p for p in (
    TaskPolicy("binary", ("accuracy", "f1", "roc_auc"), "f1",
               (("f1", "drop"), ("roc_auc", "drop"), ("log_loss", "rise"))),
    TaskPolicy("multiclass", ("accuracy", "f1_macro"), "accuracy",
               (("accuracy", "drop"), ("f1_macro", "drop"), ("log_loss", "rise"))),
    TaskPolicy("regression", ("rmse", "mae", "interval_coverage"), "rmse",
               (("rmse", "rise"), ("mae", "rise"), ("interval_coverage", "drop"))),
)}


def of(task: str | None) -> TaskPolicy:
    """The policy of a task kind (binary when None)."""
    return TASK_POLICIES[task or "binary"]


def number(metric: str, value: float) -> str:
    """A figure as the verdicts write it: errors (in the target's unit) with as many digits as
    they need, shares and scores with three decimals."""
    if metric in ERRORS:
        a = abs(value)
        return f"{value:,.0f}" if a >= 100 else f"{value:.2f}" if a >= 1 else f"{value:#.3g}"
    return f"{value:.3f}"


def _fails(metric: str, how: str, test: Mapping[str, float], value: float, t: DriftThresholds,
           p: TaskPolicy) -> bool:
    ref = test.get(metric)
    if ref is None or value is None or not (np.isfinite(ref) and np.isfinite(value)):
        return False
    if how == "drop":
        return ref - value >= p.limit(metric, t)
    return value >= ref * (1 + p.limit(metric, t))


def realised_drop(test: Mapping[str, float], real: Mapping[str, float], t: DriftThresholds,
                  task: str | None = None) -> tuple[str, ...]:
    """Why the realised figures (labelled rows) fall short of the test split's, by the task's
    rules (`TaskPolicy.rules`; binary: F1 or ROC-AUC at least `performance_drop` lower, log loss at
    least `log_loss_rise` (relative) higher)."""
    p = of(task)
    return tuple(f"realised {metrics.label(m)} {number(m, real[m])} vs {number(m, test[m])} on the test split"
                 for m, how in p.rules if m in real and _fails(m, how, test, real[m], t, p))


def estimated_drop(test: Mapping[str, float], est: Any, t: DriftThresholds, task: str | None = None) -> tuple[str, ...]:
    """Why a trustworthy label-free estimate (`Estimate`) falls short, by the task's rules on the
    figures it estimates (binary: F1 or ROC-AUC at least `performance_drop` below the test figure);
    nothing when the estimate can't be trusted."""
    if est is None or not est.trustworthy:
        return ()
    p = of(task)
    found = []
    for m, how in p.rules:
        value = est.value(m)
        if value is not None and _fails(m, how, test, value, t, p):
            found.append(f"estimated {metrics.label(m)} {number(m, value)} vs {number(m, test[m])} on the test split")
    return tuple(found)


# --------------------------------------------------------------------------- the verdict
def judge(
    *,
    test: Mapping[str, float],
    realized: Mapping[str, float] | None,
    out_of_range: Mapping[str, float],
    categorical: Collection[str],
    t: DriftThresholds,
    estimate: Any = None,
    drift: tuple[bool, tuple[str, ...]] = (False, ()),
    drifted: Collection[str] = (),
    prediction_drift: bool = False,
    rows_noun: str = "rows",
    task: str | None = None,
) -> Verdict:
    """Adherence, the retraining alarm and the recommendation for one batch.

    `test`: the champion's test figures; `realized`: the same on the batch's labelled rows (None
    without labels); `out_of_range`: each feature's share of rows outside the training data;
    `estimate`: the label-free `Estimate` (None when not computed); `drift`: `dataset_drift`'s
    answer; `drifted`: the drifted features' names; `task`: the model's task kind (binary when
    None), whose rules and figures apply (`TaskPolicy`).
    """
    real = realised_drop(test, realized, t, task) if realized is not None else ()
    est = estimated_drop(test, estimate, t, task) if realized is None else ()
    far = outside(out_of_range, set(categorical), t)
    drifted_text = ", ".join(drifted) or "none"
    adherence = UNKNOWN if realized is None else (NOT_ADHERENT if real or far else ADHERENT)
    alarm = tuple([f"dataset drift ({'; '.join(drift[1])})"] if drift[0] else []) + real + est
    cats = set(categorical)
    beyond = sorted(((k, v) for k, v in out_of_range.items() if v > t.trust_out_of_range), key=lambda kv: -kv[1])
    ranges = [f"{k} {v:.1%}" for k, v in beyond if k not in cats]
    unseen = [f"{k} {v:.1%}" for k, v in beyond if k in cats]
    if ranges:
        alarm += ("rows outside the training range: " + ", ".join(ranges),)
    if unseen:
        alarm += ("rows in categories never seen in training: " + ", ".join(unseen),)
    if real:
        advice = f"Retrain: on the labelled {rows_noun}, {'; '.join(real)}; drifted features: {drifted_text}."
    elif estimate is not None and not estimate.trustworthy and (realized is None or task in (None, "binary")):
        # (a labelled batch of another kind is judged on its labels; binary keeps its advice as it was)
        why = estimate.reasons[0]
        if why.startswith(REFERENCE_REASONS):  # the test split is too small, not the batch far away
            advice = (f"Do not trust the model's label-free estimate on batches like this one: {why}. Collect "
                      f"labels for these {rows_noun} to judge it, and retrain on more labelled {rows_noun}.")
        else:
            advice = ("Do not trust the model on batches like this one without labels: it lies outside the "
                      f"training data ({why}). Collect labels for these {rows_noun} and retrain on "
                      "data that covers them.")
    elif far:
        advice = (f"Retrain on data that covers these {rows_noun}: {far[0]}; the labelled {rows_noun} hold up, "
                  "but the model is extrapolating.")
    elif est:
        advice = f"Plan a retrain: {'; '.join(est)}; drifted features: {drifted_text}."
    elif drift[0] or prediction_drift:
        key = of(task).headline
        value = realized.get(key) if realized is not None else (estimate.value(key) if estimate is not None else None)
        value = float("nan") if value is None else value
        moved = f"features drifted ({drifted_text})" if drifted else "the predictions' distribution moved"
        advice = (f"Watch the next batches and collect labels: {moved} but the performance holds "
                  f"({metrics.label(key)} {number(key, value)}, test {number(key, test[key])}).")
    else:
        advice = "No action needed: the batch looks like the training data and the performance holds."
        return Verdict(adherence=adherence, degraded=real or est, outside=far, alarm=alarm,
                       recommendation=advice, calm=True)
    return Verdict(adherence=adherence, degraded=real or est, outside=far, alarm=alarm, recommendation=advice)


@dataclass(frozen=True)
class BatchVerdict:
    """`batch_verdict`'s answer: dataset drift and its rules, the estimate with whether to trust
    it, its error against the realised figures (None without labels) and the `Verdict`."""

    dataset_drift: bool
    rules: tuple[str, ...]
    estimate: Any
    error: dict[str, float] | None
    verdict: Verdict


def batch_verdict(stats: Any, parts: Any, domain: Any, settings: Settings, task: str | None) -> BatchVerdict:
    """Every verdict on one batch, or one chunk of it, from its features' drift (`DriftStats`),
    the task's measures (`task_health.Parts`) and the domain classifier (`DomainResult`, or None
    when not run): `dataset_drift`, `trust` (then the estimate's `trustworthy`) and `judge`."""
    import dataclasses

    t = settings.drift
    drift = dataset_drift(len(stats.drifted), len(stats.features), domain, t)
    oor = {k: v.out_of_range for k, v in stats.features.items()}
    reasons = trust(oor, None if domain is None else domain.auc, settings) + tuple(parts.trust_reasons)
    est = dataclasses.replace(parts.estimate, trustworthy=not reasons, reasons=reasons)
    error = None
    if parts.realized is not None:
        keys = [k for k in of(task).keys if est.value(k) is not None and k in parts.realized]
        error = {k: est.value(k) - parts.realized[k] for k in keys}
    verdict = judge(test=parts.test_metrics, realized=parts.realized, out_of_range=oor,
                    categorical=settings.dataset.categorical_features, t=t, estimate=est, drift=drift,
                    drifted=stats.drifted, prediction_drift=parts.prediction.drift,
                    rows_noun=settings.dataset.rows_noun, task=task)
    return BatchVerdict(dataset_drift=drift[0], rules=drift[1], estimate=est, error=error, verdict=verdict)


def judge_report(report: Any, settings: Settings) -> Verdict:
    """`judge` on a drift check's `DriftReport`."""
    return judge(test=report.test_metrics, realized=report.realized,
                 out_of_range={k: f.out_of_range for k, f in report.stats.features.items()},
                 categorical=settings.dataset.categorical_features, t=settings.drift, estimate=report.estimate,
                 drift=(report.dataset_drift, tuple(report.dataset_drift_rules)), drifted=report.stats.drifted,
                 prediction_drift=report.prediction.drift, rows_noun=settings.dataset.rows_noun,
                 task=getattr(report, "task", None))


def alarm(report: Any, settings: Settings) -> list[str]:
    """Why a drift check (`monitoring.DriftReport`) calls for retraining; empty when it does not
    (`judge`'s alarm: dataset drift, a performance drop, rows outside the training data)."""
    return list(judge_report(report, settings).alarm)
