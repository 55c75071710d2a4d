"""Train: tune candidate models with PyCaret, log them to MLflow, register the best and promote it
only when it beats the champion."""
import dataclasses

import pandas as pd
import streamlit as st

from core.data import preparation
from core.errors import WorkbenchError
from core.modeling import candidates, metrics
from core.modeling.tasks import BINARY, task_kind
from ui import mlflow_links, progress, session_keys
from ui.dataset_picker import active_settings
from ui.text import md

st.set_page_config(page_title="Train · Kobe Workbench", layout="wide")
settings = active_settings()
spec = settings.dataset
kind = task_kind(spec.task)
st.title(f"Train: {md(spec.title)}")
TASK_NOTE = {"binary": "",
             "multiclass": f" The target, {md(spec.target.column)}, has {len(spec.target.names)} classes: each "
                           "model gives every class's probability.",
             "regression": f" The target, {md(spec.target.column)}, is a number: each prediction comes with a "
                           "conformal interval."}
st.caption(f"Tune candidate models with PyCaret ({'stratified ' if kind.classifier else ''}K-fold CV, optimising "
           f"{metrics.label(kind.criterion)}), pick the best on cross-validation, and register it. It becomes "
           "champion only when it also beats the current champion on the held-out test set; otherwise it is kept "
           "as `challenger`." + TASK_NOTE[kind.name])

if not preparation.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first.")
    st.stop()

from core.modeling import lock, training


TEST_FIGURES = ("brier", "roc_auc", "f1", "accuracy", "precision", "recall")  # at the candidate's threshold
FIGURES = ("CV log loss", "test log loss", *(metrics.label(m) for m in TEST_FIGURES), "threshold")
# a multiclass or regression training's columns: (column, where in a candidate's dict, metric)
TASK_COLUMNS = {
    "multiclass": (("CV log loss", "cv", "log_loss"), ("test log loss", "test", "log_loss"),
                   ("test accuracy", "test", "accuracy"), ("test macro F1", "test", "f1_macro")),
    "regression": (("CV RMSE", "cv", "rmse"), ("test RMSE", "test", "rmse"), ("test MAE", "test", "mae"),
                   ("test R²", "test", "r2"), ("test MAPE", "test", "mape"),
                   ("interval coverage", "test", "interval_coverage")),
}


def result_row(c: dict, task: str = "binary", classes: tuple = ()) -> dict:
    """One candidate as a table row (a binary one's test metrics at its own threshold)."""
    t = c["test"]
    if task == "binary":
        return {"model": c["label"], "CV log loss": c["cv"].get("log_loss"), "test log loss": t["log_loss"],
                **{metrics.label(m): t[m] for m in TEST_FIGURES}, "threshold": c.get("threshold"),
                "calibration": c.get("calibration", "none"), "seconds": c["seconds"]}
    row = {"model": c["label"], **{col: c[where].get(m) for col, where, m in TASK_COLUMNS[task]}}
    if task == "multiclass":
        row |= {f"F1 {name}": t.get(f"f1_{i}") for i, name in enumerate(classes)}
        row["calibration"] = c.get("calibration", "none")
    else:
        row["interval ±"] = (c.get("interval") or {}).get("halfwidth")
    return row | {"seconds": c["seconds"]}


def number_columns(rows: list[dict]) -> dict:
    """Every figure at 4 decimals (a regression's in the target's own scale: 4 significant digits),
    the time in seconds."""
    names = {k for r in rows for k in r} - {"model", "calibration", "seconds"}
    shares = {"interval coverage", "test R²", "test MAPE", "test accuracy", "test macro F1"}
    big = kind.name == "regression"
    return ({k: st.column_config.NumberColumn(format="%.4f" if not big or k in shares else "%.4g") for k in names}
            | {"seconds": st.column_config.NumberColumn("time (s)", format="%.1f")})


def show_rows(where: st.delta_generator.DeltaGenerator, rows: list[dict]) -> None:
    where.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=number_columns(rows))


def verdict_table(result: dict) -> pd.DataFrame:
    """Champion before vs the challenger on the same test split (a binary one at its own threshold)."""
    task = result.get("task", "binary")
    rows = {}
    for who, key in (("champion before", "champion_before"), ("challenger", "challenger")):
        v = result.get(key)
        if v:
            name = candidates.model_label(v["name"], task) or "model"
            t = v["test"]
            if task == "binary":
                figures = {"test log loss": t.get("log_loss"), "F1 at its threshold": t.get("f1"),
                           "accuracy at its threshold": t.get("accuracy"),
                           metrics.label("roc_auc"): t.get("roc_auc"), "threshold": v.get("threshold")}
            else:
                figures = {col: t.get(m) for col, where, m in TASK_COLUMNS[task] if where == "test"}
            rows[f"{who}: v{v['version']} {name}"] = figures
    return pd.DataFrame(rows)


def majority_name(result: dict) -> str:
    """The training split's majority class, by name (from the candidates, else from the base rate)."""
    named = next((c.get("majority_class") for c in result["candidates"] if c.get("majority_class")), None)
    if named:
        return named
    rate = result.get("base_rate")
    return settings.dataset.positive_name if rate is not None and rate >= 0.5 else settings.dataset.target.negative_name


request = st.session_state.get(session_keys.TRAIN_REQUEST)
busy_elsewhere = request is None and lock.is_training(settings)
locked = request is not None or busy_elsewhere

USED = session_keys.TRAIN_USED  # the values of the last run: the form shows what was used
optional = [m for m in candidates.models_for(kind.name) if m not in candidates.always_for(kind.name)]
for key, value in {"train_models": [m for m in candidates.default_models_for(kind.name) if m in optional],
                   "train_folds": candidates.DEFAULT_FOLDS, "train_n_iter": candidates.DEFAULT_N_ITER,
                   "train_criterion": kind.criterion, "train_always": False,
                   "train_rule": settings.promotion.threshold_rule, "train_cost_ratio": settings.promotion.cost_ratio,
                   "train_interval": settings.promotion.interval_level}.items():
    st.session_state.setdefault(key, value)  # the widgets take their defaults from here, not from value=
st.session_state.update(st.session_state.pop(USED, {}))
if st.session_state.get("train_feature_set") not in settings.dataset.feature_set_names:
    st.session_state.pop("train_feature_set", None)  # another dataset's set: back to this one's default
# another dataset's task kind (other candidates, other criteria): back to this one's defaults
if not set(st.session_state["train_models"]) <= set(optional):
    st.session_state["train_models"] = [m for m in candidates.default_models_for(kind.name) if m in optional]
if st.session_state["train_criterion"] not in kind.criteria:
    st.session_state["train_criterion"] = kind.criterion

with st.form("train", enter_to_submit=False):  # Enter in a field must not start a training
    pair = " and ".join(candidates.model_label(m, kind.name) for m in candidates.always_for(kind.name))
    extra = st.multiselect(
        f"Candidates besides {pair} (always trained)", optional,
        format_func=lambda m: candidates.model_label(m, kind.name), disabled=locked, key="train_models")
    sets = spec.feature_set_names
    feature_set = st.selectbox(
        "Feature set", sets, disabled=locked or len(sets) < 2,
        format_func=lambda n: f"{n}: {', '.join(spec.with_feature_set(n).features)}",
        help="The dataset definition's named sets of model inputs. The served model takes the champion's set.",
        key="train_feature_set")
    left, mid, right = st.columns(3)
    folds = left.number_input("CV folds", min_value=2, max_value=20, disabled=locked, key="train_folds")
    n_iter = mid.number_input("Tuning iterations per candidate", min_value=1, max_value=200, disabled=locked,
                              key="train_n_iter")
    criterion = right.selectbox("Best candidate chosen by (cross-validated)", list(kind.criteria),
                                format_func=metrics.label,
                                disabled=locked, key="train_criterion",
                                help="Candidates are compared on cross-validation; the test split only reports "
                                     "and gates the promotion against the current champion.")
    rule, cost_ratio, interval = settings.promotion.threshold_rule, settings.promotion.cost_ratio, None
    if kind.name == "binary":  # a decision threshold: binary models only
        rule_col, ratio_col = st.columns(2)
        rule = rule_col.selectbox(
            "Decision threshold of each candidate", ["accuracy", "f1", "cost"], disabled=locked, key="train_rule",
            format_func={"accuracy": "maximise accuracy", "f1": "maximise F1", "cost": "minimise the cost of errors"}.get,
            help="Chosen on cross-validated predictions, stored with the version, used by Serve, Production, "
                 "`predict`, `apply` and the drift checks. Accuracy (the default) makes the fewest errors and is "
                 "never below always answering the majority class on those predictions; F1 favours calling rows "
                 "positive and calls every row positive when positives are common and the model is weak; the cost "
                 "rule weighs a false positive against a false negative.")
        cost_ratio = ratio_col.number_input("Cost of a false positive / a false negative (cost rule)", min_value=0.01,
                                            max_value=1000.0, step=0.5, disabled=locked, key="train_cost_ratio")
    elif kind.name == "regression":
        interval = st.number_input(
            "Prediction interval: share of rows it should cover", min_value=0.5, max_value=0.99, step=0.05,
            format="%.2f", disabled=locked, key="train_interval",
            help="Each prediction comes with an interval [prediction − h, prediction + h]; h is the conformal "
                 "quantile of the cross-validated errors on the training split, so that about this share of new "
                 "rows fall inside. Its coverage on the test split is reported beside the metrics.")
    always = st.checkbox("Make it champion even if it does not beat the current one on the test split",
                         disabled=locked, key="train_always")
    submitted = st.form_submit_button("Train", type="primary", disabled=locked)

if busy_elsewhere:
    st.warning(f"A training is already running{lock.running_since(settings)}, started from another "
               "session or the command line. Only one training runs at a time: reload this page when it is done.")

if submitted and not locked:
    st.session_state[session_keys.TRAIN_REQUEST] = {"models": list(extra), "folds": int(folds),
                                                    "n_iter": int(n_iter), "criterion": criterion,
                                                    "feature_set": feature_set, "always": bool(always),
                                                    "rule": rule, "cost_ratio": float(cost_ratio),
                                                    "interval": None if interval is None else float(interval)}
    st.session_state.pop(session_keys.TRAIN_RESULT, None)
    st.session_state.pop(session_keys.TRAIN_ERROR, None)
    st.rerun()  # redraw the form disabled, then train

if request is not None:
    names = ", ".join(candidates.model_label(m, kind.name) for m in candidates.resolve_models(request["models"], kind.name))
    st.markdown(f"**Training** {names} · {request['folds']} folds · {request['n_iter']} iterations · "
                f"feature set {md(request['feature_set'])}")
    on_progress = progress.bar()
    table = st.empty()
    rows: list[dict] = []

    def on_candidate(c: training.CandidateResult) -> None:
        rows.append(result_row(c.to_dict(), kind.name, spec.target.names))
        show_rows(table, rows)

    try:
        policy = settings.promotion.with_rule(request["rule"], request["cost_ratio"])
        if request.get("interval") is not None:
            policy = dataclasses.replace(policy, interval_level=request["interval"])
        chosen = settings.replace(dataset=settings.dataset.with_feature_set(request["feature_set"]), promotion=policy)
        result = training.train(
            chosen, models=request["models"], n_iter=request["n_iter"], folds=request["folds"],
            criterion=request["criterion"], on_candidate=on_candidate,
            on_progress=on_progress, promote="always" if request.get("always") else "gate")
        st.session_state[session_keys.TRAIN_RESULT] = result.to_dict()
    except WorkbenchError as err:
        st.session_state[session_keys.TRAIN_ERROR] = str(err)
    finally:
        st.session_state.pop(session_keys.TRAIN_REQUEST, None)
        st.session_state[USED] = {"train_models": list(request["models"]), "train_folds": request["folds"],
                                  "train_n_iter": request["n_iter"], "train_criterion": request["criterion"],
                                  "train_feature_set": request["feature_set"],
                                  "train_always": bool(request.get("always")), "train_rule": request["rule"],
                                  "train_cost_ratio": request["cost_ratio"],
                                  **({"train_interval": request["interval"]} if request.get("interval") else {})}
    st.rerun()

if session_keys.TRAIN_ERROR in st.session_state:
    st.error(md(st.session_state[session_keys.TRAIN_ERROR]))

result = st.session_state.get(session_keys.TRAIN_RESULT)
if result is None:
    st.info("Pick the candidates and budget, then press **Train**. Defaults take about 10–20 s on 2 cores; "
            "each extra candidate or iteration adds to that.")
    st.stop()

champ, challenger = result["champion"], result.get("challenger") or result["champion"]
task = result.get("task", "binary")  # the result's own task (another dataset's may still be shown)
label = candidates.model_label(challenger["name"], task)
ct = challenger["test"]
if task == "binary":
    base = result["baselines"]["base_rate"]["log_loss"]  # the log loss of always answering the base rate
    figures = (f"test log loss {ct['log_loss']:.4f}, base-rate log loss {base:.4f}; threshold "
               f"{challenger.get('threshold') or BINARY.default_threshold:.2f}")
elif task == "multiclass":
    shares = result["baselines"]["class_shares"]
    figures = (f"test log loss {ct['log_loss']:.4f} vs {shares['log_loss']:.4f} of always the training class "
               f"shares; accuracy {ct['accuracy']:.3f}, macro F1 {ct['f1_macro']:.3f}")
else:
    mean, interval = result["baselines"]["mean"], challenger.get("interval") or {}
    figures = (f"test RMSE {ct['rmse']:,.4g} vs {mean['rmse']:,.4g} of always the training mean; R² {ct['r2']:.3f}; "
               f"its {interval.get('level', 0.9):.0%} interval (± {interval.get('halfwidth', float('nan')):,.4g}) held "
               f"{ct.get('interval_coverage', float('nan')):.1%} of the test rows")
if result.get("promoted", True):
    st.success(f"Champion: **{label}**, registered as {md(settings.model_name)} version {challenger['version']} "
               f"({figures}) · trained in {result['seconds']:.1f} s on "
               f"the feature set {md(result.get('feature_set', 'default'))}"
               + (f" · version {result['previous_version']} is now `previous`" if result["previous_version"] else ""))
else:
    st.warning(f"**The champion stays version {champ['version']}.** The best candidate, {label}, is registered as "
               f"version {challenger['version']} with alias `challenger`: {result.get('reason', '')}. "
               "Promote it on the **Compare** page if you want it anyway.")
if result.get("champion_before"):
    st.markdown("**Champion vs challenger on the same test split**" + (" · " + result["reason"] if result.get("promoted") else ""))
    verdict = verdict_table(result)
    st.dataframe(verdict, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in verdict.columns})
below = [v for v in ({challenger["version"]: challenger} | {champ["version"]: champ}).values() if v.get("below_majority")]
if below:  # says it plainly: worse than always answering the majority class
    for v in below:
        st.warning(f"**Version {v['version']} is less accurate than always answering {md(majority_name(result))}** "
                   f"on the test split: {md(v.get('why_below_majority') or '')}.")
elif task == "binary" and ct.get("recall", 0) >= 0.99 and ct.get("precision", 1) < 0.99:
    st.info(f"At its threshold ({challenger.get('threshold') or BINARY.default_threshold:.2f}) the model calls almost every "
            f"{md(settings.dataset.row_noun)} {md(settings.dataset.positive_name)}: maximising F1 does that when "
            f"{md(settings.dataset.positive_name)} is common and the model is weak. Choose **maximise accuracy** "
            "above for the most accurate threshold (or the cost rule with your own cost ratio).")
elif task == "binary" and ct.get("recall", 1) <= 0.01:
    st.info(f"At its threshold ({challenger.get('threshold') or BINARY.default_threshold:.2f}) the model calls almost no "
            f"{md(settings.dataset.row_noun)} {md(settings.dataset.positive_name)}: on the cross-validated predictions "
            "no threshold was more accurate, so it answers like the majority class.")
st.caption(f"In the MLflow UI: the training run {mlflow_links.run_link(settings, result['parent_run_id'])}, the "
           f"registered {mlflow_links.version_link(settings, challenger['version'])}. "
           + mlflow_links.ui_hint(settings))
st.caption(f"Best candidate chosen by {result.get('selected_by') or result['criterion']}: the test figures below "
           "only report." + (" F1, precision, recall and accuracy are at each candidate's own threshold."
                             if task == "binary" else ""))
show_rows(st, [result_row(c, task, tuple(result.get("classes") or ())) for c in result["candidates"]])
budget = f"{result['folds']} folds, {result['n_iter']} iterations per candidate."
if task == "binary":
    majority = result["baselines"]["majority_class"]
    rate = result.get("base_rate")
    rate_text = f" ({rate:.3f})" if rate is not None else ""
    st.caption(f"Baselines on the same test set: always {md(settings.dataset.proba_label)} = training base rate{rate_text} → "
               f"log loss {base:.4f}; always the majority class ({md(majority_name(result))}) → accuracy "
               f"{majority['accuracy']:.3f}, F1 {majority['f1']:.3f}. {budget}")
elif task == "multiclass":
    majority = result["baselines"]["majority_class"]
    st.caption(f"Baselines on the same test set: always the training class shares as the probabilities → log loss "
               f"{shares['log_loss']:.4f}; always the majority class ({md(majority_name(result))}) → accuracy "
               f"{majority['accuracy']:.3f}, macro F1 {majority['f1_macro']:.3f}. Each class's F1 is of its most "
               f"probable class. {budget}")
else:
    st.caption(f"Baseline on the same test set: always the training mean → RMSE {mean['rmse']:,.4g}, MAE "
               f"{mean['mae']:,.4g}, R² {mean['r2']:.3f}; its own conformal interval held "
               f"{mean.get('interval_coverage', float('nan')):.1%}. Interval coverage is the share of test rows whose "
               f"actual value lies inside the candidate's interval. {budget}")
st.info("Next: overlay the candidates' curves and manage the registry on the **Compare** page.")
