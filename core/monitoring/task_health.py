"""Model health of multiclass and regression models in a drift check (binary: `health`).

What a check measures beyond the features depends on the model's task kind; each kind has one
monitor (`core.monitoring.monitors.monitor_of`), chosen once from the champion's version:

- the per-version reference (`TaskReference`, from the test split, stored as JSON under
  `data/09_monitoring/`, the regression loss models beside it with joblib): the test figures
  (`TaskKind.metrics`), the prediction's distribution, the label-free estimator fitted on it
  (`estimators`: multiclass CBPE's class calibration, regression DLE's loss models) and what it
  estimates on the test split itself, and the training labels' distribution;
- prediction drift: multiclass the predicted class's shares (JS distance beyond chance, as a
  categorical feature) and each class's probability (PSI and Wasserstein, as the binary
  probability); regression the prediction's distribution (as a continuous feature);
- with labels: label drift (the class shares, or the target's distribution, against the
  training split) and the task's realised figures on the labelled rows;
- without labels: the estimate (`estimators`), trusted as a binary one is (`policy.trust`: the
  batch within the training data) and, further, only when the reference was large enough to learn
  from (`estimators.reference_reasons`) and, for regression, when the batch's predictions lie
  within the range the loss models saw (`trust_out_of_range` of them at most outside it);
- the verdict in words (`words`): e.g. "RMSE rose from 540 to 910; 31 % of the actual price values
  fall outside their 90 % interval (test: 10 %)".
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.config import DriftThresholds, Settings
from core.files import atomic_write, sha256_file
from core.modeling import metrics
from core.modeling.model_version import ModelVersion
from core.monitoring import estimators, outputs, statistics
from core.monitoring.drift_report import Estimate, FeatureDrift, Reliability
from core.monitoring.reference import ColumnReference, categorical_reference, column_reference

TASK_REFERENCE_VERSION = 1
NAN = float("nan")


# --------------------------------------------------------------------------- what a check finds
@dataclass(frozen=True)
class Parts:
    """What the task-specific part of a check finds (any task kind; `check.conclude` adds the
    features' drift, the domain classifier and the verdict). `estimate.trustworthy` is filled in
    by the check, with `trust_reasons` added to the policy's."""

    prediction: FeatureDrift
    label: dict[str, Any] | None
    realized: dict[str, float] | None
    estimate: Estimate
    test_metrics: dict[str, float]
    estimated_on_test: dict[str, float]
    reliability_test: Reliability | None
    reliability_test_calibrated: Reliability | None
    reliability_batch: Reliability | None
    trust_reasons: tuple[str, ...] = ()
    prediction_detail: dict[str, FeatureDrift] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class TaskReference:
    """What the monitor knows about one multiclass or regression version, from the test split
    (see the module docstring). `loss` (regression: `estimators.LossModels`) is stored apart."""

    model_version: str
    task: str
    test_digest: str
    n_test: int
    test_metrics: dict[str, float]
    estimated_on_test: dict[str, float]
    prediction: ColumnReference
    label: ColumnReference | None
    classes: tuple[str, ...] = ()
    class_proba: dict[str, ColumnReference] = field(default_factory=dict)
    calibration: estimators.ClassCalibration | None = None
    reliability_raw: Reliability | None = None
    reliability_calibrated: Reliability | None = None
    interval: dict[str, float] = field(default_factory=dict)
    prediction_range: tuple[float, float] | None = None
    test_outputs: dict[str, Any] = field(default_factory=dict)  # class shares / coverage on the test split
    reference_reasons: tuple[str, ...] = ()
    version: int = TASK_REFERENCE_VERSION
    test_stamp: tuple[int, int] = (0, 0)
    loss: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "loss"}
        d["prediction"] = self.prediction.to_dict()
        d["label"] = None if self.label is None else self.label.to_dict()
        d["class_proba"] = {k: v.to_dict() for k, v in self.class_proba.items()}
        d["calibration"] = None if self.calibration is None else self.calibration.to_dict()
        for k in ("reliability_raw", "reliability_calibrated"):
            d[k] = None if d[k] is None else asdict(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaskReference":
        def rel(x: Any) -> Reliability | None:
            return None if x is None else Reliability(**{k: tuple(v) if isinstance(v, list) else v
                                                         for k, v in x.items()})
        return cls(
            model_version=str(d["model_version"]), task=str(d["task"]), test_digest=d["test_digest"],
            n_test=int(d["n_test"]), test_metrics=dict(d["test_metrics"]),
            estimated_on_test=dict(d["estimated_on_test"]),
            prediction=ColumnReference.from_dict(d["prediction"]),
            label=None if d.get("label") is None else ColumnReference.from_dict(d["label"]),
            classes=tuple(d.get("classes", ())),
            class_proba={k: ColumnReference.from_dict(v) for k, v in d.get("class_proba", {}).items()},
            calibration=(None if d.get("calibration") is None
                         else estimators.ClassCalibration.from_dict(d["calibration"])),
            reliability_raw=rel(d.get("reliability_raw")), reliability_calibrated=rel(d.get("reliability_calibrated")),
            interval=dict(d.get("interval", {})),
            prediction_range=None if d.get("prediction_range") is None else tuple(d["prediction_range"]),
            test_outputs=dict(d.get("test_outputs", {})), reference_reasons=tuple(d.get("reference_reasons", ())),
            version=int(d.get("version", 0)), test_stamp=tuple(d.get("test_stamp", (0, 0))),
        )


def reference_path(settings: Settings, version: str) -> Path:
    """Where the reference of one multiclass or regression version is stored."""
    return settings.monitoring_dir / f"task_reference_v{version}.json"


def loss_path(settings: Settings, version: str) -> Path:
    """Where a regression version's loss models (DLE) are stored, beside its reference."""
    return settings.monitoring_dir / f"task_reference_v{version}-loss.joblib"


def _shares(values: np.ndarray, k: int) -> list[float]:
    v = np.asarray(values).astype(int)
    return (np.bincount(v, minlength=k)[:k] / max(len(v), 1)).round(6).tolist()


def _names(labels: np.ndarray, classes: tuple[str, ...]) -> pd.Series:
    """Class positions as the class names (text, for the categorical statistics)."""
    return pd.Series(np.asarray(classes, dtype=object)[np.asarray(labels).astype(int)], dtype=object)


def build_reference(settings: Settings, model: Any, champ: ModelVersion, digest: str) -> TaskReference:
    """Score the test split with `model` (of version `champ`) and summarise it (not stored)."""
    from core.data import preparation
    from core.monitoring.health import reliability

    spec, t = settings.dataset, settings.drift
    kind = champ.kind
    test = preparation.load_split(settings, "test")
    y = test[settings.target].to_numpy(dtype="float64")
    out = outputs.model_outputs(model, test, settings.features, spec.categorical_features, champ)
    train_y = pd.read_parquet(settings.train_path, columns=[settings.target])[settings.target].to_numpy(dtype="float64")
    base = dict(model_version=str(champ.version), task=kind.name, test_digest=digest, n_test=len(test),
                test_metrics=kind.metrics(y, out, None))
    if kind.classifier:
        classes = tuple(champ.classes) or tuple(spec.target.names)
        k = out.shape[1]
        pred, confidence = estimators.top_label(out)
        cal = estimators.fit_class_calibration(out, y)
        counts = {classes[c]: int((y == c).sum()) for c in range(k)}
        return TaskReference(
            **base, estimated_on_test=_rounded(estimators.cbpe(out, estimators.calibrate_classes(out, cal))),
            prediction=categorical_reference(_names(pred, classes)),
            label=categorical_reference(_names(train_y[np.isfinite(train_y)], classes)),
            classes=classes,
            class_proba={f"P({name})": column_reference(out[:, c], "continuous", t.psi_bins)
                         for c, name in enumerate(classes)},
            calibration=cal,
            reliability_raw=reliability((pred == y).astype("float64"), confidence, t.calibration_bins),
            reliability_calibrated=reliability(
                (pred == y).astype("float64"),
                estimators.cross_fitted_classes(out, y, seed=settings.seed)[np.arange(len(y)), pred],
                t.calibration_bins),
            test_outputs={"predicted": _shares(pred, k), "actual": _shares(y, k)},
            reference_reasons=estimators.reference_reasons(kind.name, len(test), counts),
        )
    h = outputs.halfwidth(champ)
    loss = estimators.fit_dle(test, out[:, 0], y, h, settings.features, spec.categorical_features, settings.seed)
    est = estimators.dle(estimators.dle_rows(loss, test, out[:, 0]))
    return TaskReference(
        **base, estimated_on_test=_rounded(est), prediction=column_reference(out[:, 0], "continuous", t.psi_bins),
        label=column_reference(train_y[np.isfinite(train_y)], "continuous", t.psi_bins),
        interval={"level": outputs.level(champ) or NAN, "halfwidth": h},
        prediction_range=(float(out[:, 0].min()), float(out[:, 0].max())),
        test_outputs={"mean_prediction": float(out[:, 0].mean()), "mean_target": float(y.mean())},
        reference_reasons=estimators.reference_reasons(kind.name, len(test)), loss=loss,
    )


def _rounded(d: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()}


def load_reference(settings: Settings, model: Any, champ: ModelVersion) -> TaskReference:
    """The stored reference of a multiclass or regression version; computed when missing or when
    the test split changed (hashed only when its size or modification time changed)."""
    import joblib

    test_path = settings.test_path
    stamp = (test_path.stat().st_size, test_path.stat().st_mtime_ns) if test_path.exists() else (0, 0)
    path, lpath = reference_path(settings, champ.version), loss_path(settings, champ.version)
    stored = None
    if path.exists() and test_path.exists():
        try:
            stored = TaskReference.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            stored = None
        if stored is not None and (stored.version != TASK_REFERENCE_VERSION or stored.task != champ.task):
            stored = None
        if stored is not None and stored.task == "regression":
            try:
                stored = dataclasses.replace(stored, loss=joblib.load(lpath))
            except (OSError, ValueError, EOFError, KeyError, AttributeError, ImportError):
                stored = None  # the loss models are gone or unreadable: built again
    if stored is not None and stored.test_stamp == stamp:
        return stored
    digest = sha256_file(test_path) if test_path.exists() else ""
    if stored is not None and digest and stored.test_digest == digest:  # touched, not changed
        ref = dataclasses.replace(stored, test_stamp=stamp)
    else:
        ref = dataclasses.replace(build_reference(settings, model, champ, digest), test_stamp=stamp)
        if ref.loss is not None:
            atomic_write(lpath, lambda tmp: joblib.dump(ref.loss, tmp))
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(ref.to_dict())))
    return ref


# --------------------------------------------------------------------------- a batch
def row_figures(ref: TaskReference, frame: pd.DataFrame, out: np.ndarray) -> np.ndarray | None:
    """What the estimate needs of each row beyond the model's outputs (regression: DLE's
    per-row losses, which need the features: `estimators.dle_rows`); None for multiclass. Row by
    row, so a file read in record batches is estimated chunk by chunk."""
    if ref.loss is None:
        return None
    return estimators.dle_rows(ref.loss, frame, np.asarray(out)[:, 0])


def _label_drift(ref: TaskReference, y: np.ndarray, t: DriftThresholds) -> dict[str, Any] | None:
    """The labelled rows' distribution against the training labels: multiclass the class shares
    (JS distance beyond chance), regression the target's distribution (PSI, Wasserstein)."""
    if ref.label is None or len(y) == 0:
        return None
    if ref.task == "multiclass":
        f = statistics.column_drift("label", ref.label, _names(y, ref.classes), t)
        return {"n_labelled": int(len(y)), "js": f.js, "js_excess": f.js_excess, "p_value": f.p_value,
                "drift": f.drift, "shares_ref": dict(zip(map(str, f.bins), f.ref_share)),
                "shares_batch": dict(zip(map(str, f.bins), f.batch_share))}
    f = statistics.column_drift("label", ref.label, y, t)
    return {"n_labelled": int(len(y)), "psi": f.psi, "wasserstein": f.wasserstein, "p_value": f.p_value,
            "drift": f.drift, "mean_ref": f.mean_ref, "mean_batch": f.mean_batch}


def measure(ref: TaskReference, out: np.ndarray, labels: np.ndarray | None, rows: np.ndarray | None,
            champ: ModelVersion, t: DriftThresholds) -> Parts:
    """Prediction drift, label drift, realised figures and the label-free estimate of a batch
    whose outputs (`outputs`' shapes) are `out`, labels `labels` (NaN where missing; None without
    labels) and per-row figures `rows` (`row_figures`)."""
    kind = champ.kind
    out = np.asarray(out, dtype="float64")
    label = realized = None
    y = out_l = None
    if labels is not None:
        labelled = np.isfinite(labels)
        if labelled.any():
            y, out_l = labels[labelled], out[labelled]
            label = _label_drift(ref, y, t)
            realized = _rounded(kind.metrics(y, out_l, None))
    summary: dict[str, Any]
    if kind.classifier:
        k = out.shape[1]
        pred, confidence = estimators.top_label(out)
        prediction = statistics.column_drift("predicted class", ref.prediction, _names(pred, ref.classes), t)
        detail = {name: statistics.column_drift(name, cref, out[:, c], t)
                  for c, (name, cref) in enumerate(ref.class_proba.items())}
        assert ref.calibration is not None
        figures = estimators.cbpe(out, estimators.calibrate_classes(out, ref.calibration))
        estimate = Estimate(accuracy=figures["accuracy"], f1=NAN, roc_auc=NAN, trustworthy=True, reasons=(),
                            figures=_rounded(figures), method="CBPE")
        summary = {"classes": list(ref.classes), "predicted_test": ref.test_outputs.get("predicted"),
                   "actual_test": ref.test_outputs.get("actual"), "predicted_batch": _shares(pred, k),
                   "actual_batch": None if y is None else _shares(y, k)}
        rel_batch = None
        if y is not None:
            from core.monitoring.health import reliability

            p_l, c_l = estimators.top_label(out_l)
            rel_batch = reliability((p_l == y).astype("float64"), c_l, t.calibration_bins)
        return Parts(prediction=prediction, label=label, realized=realized, estimate=estimate,
                     test_metrics=ref.test_metrics, estimated_on_test=ref.estimated_on_test,
                     reliability_test=ref.reliability_raw, reliability_test_calibrated=ref.reliability_calibrated,
                     reliability_batch=rel_batch, trust_reasons=ref.reference_reasons, prediction_detail=detail,
                     outputs=summary)
    pred = out[:, 0]
    prediction = statistics.column_drift("prediction", ref.prediction, pred, t)
    figures = estimators.dle(rows) if rows is not None else {}
    estimate = Estimate(accuracy=NAN, f1=NAN, roc_auc=NAN, trustworthy=True, reasons=(),
                        figures=_rounded(figures), method="DLE")
    reasons = list(ref.reference_reasons)
    if ref.prediction_range is not None and len(pred):
        lo, hi = ref.prediction_range
        share = float(np.mean((pred < lo) | (pred > hi)))
        if share > t.trust_out_of_range:
            reasons.append(f"{share:.1%} of the predictions lie outside the range the loss model learned from "
                           f"({lo:,.4g} to {hi:,.4g} on the test split; limit {t.trust_out_of_range:.0%})")
    summary = {"level": ref.interval.get("level"), "halfwidth": ref.interval.get("halfwidth"),
               "mean_prediction_test": ref.test_outputs.get("mean_prediction"),
               "mean_prediction_batch": float(pred.mean()) if len(pred) else None,
               "coverage_test": ref.test_metrics.get("interval_coverage"),
               "coverage_batch": None if realized is None else realized.get("interval_coverage"),
               "mean_target_test": ref.test_outputs.get("mean_target"),
               "mean_target_batch": None if y is None else float(y.mean())}
    return Parts(prediction=prediction, label=label, realized=realized, estimate=estimate,
                 test_metrics=ref.test_metrics, estimated_on_test=ref.estimated_on_test, reliability_test=None,
                 reliability_test_calibrated=None, reliability_batch=None, trust_reasons=tuple(reasons),
                 outputs=summary)


# --------------------------------------------------------------------------- words
def _moved(metric: str, test: float, now: float) -> str:
    """'fell from 0.91 to 0.78', 'rose from 540 to 910' or 'stayed at 0.91'."""
    from core.monitoring.policy import number

    a, b = number(metric, test), number(metric, now)
    if a == b:
        return f"stayed at {b}"
    return f"{'rose' if now > test else 'fell'} from {a} to {b}"


def words(task: str, test: Mapping[str, float], realized: Mapping[str, float] | None, estimate: Estimate,
          out: Mapping[str, Any], target: str = "target") -> str:
    """The performance of a multiclass or regression model on a batch in one sentence (see the
    module docstring): realised with labels, else the label-free estimate (saying when it can't
    be trusted). Plain text: a page escapes it (the target's name is data)."""
    from core.monitoring.policy import number, of

    keys = of(task).keys
    if realized is not None:
        figures, source = realized, ""
    else:
        figures, source = {k: estimate.value(k) for k in keys if estimate.value(k) is not None}, "est"
    if not figures:
        return ""
    if task == "multiclass":
        text = (f"accuracy {_moved('accuracy', test['accuracy'], figures['accuracy'])}; macro F1 "
                f"{number('f1_macro', test['f1_macro'])} → {number('f1_macro', figures['f1_macro'])}")
    else:
        text = (f"RMSE {_moved('rmse', test['rmse'], figures['rmse'])} "
                f"(MAE {number('mae', test['mae'])} → {number('mae', figures['mae'])})")
        cov, level = figures.get("interval_coverage"), out.get("level")
        if cov is not None and np.isfinite(cov):
            nominal = f"{level:.0%} " if level is not None and np.isfinite(level) else ""
            was = test.get("interval_coverage")
            text += (f"; {1 - cov:.0%} of the {'actual' if source == '' else 'batch’s'} {target} values "
                     f"{'fall' if source == '' else 'would fall'} outside their {nominal}interval"
                     + (f" (test: {1 - was:.0%})" if was is not None and np.isfinite(was) else ""))
    if source:
        method = f" ({estimate.method}, without labels)" if estimate.method else " (without labels)"
        text = f"Estimated{method}: {text}"
        if not estimate.trustworthy:
            text += "; NOT trustworthy on this batch"
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------- the monitors
@dataclass(frozen=True)
class TaskMonitor:
    """How a check measures a multiclass or regression model (the functions above)."""

    task: str
    needs_rows: bool = False  # the estimate needs each row's features (`rows`): regression's DLE

    def reference(self, settings: Settings, model: Any, champ: ModelVersion) -> TaskReference:
        return load_reference(settings, model, champ)

    def rows(self, ref: TaskReference, frame: pd.DataFrame, out: np.ndarray) -> np.ndarray | None:
        return row_figures(ref, frame, out)

    def measure(self, ref: TaskReference, out: np.ndarray, labels: np.ndarray | None, rows: np.ndarray | None,
                champ: ModelVersion, settings: Settings, train_ref: Any = None) -> Parts:
        return measure(ref, out, labels, rows, champ, settings.drift)

    def words(self, parts: Parts, estimate: Estimate, settings: Settings) -> str:
        return words(self.task, parts.test_metrics, parts.realized, estimate, parts.outputs,
                     settings.dataset.target.column)


MONITORS: dict[str, TaskMonitor] = {"multiclass": TaskMonitor("multiclass"),
                                     "regression": TaskMonitor("regression", needs_rows=True)}
