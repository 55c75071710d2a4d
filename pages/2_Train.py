"""Train: tune candidate models with PyCaret, log them to MLflow and register the best as champion."""
import pandas as pd
import streamlit as st

from core.data import preparation
from core.errors import WorkbenchError
from core.modeling import candidates
from ui import progress, session_keys
from ui.dataset_picker import active_settings

st.set_page_config(page_title="Train · Kobe Workbench", layout="wide")
settings = active_settings()
st.title("Train")
st.caption("Tune candidate models with PyCaret (stratified K-fold CV, optimising log loss), evaluate them on "
           "the held-out test set, log each to MLflow and register the best as champion.")

if not preparation.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first.")
    st.stop()

from core.modeling import lock, training


def result_row(c: dict) -> dict:
    """One candidate as a table row (test metrics from the predicted probability at threshold 0.5)."""
    t = c["test"]
    return {"model": c["label"], "test log loss": t["log_loss"], "Brier": t["brier"], "ROC-AUC": t["roc_auc"],
            "F1": t["f1"], "accuracy": t["accuracy"], "precision": t["precision"], "recall": t["recall"],
            "CV log loss": c["cv"].get("log_loss"), "seconds": c["seconds"]}


def show_rows(where: st.delta_generator.DeltaGenerator, rows: list[dict]) -> None:
    where.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                    column_config={k: st.column_config.NumberColumn(format="%.4f") for k in
                                   ("test log loss", "Brier", "ROC-AUC", "F1", "accuracy", "precision", "recall",
                                    "CV log loss")}
                    | {"seconds": st.column_config.NumberColumn("time (s)", format="%.1f")})


request = st.session_state.get(session_keys.TRAIN_REQUEST)
busy_elsewhere = request is None and lock.is_training(settings)
locked = request is not None or busy_elsewhere

with st.form("train"):
    optional = [m for m in candidates.MODELS if m not in candidates.ALWAYS]
    extra = st.multiselect(
        "Candidates besides Logistic Regression and Decision Tree (always trained)", optional,
        default=[m for m in candidates.DEFAULT_MODELS if m in optional],
        format_func=lambda m: candidates.MODELS[m], disabled=locked)
    spec = settings.dataset
    sets = spec.feature_set_names
    feature_set = st.selectbox(
        "Feature set", sets, disabled=locked or len(sets) < 2,
        format_func=lambda n: f"{n}: {', '.join(spec.with_feature_set(n).features)}",
        help="The dataset definition's named sets of model inputs. The served model takes the champion's set.")
    left, mid, right = st.columns(3)
    folds = left.number_input("CV folds", min_value=2, max_value=20, value=candidates.DEFAULT_FOLDS, disabled=locked)
    n_iter = mid.number_input("Tuning iterations per candidate", min_value=1, max_value=200,
                              value=candidates.DEFAULT_N_ITER, disabled=locked)
    criterion = right.selectbox("Champion chosen by (test set)", list(candidates.CRITERIA),
                                format_func=lambda c: c.replace("_", " ").replace("roc auc", "ROC-AUC"),
                                disabled=locked)
    submitted = st.form_submit_button("Train", type="primary", disabled=locked)

if busy_elsewhere:
    st.warning(f"A training is already running{lock.running_since(settings)}, started from another "
               "session or the command line. Only one training runs at a time: reload this page when it is done.")

if submitted and not locked:
    st.session_state[session_keys.TRAIN_REQUEST] = {"models": list(extra), "folds": int(folds),
                                                    "n_iter": int(n_iter), "criterion": criterion,
                                                    "feature_set": feature_set}
    st.session_state.pop(session_keys.TRAIN_RESULT, None)
    st.session_state.pop(session_keys.TRAIN_ERROR, None)
    st.rerun()  # redraw the form disabled, then train

if request is not None:
    names = ", ".join(candidates.MODELS[m] for m in candidates.resolve_models(request["models"]))
    st.markdown(f"**Training** {names} · {request['folds']} folds · {request['n_iter']} iterations · "
                f"feature set {request['feature_set']}")
    on_progress = progress.bar()
    table = st.empty()
    rows: list[dict] = []

    def on_candidate(c: training.CandidateResult) -> None:
        rows.append(result_row(c.to_dict()))
        show_rows(table, rows)

    try:
        result = training.train(
            settings.replace(dataset=settings.dataset.with_feature_set(request["feature_set"])), models=request["models"], n_iter=request["n_iter"], folds=request["folds"],
            criterion=request["criterion"], on_candidate=on_candidate,
            on_progress=on_progress)
        st.session_state[session_keys.TRAIN_RESULT] = result.to_dict()
    except WorkbenchError as err:
        st.session_state[session_keys.TRAIN_ERROR] = str(err)
    finally:
        st.session_state.pop(session_keys.TRAIN_REQUEST, None)
    st.rerun()

if session_keys.TRAIN_ERROR in st.session_state:
    st.error(st.session_state[session_keys.TRAIN_ERROR])

result = st.session_state.get(session_keys.TRAIN_RESULT)
if result is None:
    st.info("Pick the candidates and budget, then press **Train**. Defaults take about 10–20 s on 2 cores; "
            "each extra candidate or iteration adds to that.")
    st.stop()

champ = result["champion"]
label = candidates.MODELS.get(champ["name"], champ["name"])
base = result["baselines"]["base_rate"]["log_loss"]
st.success(f"Champion: **{label}**, registered as {settings.model_name} version {champ['version']} "
           f"(test log loss {champ['test']['log_loss']:.4f}, base rate {base:.4f}) · trained in "
           f"{result['seconds']:.1f} s on the feature set {result.get('feature_set', 'default')}"
           + (f" · version {result['previous_version']} is now `previous`" if result["previous_version"] else ""))
show_rows(st, [result_row(c) for c in result["candidates"]])
majority = result["baselines"]["majority_class"]
st.caption(f"Baselines on the same test set: always {settings.dataset.proba_label} = training base rate → log loss {base:.4f}; "
           f"majority class → accuracy {majority['accuracy']:.3f}, F1 {majority['f1']:.3f}. "
           f"Criterion: {result['criterion'].replace('_', ' ')}; {result['folds']} folds, "
           f"{result['n_iter']} iterations per candidate.")
st.info("Next: overlay the candidates' curves and manage the registry on the **Compare** page.")
