"""Training ("Treinamento"): PyCaret candidates tuned by CV log loss, evaluated on the held-out
test set from the positive class's probability, logged to MLflow (one nested run per candidate) and the best registered
as `champion`.

PyCaret is imported lazily (5-10 s) and only through `ClassificationExperiment` objects (no
process-wide experiment). PyCaret's own MLflow logging is off (it crashes on MLflow 3); each
candidate is logged here as a plain scikit-learn `Pipeline` (PyCaret's preprocessing + the tuned
estimator), so the served model needs no PyCaret and loads in MLflow's safe (skops) format.
"""
from __future__ import annotations

import gc
import json
import os
import tempfile
import time
from contextlib import contextmanager

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from core import tracking
from core.config import Settings
from core.data import preparation
from core.errors import TrainingError
from core.modeling import metrics, model_io, preprocess, promotion, registry, threshold
from core.modeling.candidates import (
    CREATE_ARGS,
    CRITERIA,
    DEFAULT_FOLDS,
    DEFAULT_N_ITER,
    GRIDS,
    MODEL_TAG,
    MODELS,
    PROMOTE_MODES,
    ROLE_TAG,
    TUNE_MAX_ROWS,
    WEIGHTS,
    check_budget,
    resolve_models,
)
from core.modeling.results import CandidateResult, ChampionInfo, TrainResult  # noqa: F401 (re-exported)
from core.modeling.diagnostics import feature_importance, learning_curve_data
from core.modeling.lock import training_lock
from core.progress import ProgressFn, Stopwatch, report, scaled

TRAIN_RUN = "Treinamento"

# --------------------------------------------------------------------------- building blocks
def plain_pipeline(spec: Any, estimator: Any, seed: int) -> Any:
    """An unfitted scikit-learn Pipeline: the definition's preprocessing
    (`core.modeling.preprocess`), then `estimator` (PyCaret's tuned model, cloned)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    return Pipeline([*preprocess.preprocessor(spec, seed), ("model", clone(estimator))])


def _cv_means(scores: pd.DataFrame) -> dict[str, float]:
    names = {"Log Loss": "log_loss", "Brier": "brier", "AUC": "roc_auc", "Accuracy": "accuracy", "F1": "f1",
             "Prec.": "precision", "Recall": "recall"}
    row = scores.loc["Mean"]
    return {key: float(row[col]) for col, key in names.items() if col in row.index}


def tuning_sample(train_df: pd.DataFrame, settings: Settings, max_rows: int = TUNE_MAX_ROWS) -> pd.DataFrame:
    """The rows the hyper-parameters are tuned on: the whole training split up to `max_rows`,
    else a stratified sample of that many (seed = settings.seed). The chosen candidate is then
    refit on the whole split. On 80,000 rows this makes the default training about 2.5x faster;
    a search over a handful of settings needs far fewer rows than the final fit."""
    if len(train_df) <= max_rows:
        return train_df
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(train_df, train_size=max_rows, random_state=settings.seed,
                                 stratify=train_df[settings.target])
    return sample.reset_index(drop=True)


def _setup(train_df: pd.DataFrame, test_df: pd.DataFrame, settings: Settings, folds: int) -> Any:
    from pycaret.classification import ClassificationExperiment
    from sklearn.metrics import brier_score_loss, log_loss

    cols = [*settings.features, settings.target]
    steps = preprocess.preprocessor(settings.dataset, settings.seed)
    for _, step in steps:
        step.set_output(transform="pandas")  # PyCaret's wrapper passes frames between its steps
    exp = ClassificationExperiment()
    exp.setup(
        data=train_df[cols], test_data=test_df[cols], target=settings.target, index=False,
        session_id=settings.seed, fold=folds, fold_strategy="stratifiedkfold", fold_shuffle=True,
        # PyCaret's own preprocessing is off: the served pipeline's steps (imputation, scaling,
        # category encoding, all scikit-learn) run inside every CV fold instead
        preprocess=False, custom_pipeline=steps,
        n_jobs=1, memory=False, verbose=False, html=False, log_experiment=False, system_log=False,
    )
    exp.add_metric("logloss", "Log Loss", log_loss, greater_is_better=False, target="pred_proba")
    exp.add_metric("brier", "Brier", brier_score_loss, greater_is_better=False, target="pred_proba")
    for unused in ("kappa", "mcc"):
        exp.remove_metric(unused)
    return exp


def _as_frame(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The features in the model's types (`feature_frame`) and the labels as int64: what every
    candidate is fitted and tested on."""
    out = model_io.feature_frame(df, settings.features, settings.dataset.categorical_features)
    return out.assign(**{settings.target: df[settings.target].astype("int64").to_numpy()})


# --------------------------------------------------------------------------- one candidate
def _fit_candidate(exp: Any, model_id: str, train_df: pd.DataFrame, test_df: pd.DataFrame, settings: Settings,
                   folds: int, n_iter: int, on_progress: ProgressFn) -> dict[str, Any]:
    """Create, tune by CV log loss, choose the decision threshold (and calibration) on
    out-of-fold predictions, refit as a plain pipeline; test metrics and figure data."""
    label = MODELS[model_id]
    report(on_progress, 0.0, f"{label}: creating")
    base = exp.create_model(model_id, cross_validation=False, verbose=False, **CREATE_ARGS.get(model_id, {}))
    report(on_progress, 0.05, f"{label}: tuning ({n_iter} iterations × {folds} folds)")
    grid = GRIDS.get(model_id)
    if grid is not None:  # a small grid holds fewer points than iterations asked for
        n_iter = min(n_iter, int(np.prod([len(v) for v in grid.values()])))
    tuned = exp.tune_model(base, n_iter=n_iter, optimize="logloss", custom_grid=grid, choose_better=False,
                           verbose=False)
    tuning_cv = _cv_means(exp.pull())
    report(on_progress, 0.55, f"{label}: decision threshold on cross-validated predictions")
    # the frames come from `_as_frame`: their features are already in the model's types
    x_train, y_train = train_df.loc[:, list(settings.features)], train_df[settings.target].to_numpy()
    x_test, y_test = test_df.loc[:, list(settings.features)], test_df[settings.target].to_numpy()
    decision = _decide(plain_pipeline(settings.dataset, tuned, settings.seed), tuning_sample(train_df, settings),
                       settings, folds)
    report(on_progress, 0.7, f"{label}: refit and test metrics"
           + (f" ({decision['calibration']} calibration)" if decision["calibration"] != "none" else ""))
    pipeline = plain_pipeline(settings.dataset, tuned, settings.seed)
    model = _calibrated(pipeline, decision["calibration"], folds, settings.seed).fit(x_train, y_train)
    if model is not pipeline:  # ensemble=False: the base pipeline refit on all rows, inside the calibrator
        pipeline = model.calibrated_classifiers_[0].estimator
    proba = model.predict_proba(x_test)[:, 1]
    threshold_ = decision["threshold"].value
    report(on_progress, 0.8, f"{label}: importance and learning curve")
    kind, values = feature_importance(pipeline, x_test, y_test, settings.seed)
    params = tuned.get_params()
    return {
        "name": model_id, "label": label, "pipeline": model, "y_test": y_test, "proba": proba,
        "test": metrics.from_proba(y_test, proba, threshold_), "cv": decision["cv"], "tuning_cv": tuning_cv,
        "threshold": decision["threshold"], "calibration": decision["calibration"],
        "calibration_log_loss": decision["gains"],
        "params": {k: params[k] for k in sorted(params) if grid is None or k in grid},
        "all_params": params, "importance": (kind, values),
        # refits on shares of at most the tuning sample's size (then the whole split's point)
        "learning": learning_curve_data(pipeline, x_train, y_train, x_test, y_test, settings.seed,
                                        fractions=tuple(f * min(1.0, TUNE_MAX_ROWS / len(x_train))
                                                        for f in (0.1, 0.25, 0.5))),
    }


def _decide(pipeline: Any, sample: pd.DataFrame, settings: Settings, folds: int) -> dict[str, Any]:
    """The threshold and calibration of a tuned candidate, from out-of-fold predictions on the
    tuning sample (never the test split; `core.modeling.threshold`)."""
    policy = settings.promotion
    x, y = sample.loc[:, list(settings.features)], sample[settings.target].to_numpy()
    oof = threshold.out_of_fold(pipeline, x, y, folds, settings.seed)
    gains = threshold.calibration_gain(y, oof, folds, settings.seed)
    method = "none" if policy.calibration == "none" else threshold.pick_calibration(gains, policy.calibration_min_gain)
    if method != "none":  # the threshold is chosen on the probabilities the served model will give
        oof = threshold.out_of_fold(_calibrated(pipeline, method, folds, settings.seed), x, y, folds, settings.seed)
    choice = threshold.choose(y, oof, policy.threshold_rule, policy.cost_ratio)
    # the figures that choose among candidates: out-of-fold, of the model as it will be logged
    # (calibrated or not), at its threshold
    return {"threshold": choice, "calibration": method, "gains": gains,
            "cv": metrics.from_proba(y, oof, choice.value)}


def _calibrated(pipeline: Any, method: str, folds: int, seed: int) -> Any:
    """`pipeline` itself, or scikit-learn's `CalibratedClassifierCV` around it (`ensemble=False`:
    the map is fitted on cross-validated predictions, the pipeline refit on every row)."""
    if method == "none":
        return pipeline
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    return CalibratedClassifierCV(pipeline, method=method, ensemble=False,
                                  cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed))


def _log_candidate(fitted: dict[str, Any], settings: Settings, folds: int, n_iter: int, train_df: pd.DataFrame) -> str:
    """Params, metrics, figures (plotly JSON + one standalone HTML) and the model; returns its URI."""
    from core.charts import evaluation
    from core.charts.words import Words

    label, y, p = fitted["label"], fitted["y_test"], fitted["proba"]
    words = Words.of(settings.dataset)
    params = {k: str(v)[:500] for k, v in fitted["all_params"].items()}
    choice = fitted["threshold"]
    params.update({"model": fitted["name"], "folds": folds, "iterations": n_iter, "seed": settings.seed,
                   "tuned": ",".join(fitted["params"]), "threshold_rule": choice.rule,
                   "calibration": fitted["calibration"]})
    mlflow.log_params(params)
    mlflow.log_metrics({f"test_{k}": v for k, v in fitted["test"].items()}
                       | {f"cv_{k}": v for k, v in fitted["cv"].items()}
                       | {f"tuning_cv_{k}": v for k, v in fitted["tuning_cv"].items()}
                       | {"decision_threshold": choice.value, "cv_f1_at_threshold": choice.f1}
                       | {f"cv_log_loss_{k}_calibration": v for k, v in fitted["calibration_log_loss"].items()})
    kind, values = fitted["importance"]
    lc = fitted["learning"]
    figures = {
        "roc": evaluation.roc({label: (y, p)}, words=words),
        "pr": evaluation.pr({label: (y, p)}, words=words),
        "calibration": evaluation.calibration({label: (y, p)}, words=words),
        "confusion": evaluation.confusion(y, p, choice.value, words=words),
        "importance": evaluation.importance(list(settings.features), values, kind, f"{label}: feature {kind}"),
        "learning_curve": evaluation.learning_curve(lc["sizes"], lc["train_loss"], lc["test_loss"], words=words),
    }
    html = [f"<h1>{label}: evaluation on the held-out test set</h1>"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "figures").mkdir()
        (root / "eval").mkdir()
        for i, (name, fig) in enumerate(figures.items()):
            (root / "figures" / f"{name}.json").write_text(fig.to_json())
            html.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
        (root / "figures" / "evaluation.html").write_text(
            "<html><head><meta charset='utf-8'></head><body>" + "\n".join(html) + "</body></html>")
        (root / "eval" / "test_predictions.json").write_text(json.dumps(
            {"y_true": [int(v) for v in y], "proba": [float(v) for v in p], "threshold": choice.value}))
        (root / "eval" / "diagnostics.json").write_text(json.dumps(
            {"kind": kind, "features": list(settings.features), "values": values, "learning_curve": lc,
             "params": {k: str(v) for k, v in fitted["params"].items()}}))
        mlflow.log_artifacts(tmp)
    info = model_io.log_model(fitted["pipeline"], settings.features, train_df, rules=settings.dataset.rules,
                              categorical=settings.dataset.categorical_features)
    return str(info.model_uri)


# --------------------------------------------------------------------------- training
def best(candidates: Sequence[CandidateResult], criterion: str = "log_loss") -> CandidateResult:
    """The candidate with the best cross-validated `criterion` (the first on a tie). The test
    split only reports (and gates against the champion): choosing on it would bias its figure."""
    sign = -1.0 if CRITERIA[criterion] else 1.0
    return min(candidates, key=lambda c: sign * c.cv.get(criterion, c.test[criterion]))


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Leave the objects alive now out of garbage collections (PyCaret calls gc.collect() per
    model, ~0.3 s each on a heap full of imports); back to normal afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def train(
    settings: Settings,
    models: Sequence[str] | None = None,
    n_iter: int = DEFAULT_N_ITER,
    folds: int = DEFAULT_FOLDS,
    criterion: str = "log_loss",
    on_progress: ProgressFn = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
    promote: str = "gate",
) -> TrainResult:
    """Run "Treinamento": tune each candidate, log it, register the best (by cross-validated
    `criterion`) and gate it against the champion (`core.modeling.promotion`).

    The best candidate is registered as a new version; it becomes `champion` when it passes the
    gate (or `promote="always"`), else it keeps the alias `challenger` and the champion stays.
    lr and dt are always trained; `models` adds any of MODELS. Nothing is registered unless
    every candidate finished; a failure ends the runs FAILED, an interruption KILLED; a kill
    leaves a journal the next training, retraining or promotion repairs (`promotion.repair`).
    Raises TrainingBusyError while a training, retraining or promotion runs, NotPreparedError
    without data.
    """
    ids = resolve_models(models)
    check_budget(int(folds), int(n_iter), criterion)
    if promote not in PROMOTE_MODES:
        raise TrainingError(f"promote must be one of {', '.join(PROMOTE_MODES)}, not {promote!r}.")
    train_df = _as_frame(preparation.load_split(settings, "train"), settings)
    test_df = _as_frame(preparation.load_split(settings, "test"), settings)
    clock = Stopwatch()
    with training_lock(settings), _frozen_gc():
        report(on_progress, 0.0, "Checking the registry")
        repaired = tuple(promotion.repair(settings))
        report(on_progress, 0.01, "Loading PyCaret")
        exp = _setup(tuning_sample(train_df, settings), test_df, settings, int(folds))
        exp_id = tracking.use(settings)
        baselines = metrics.baselines(train_df[settings.target].to_numpy(), test_df[settings.target].to_numpy())
        total = sum(WEIGHTS.get(m, 1.5) for m in ids)
        start, done = 0.05, []
        with _run(run_name=TRAIN_RUN, experiment_id=exp_id, tags={ROLE_TAG: "training", "pid": str(os.getpid())}) as parent:
            mlflow.log_params({"models": ",".join(ids), "folds": folds, "iterations": n_iter,
                               "seed": settings.seed, "criterion": criterion, "selected_by": f"cv_{criterion}",
                               "promote": promote, "threshold_rule": settings.promotion.threshold_rule,
                               "train_rows": len(train_df), "test_rows": len(test_df),
                               "feature_set": settings.dataset.feature_set,
                               "tuning_rows": min(len(train_df), TUNE_MAX_ROWS)})
            mlflow.log_metrics({f"baseline_{b}_{k}": v for b, m in baselines.items() for k, v in m.items()})
            for model_id in ids:
                end = start + 0.85 * WEIGHTS.get(model_id, 1.5) / total
                step = scaled(on_progress, start, end)
                t0 = time.perf_counter()
                with _run(run_name=model_id, experiment_id=exp_id, nested=True,
                          tags={ROLE_TAG: "candidate", MODEL_TAG: model_id, "pid": str(os.getpid())}) as run:
                    try:
                        fitted = _fit_candidate(exp, model_id, train_df, test_df, settings, int(folds), int(n_iter),
                                                step)
                        report(step, 0.9, f"{MODELS[model_id]}: logging to MLflow")
                        uri = _log_candidate(fitted, settings, int(folds), int(n_iter), train_df)
                    except (ValueError, RuntimeError, MemoryError, MlflowException) as err:
                        raise TrainingError(
                            f"{MODELS[model_id]} failed ({type(err).__name__}: {str(err)[:300]}). Nothing was "
                            "registered; try again without this model or with a smaller budget."
                        ) from err
                result = CandidateResult(
                    name=model_id, label=fitted["label"], test=fitted["test"], cv=fitted["cv"],
                    params=fitted["params"], run_id=run.info.run_id, model_uri=uri,
                    seconds=round(time.perf_counter() - t0, 2), threshold=fitted["threshold"].value,
                    threshold_rule=fitted["threshold"].rule, calibration=fitted["calibration"])
                done.append(result)
                report(on_progress, end, f"{MODELS[model_id]}: done")
                if on_candidate is not None:
                    on_candidate(result)
                start = end
            winner = best(done, criterion)
            report(on_progress, 0.92, f"Comparing {winner.label} with the champion on the test split")
            before = registry.champion(settings)
            before_test, note = promotion.on_test(settings, before)
            ok, reason = promotion.judge(before_test, winner.test, criterion, settings.promotion)
            if note:
                reason = f"{reason} ({note})"
            if promote == "always" and not ok:
                ok, reason = True, f"promoted as asked (--promote always); the gate said: {reason}"
            report(on_progress, 0.96, f"Registering {winner.label} as {settings.model_name}"
                   + (" and promoting it" if ok else " (challenger)"))
            with promotion.change(settings, "training") as journal:
                version = registry.register(settings, winner.model_uri, tags={
                    MODEL_TAG: winner.name, threshold.VERSION_TAG: f"{winner.threshold:.4f}",
                    threshold.RULE_TAG: winner.threshold_rule, threshold.CALIBRATION_TAG: winner.calibration,
                    "workbench.training_run": parent.info.run_id})
                journal.registered(version)
                if ok:
                    registry.promote_held(settings, version)
                    registry.drop_alias(settings, registry.CHALLENGER)
                else:
                    registry.set_challenger(settings, version)
            mlflow.set_tags({"champion_name": winner.name if ok else (before.model or "") if before else "",
                             "champion_version": version if ok else before.version if before else "",
                             "champion_run_id": winner.run_id if ok else (before.run_id or "") if before else "",
                             "challenger_version": version, "promoted": str(ok).lower(),
                             "gate_reason": reason[:5000]})
            mlflow.log_metrics({f"challenger_test_{k}": v for k, v in winner.test.items() if np.isfinite(v)}
                               | {f"champion_before_test_{k}": v for k, v in (before_test or {}).items()
                                  if np.isfinite(v)}
                               | {"seconds": clock.seconds})
    report(on_progress, 1.0, "Done")
    challenger = ChampionInfo(name=winner.name, version=version, run_id=winner.run_id, test=winner.test,
                              threshold=winner.threshold, cv=winner.cv)
    champion_before = None if before is None else ChampionInfo(
        name=before.model or "", version=before.version, run_id=before.run_id, test=before_test or {},
        threshold=before.threshold)
    return TrainResult(
        candidates=tuple(done),
        champion=challenger if ok or champion_before is None else champion_before,
        parent_run_id=parent.info.run_id, criterion=criterion, folds=int(folds), n_iter=int(n_iter),
        baselines=baselines, seconds=round(clock.seconds, 2),
        previous_version=before.version if before is not None and ok else None,
        feature_set=settings.dataset.feature_set, features=settings.features,
        promoted=ok, reason=reason, champion_before=champion_before, challenger=challenger,
        selected_by=f"cross-validated {criterion.replace('_', ' ')} ({folds} folds)", repaired=repaired,
    )


@contextmanager
def _run(**kwargs: Any) -> Iterator[Any]:
    """`mlflow.start_run(**kwargs)` that ends FAILED on an error and KILLED on an interruption
    (Ctrl-C, a Streamlit stop or rerun), never left RUNNING."""
    with mlflow.start_run(**kwargs) as run:
        try:
            yield run
        except BaseException as err:
            if not isinstance(err, Exception):
                mlflow.end_run("KILLED")
            raise
