"""The result objects of a drift check: per-feature drift (`FeatureDrift`, `DriftStats`), model
health (`Reliability`, `Estimate`) and the whole check (`DriftReport`), with its display rows.

Charts (`core/charts/drift.py`) and the HTML report (`core/monitoring/html.py`) render from
these alone; `statistics`, `health` and `check` compute them. `RUN_NAME` names the MLflow runs
that record checks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.config import DriftThresholds
from core.modeling import metrics

RUN_NAME = "Monitoramento"


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column: effect sizes, the information-only p-value and the flag.

    Numeric columns (continuous, discrete) are compared on their non-missing values; their
    missing-value shares are compared apart (`missing_js`). A categorical column is compared on
    its category shares with the missing values as one more category, and names the batch's
    categories never seen in training (`new_categories`, the most frequent first, with their
    share of the batch rows in `new_share`; `n_new_categories` counts them all).
    """

    name: str
    kind: str  # "continuous", "discrete" or "categorical"
    psi: float | None
    wasserstein: float | None  # divided by the reference standard deviation
    js: float | None
    p_value: float
    test: str  # "ks" or "chi2"
    # numeric: share of rows outside the reference [min, max]; categorical: share of rows in
    # categories never seen in training
    out_of_range: float
    mean_ref: float | None  # None for a categorical column (or a batch without values)
    mean_batch: float | None
    drift: bool
    # a coarse histogram for charts: bin left edges (or categories), reference and batch shares;
    # continuous: shares below / above the training range are in `batch_outside`;
    # discrete and categorical: `batch_outside[0]` is the share of values never seen in training
    bins: tuple[Any, ...] = ()
    ref_share: tuple[float, ...] = ()
    batch_share: tuple[float, ...] = ()
    batch_outside: tuple[float, float] = (0.0, 0.0)
    missing_ref: float = 0.0  # share of the reference rows with a missing value
    missing_batch: float = 0.0  # share of the batch rows with a missing value
    # numeric: Jensen-Shannon distance of the missing shares (None when neither side misses a value)
    missing_js: float | None = None
    new_categories: tuple[str, ...] = ()
    new_share: tuple[float, ...] = ()
    n_new_categories: int = 0
    nullable: bool = False  # the definition allows missing values
    # discrete and categorical: the JS distance beyond what chance gives two samples of these
    # sizes (`statistics.js_excess`); the verdict compares this with the threshold
    js_excess: float | None = None
    rule: str = ""  # the statistics that fired, e.g. "psi,wasserstein" or "js,missing" ("" = stable)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def effect(self) -> float | None:
        """The headline effect size: Wasserstein / σ (continuous) or the JS distance."""
        return self.wasserstein if self.kind == "continuous" else self.js

    @property
    def reports_missing(self) -> bool:
        """True when the missing shares are worth showing (categorical, nullable, or any missing)."""
        return self.kind == "categorical" or self.nullable or bool(self.missing_ref or self.missing_batch)

    def new_categories_text(self, limit: int = 5) -> str:
        """The new categories in words, e.g. 'Tip Dunk (3.0%), Hook (1.2%) and 4 more'; '' when none."""
        parts = [f"{c} ({share:.1%})" for c, share in zip(self.new_categories[:limit], self.new_share)]
        more = self.n_new_categories - len(parts)
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")

    def summary(self) -> dict[str, Any]:
        """The CLI's per-feature object: psi, wasserstein or js, p_value, out_of_range, drift; the
        missing shares (`missing_training`, `missing_batch`) for categorical and nullable features
        or when a value is missing; the new categories with their shares for categorical ones."""
        d: dict[str, Any] = {}
        if self.kind == "continuous":
            d["psi"] = self.psi
            d["wasserstein"] = self.wasserstein
        else:
            d["js"] = self.js
            d["js_excess"] = self.js_excess
        d.update(p_value=self.p_value, out_of_range=self.out_of_range, drift=self.drift, rule=self.rule)
        if self.reports_missing:
            d.update(missing_training=self.missing_ref, missing_batch=self.missing_batch)
        if self.kind == "categorical":
            d["new_categories"] = dict(zip(self.new_categories, self.new_share))
        return d


@dataclass(frozen=True)
class DriftStats:
    """Per-feature drift and the dataset verdict (before the domain classifier's vote)."""

    features: dict[str, FeatureDrift]
    n_rows: int
    share_drifted: float
    dataset_drift: bool
    thresholds: DriftThresholds = field(repr=False, default_factory=DriftThresholds)

    @property
    def drifted(self) -> list[str]:
        return [k for k, v in self.features.items() if v.drift]

    def to_dict(self) -> dict[str, Any]:
        return {"features": {k: v.to_dict() for k, v in self.features.items()}, "n_rows": self.n_rows,
                "share_drifted": self.share_drifted, "dataset_drift": self.dataset_drift,
                "drifted": self.drifted, "thresholds": asdict(self.thresholds)}


@dataclass(frozen=True)
class Reliability:
    """A reliability curve: per probability bin, mean predicted vs observed rate, and the ECE."""

    predicted: tuple[float, ...]
    observed: tuple[float, ...]
    count: tuple[int, ...]
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """Label-free performance estimate and whether it can be trusted (with the reasons).

    A binary model's estimate is its expected accuracy, F1 and ROC-AUC (`health`); a multiclass
    or regression model's are its task's figures in `figures` (multiclass: accuracy, f1_macro
    and f1_<i> per class; regression: mae, rmse, interval_coverage; `estimators`), by `method`
    ("CBPE" or "DLE"), its binary fields NaN except the accuracy of a multiclass model."""

    accuracy: float
    f1: float
    roc_auc: float
    trustworthy: bool
    reasons: tuple[str, ...]
    figures: dict[str, float] = field(default_factory=dict)
    method: str = ""

    def value(self, metric: str) -> float | None:
        """The estimate of one figure (None when it is not estimated)."""
        if metric in self.figures:
            return self.figures[metric]
        return getattr(self, metric) if metric in ("accuracy", "f1", "roc_auc") and not self.figures else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class DriftReport:
    """Everything one check found; `to_dict` is the JSON report, `summary` the CLI's object."""

    batch: dict[str, Any]
    model_version: str
    stats: DriftStats
    prediction: FeatureDrift
    label: dict[str, Any] | None
    domain_auc: float | None
    dataset_drift: bool
    estimate: Estimate
    realized: dict[str, float] | None
    estimate_error: dict[str, float] | None
    test_metrics: dict[str, float]
    estimated_on_test: dict[str, float]
    reliability_test: Reliability
    reliability_test_calibrated: Reliability
    reliability_batch: Reliability | None
    recommendation: str
    stored_path: str | None
    checked_at: str
    source: str
    seconds: float
    mlflow_run_id: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    domain: dict[str, Any] | None = None  # `domain.DomainResult.to_dict()`: AUC, its interval, rows
    dataset_drift_rules: tuple[str, ...] = ()  # the rules that fired (`policy.dataset_drift`)
    verdict: dict[str, Any] = field(default_factory=dict)  # `policy.Verdict.to_dict()`
    check_id: str = ""  # the check's own id (the MLflow run's `workbench.check_id` tag)
    mlflow_pending: bool = False  # the MLflow run is logged after the command's output (`run_log`)
    task: str = "binary"  # the model's task kind (`core.modeling.tasks`): which figures the report holds
    # multiclass: each class's probability's drift (`P(<class>)`), beside `prediction` (the
    # predicted class's shares)
    prediction_detail: dict[str, FeatureDrift] = field(default_factory=dict)
    # the model's outputs at a glance (`task_health.outputs_summary`): multiclass the class names
    # and the predicted (and actual) class shares, test vs batch; regression the interval's level
    # and half width and the mean prediction
    outputs: dict[str, Any] = field(default_factory=dict)
    words: str = ""  # multiclass and regression: the performance in one sentence (`task_health.words`)
    # `chunks.Chunk`s in order, when the check was split (`--chunk-size`, `--chunk-period`)
    chunks: tuple[Any, ...] = ()
    # a check on Spark (`spark_drift`): its master, the batch's rows and those its estimate was computed on
    spark: dict[str, Any] | None = None

    @property
    def n_drifted(self) -> int:
        return len(self.stats.drifted)

    @property
    def n_features(self) -> int:
        return len(self.stats.features)

    @property
    def keys(self) -> tuple[str, ...]:
        """The figures this report holds (test, estimated, realised), by its task kind."""
        from core.monitoring.policy import of

        return of(self.task).keys

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = self.stats.to_dict()
        d["n_drifted"] = self.n_drifted
        d["n_features"] = self.n_features
        if self.chunks:
            d["chunks"] = [c.summary() for c in self.chunks]
        return d

    def summary(self) -> dict[str, Any]:
        """The `python -m core drift` JSON object (binary: as it always was, plus `task`), with
        `chunks` when the check was split."""
        d = self._task_summary() if self.task != "binary" else self._binary_summary()
        if self.chunks:
            d["chunks"] = [c.summary() for c in self.chunks]
        return d

    def _binary_summary(self) -> dict[str, Any]:
        est, p = self.estimate, self.prediction
        return self._shared(
            prediction_drift={"psi": p.psi, "wasserstein": p.wasserstein, "p_value": p.p_value,
                              "mean_test": p.mean_ref, "mean_batch": p.mean_batch, "drift": p.drift},
            estimated_performance={"accuracy": est.accuracy, "f1": est.f1, "roc_auc": est.roc_auc,
                                   "trustworthy": est.trustworthy, "reasons": list(est.reasons)},
            realized_performance=(None if self.realized is None else
                                  {k: self.realized[k] for k in ("accuracy", "f1", "roc_auc")}),
        )

    def _task_summary(self) -> dict[str, Any]:
        """The JSON object of a multiclass or regression check: the binary one's keys (the
        prediction's drift, the estimate and the realised figures hold the task's figures) plus
        `words`, `outputs`, `test_performance` and (multiclass) each class probability's drift."""
        est, p = self.estimate, self.prediction
        drift = {"psi": p.psi, "wasserstein": p.wasserstein, "js": p.js, "p_value": p.p_value,
                 "mean_test": p.mean_ref, "mean_batch": p.mean_batch, "drift": p.drift}
        if p.kind == "categorical":
            drift["shares_test"] = dict(zip(map(str, p.bins), p.ref_share))
            drift["shares_batch"] = dict(zip(map(str, p.bins), p.batch_share))
        if self.prediction_detail:
            drift["classes"] = {name: {"psi": f.psi, "wasserstein": f.wasserstein, "mean_test": f.mean_ref,
                                       "mean_batch": f.mean_batch, "drift": f.drift}
                                for name, f in self.prediction_detail.items()}
        return self._shared(
            prediction_drift=drift,
            estimated_performance={**{k: est.value(k) for k in self.keys if est.value(k) is not None},
                                   "method": est.method, "trustworthy": est.trustworthy,
                                   "reasons": list(est.reasons)},
            realized_performance=None if self.realized is None else dict(self.realized),
            test_performance=dict(self.test_metrics), words=self.words, outputs=self.outputs,
        )

    def _shared(self, prediction_drift: dict[str, Any], **task_keys: Any) -> dict[str, Any]:
        """The keys every task's JSON object has, with the prediction's drift and `task_keys` (the
        performance figures, which each task fills its way) in their places."""
        return {
            "dataset_drift": self.dataset_drift,
            "features": {k: v.summary() for k, v in self.stats.features.items()},
            "prediction_drift": prediction_drift,
            "label_drift": self.label,
            "domain_auc": self.domain_auc,
            "domain": self.domain,
            "dataset_drift_rules": list(self.dataset_drift_rules),
            "adherence": self.verdict.get("adherence"),
            "alarm": list(self.verdict.get("alarm", ())),
            **task_keys,
            "recommendation": self.recommendation,
            "model_version": self.model_version,
            "batch": {k: self.batch[k] for k in ("name", "digest", "n_rows", "n_labelled")},
            "stored_path": self.stored_path,
            "mlflow_run_id": self.mlflow_run_id,
            "seconds": self.seconds,
            "check_id": self.check_id,
            "mlflow_pending": self.mlflow_pending,
            "task": self.task,
            **({"spark": dict(self.spark)} if self.spark else {}),
        }


# --------------------------------------------------------------------------- words and shares
#: every statistic of the report: its name, its definition and the threshold it is compared with
#: (a key of `DriftThresholds`, or None); the HTML report prints this table
DEFINITIONS: tuple[tuple[str, str, str | None], ...] = (
    ("PSI", "population stability index, sum over bins of (batch - training) x ln(batch / training) shares; "
            "bins: training deciles cut between distinct values, a value held by a tenth of the rows a bin "
            "of its own, each value shared between the two nearest bins' middles by its distance to them "
            "(linear binning); shares floored at 0.0001 (continuous features, the prediction)", "psi"),
    ("Wasserstein / σ", "mean absolute shift between the two distributions (Wasserstein-1 distance), in "
                        "training standard deviations (continuous features, the prediction)", "wasserstein"),
    ("JS distance", "Jensen-Shannon distance, natural log (0 to 0.833), of the shares of each training value "
                    "or category, of the values never seen in training and of the missing values (discrete "
                    "and categorical features, the label)", None),
    ("JS beyond chance", "sqrt(max(JS² - (k - 1)/8 x (1/n + 1/N), 0)): the JS distance two samples of n and N "
                         "rows over k values show by chance taken out; the verdict uses it", "js"),
    ("missing share", "JS distance of the missing / present splits (numeric features)", "js"),
    ("p-value", "KS (continuous) or chi-square (discrete, categorical, missing share): a statistic fires only "
                "when its p-value is also below this; never a verdict on its own", "significance"),
    ("share drifted", "dataset drift when at least this share of the features drift", "dataset_share"),
    ("domain AUC", "cross-validated ROC-AUC of extremely randomised trees telling batch rows from training "
                   "rows (5,000 a side at most), with a 95 % interval (Hanley & McNeil); dataset drift when the "
                   "interval's lower bound reaches this", "domain_auc"),
    ("trust", "the label-free estimate is not trusted when a feature has more than this share of rows outside "
              "the training range or in unseen categories", "trust_out_of_range"),
    ("performance", "not adherent, and retraining called for, when F1 or ROC-AUC falls this far below the test "
                    "figure (or the log loss rises by log_loss_rise)", "performance_drop"),
)


def effect_ratio(f: FeatureDrift, t: dict[str, Any]) -> tuple[float, str]:
    """One feature's effect size as a multiple of its threshold, and its label (charts)."""
    ratio, label = 0.0, "no values in the batch"
    if f.kind == "continuous":
        if f.psi is not None and f.wasserstein is not None:
            ratio = max(f.psi / t["psi"], f.wasserstein / t["wasserstein"])
            label = f"PSI {f.psi:.3f}, W/σ {f.wasserstein:.3f}"
    elif f.js is not None:
        effect = f.js_excess if f.js_excess is not None else f.js
        ratio = effect / t["js"]
        label = f"JS {f.js:.3f}" + (f" ({f.js_excess:.3f} beyond chance)" if f.js_excess is not None else "")
    if f.kind == "categorical" and f.n_new_categories:
        label += f", new categories {f.out_of_range:.1%}"
    if f.missing_js is not None:  # numeric: a shift of the missing share counts too
        ratio = max(ratio, f.missing_js / t["js"])
        label += f", missing {f.missing_ref:.1%} → {f.missing_batch:.1%}"
    return ratio, label


def by_severity(r: DriftReport) -> list[tuple[str, float, str]]:
    """Every feature as (name, effect ratio, label) of `effect_ratio`, worst first: drifted
    features before stable ones, then by effect ratio (largest first), ties by name."""
    rows = [(name, *effect_ratio(f, r.thresholds)) for name, f in r.stats.features.items()]
    drifted = {name for name, f in r.stats.features.items() if f.drift}
    return sorted(rows, key=lambda row: (row[0] not in drifted, -row[1], row[0]))


def most_drifted(r: DriftReport) -> str:
    """The name of the most drifted feature (`by_severity`'s first)."""
    return by_severity(r)[0][0]


OTHER, MISSING = "(other)", "(missing)"


def top_categories(f: FeatureDrift, top: int = 12) -> tuple[list[str], list[float], list[float]]:
    """The bars of a categorical column: its `top` categories by their larger share (training or
    batch; a category never seen in training is marked "(new)"), then the other categories
    together and the missing values (each only when some row has one). Returns the labels and
    the training and batch shares of all rows."""
    cands = [(str(c), float(r), float(b)) for c, r, b in zip(f.bins, f.ref_share, f.batch_share)]
    cands += [(f"{c} (new)", 0.0, float(b)) for c, b in zip(f.new_categories, f.new_share)]
    order = sorted(range(len(cands)), key=lambda i: -max(cands[i][1], cands[i][2]))
    shown = [cands[i] for i in order[:top]]
    labels, ref, batch = [c for c, _, _ in shown], [r for _, r, _ in shown], [b for _, _, b in shown]
    rest_ref = max(1.0 - f.missing_ref - sum(ref), 0.0)
    rest_batch = max(1.0 - f.missing_batch - sum(batch), 0.0)
    if rest_ref > 1e-9 or rest_batch > 1e-9:
        labels.append(OTHER)
        ref.append(rest_ref)
        batch.append(rest_batch)
    if f.missing_ref or f.missing_batch:
        labels.append(MISSING)
        ref.append(f.missing_ref)
        batch.append(f.missing_batch)
    return labels, ref, batch


def feature_rows(r: DriftReport) -> list[dict[str, Any]]:
    """One display row per feature (Drift page table), worst first as the chart above it
    (`by_severity`)."""
    rows = []
    for name, _, _ in by_severity(r):
        f = r.stats.features[name]
        rows.append({
            "feature": name, "kind": f.kind, "drift": f.drift, "rule": f.rule, "PSI": f.psi,
            "Wasserstein / σ": f.wasserstein, "JS distance": f.js, "JS beyond chance": f.js_excess, "p-value (info only)": f"{f.p_value:.2g} ({'KS' if f.test == 'ks' else 'χ²'})",
            "outside training range": f.out_of_range, "mean (training)": f.mean_ref, "mean (batch)": f.mean_batch,
            "missing (training)": f.missing_ref, "missing (batch)": f.missing_batch,
            "new categories": f.new_categories_text(),
        })
    return rows


def health_rows(r: DriftReport) -> list[dict[str, Any]]:
    """Test, estimated and realised figures per metric of the report's task (Drift page table)."""
    rows = []
    for key in r.keys:
        rows.append({
            "metric": metrics.label(key), "test split": r.test_metrics.get(key),
            "estimated (no labels)": r.estimate.value(key),
            "realised (labels)": None if r.realized is None else r.realized.get(key),
            "estimate error": None if r.estimate_error is None else r.estimate_error.get(key),
        })
    return rows


def prediction_text(r: DriftReport, proba_label: str = "the prediction") -> str:
    """The prediction's drift in one line (the Drift page's help): binary the mean probability,
    multiclass the predicted class shares, regression the mean prediction, test vs batch."""
    p = r.prediction
    if p.kind == "categorical":
        ref = dict(zip(map(str, p.bins), p.ref_share))
        batch = dict(zip(map(str, p.bins), p.batch_share))
        parts = [f"{name} {ref[name]:.1%} → {batch.get(name, 0.0):.1%}" for name in r.outputs.get("classes", ref)]
        return "Predicted class shares, test split → batch: " + ", ".join(parts) + "."
    if p.mean_batch is None or p.mean_ref is None:
        return "Mean prediction: no values in the batch."
    if r.task == "binary":
        return f"Mean {proba_label} {p.mean_batch:.3f} on the batch vs {p.mean_ref:.3f} on the test split."
    return f"Mean prediction {_number(p.mean_batch)} on the batch vs {_number(p.mean_ref)} on the test split."


def _number(x: float) -> str:
    """A value in the target's unit: whole with thousands separators from 1,000, else 4 digits."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def label_text(r: DriftReport) -> str:
    """The labels' drift in one line (binary: the positive rate; multiclass: the class shares;
    regression: the target's mean), against the training split; '' without labels."""
    lab = r.label
    if lab is None:
        return ""
    drift = f"label drift: {'yes' if lab['drift'] else 'no'}"
    if "positive_rate_batch" in lab:
        return (f"Labels: {lab['n_labelled']:,} labelled rows, positive rate {lab['positive_rate_batch']:.3f} vs "
                f"{lab['positive_rate_ref']:.3f} in training ({drift}).")
    if "shares_batch" in lab:
        shares = ", ".join(f"{name} {lab['shares_ref'].get(name, 0.0):.1%} → {share:.1%}"
                           for name, share in lab["shares_batch"].items())
        return f"Labels: {lab['n_labelled']:,} labelled rows; class shares, training → batch: {shares} ({drift})."
    return (f"Labels: {lab['n_labelled']:,} labelled rows, mean {_number(lab['mean_batch'])} vs {_number(lab['mean_ref'])} in "
            f"training (PSI {lab['psi']:.3f}, Wasserstein / σ {lab['wasserstein']:.3f}; {drift}).")
