"""Compare: every training run from MLflow, candidates' curves overlaid, and the registry's aliases."""
import pandas as pd
import streamlit as st

from core.charts import evaluation
from core.charts.words import Words
from core.errors import WorkbenchError
from core.modeling import comparison, metrics, registry
from ui import mlflow_links, session_keys
from ui.dataset_picker import active_settings

st.set_page_config(page_title="Compare · Kobe Workbench", layout="wide")
settings = active_settings()
st.title("Compare")
st.caption("All training candidates logged to MLflow: compare their test-set curves, then choose which "
           "registered version is the champion.")

runs = comparison.training_runs(settings)
if runs.empty:
    st.info("No training runs yet — train candidates on the Train page (or `python -m core train`) first.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def candidate(home: str, dataset: str, run_id: str) -> comparison.CandidateEval:
    """A candidate's test predictions and figures; a run's artifacts never change."""
    return comparison.load_candidate(settings, run_id)


fmt4 = st.column_config.NumberColumn(format="%.4f")
st.subheader("Trainings")
st.caption("**CV log loss chose each training's best candidate** (out-of-fold predictions of the model as "
           "logged, calibrated or not); the test split only reports, and gates the promotion against the "
           f"champion. Test F1, precision, recall and accuracy are at each candidate's own threshold on "
           f"{settings.dataset.proba_label}, chosen on the cross-validated predictions. "
           + mlflow_links.ui_hint(settings))
CANDIDATE_COLUMNS = ["model", "CV log loss", "test log loss", "test ROC-AUC", "test F1", "threshold", "calibration",
                     "parameters", "version", "aliases", "mlflow"]
groups = comparison.trainings(runs)
shown = st.number_input("Trainings shown", min_value=1, max_value=max(len(groups), 1), value=min(len(groups), 5),
                        help="Newest first; each opens to its candidates.") if len(groups) > 5 else len(groups)
for i, group in enumerate(groups[: int(shown)]):
    registered = (f" · registered v{group['version']}" + (f" ({group['aliases']})" if group["aliases"] else "")
                  if group["version"] else "")
    with st.expander(f"{group['started']:%Y-%m-%d %H:%M:%S} UTC · {group['candidates']} candidates · best "
                     f"{group['best']} (CV log loss {group['best CV log loss']:.4f}){registered} · "
                     f"{group['folds']} folds, {group['iterations']} iterations", expanded=i == 0):
        rows = group["rows"].assign(mlflow=[mlflow_links.run_url(settings, r) for r in group["rows"]["run_id"]])
        st.dataframe(rows[CANDIDATE_COLUMNS], hide_index=True, width="stretch",
                     column_config={c: fmt4 for c in ("CV log loss", "test log loss", "test ROC-AUC", "test F1",
                                                      "threshold")}
                     | {"mlflow": st.column_config.LinkColumn("MLflow run", display_text="open"),
                        "parameters": st.column_config.TextColumn("tuned parameters", width="medium")})
st.download_button("Download every candidate (CSV)", comparison.runs_csv(runs), file_name="candidates.csv",
                   mime="text/csv")

@st.fragment
def at_one_threshold(series: dict, spec, words: Words, start: float) -> None:
    """The slider and what depends on it: a move reruns this part of the page only."""
    threshold = st.slider(f"One threshold for all, on {spec.proba_label}: a {spec.row_noun} is called "
                          f"{spec.positive_name} at or above it", 0.01, 0.99, start, 0.01,
                          key=session_keys.COMPARE_THRESHOLD)
    at = pd.DataFrame([{"candidate": name, **metrics.from_proba(y, p, threshold)} for name, (y, p) in series.items()])
    st.dataframe(at[["candidate", "precision", "recall", "f1", "accuracy"]], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("precision", "recall", "f1", "accuracy")})
    cols = st.columns(min(len(series), 3))
    for i, (name, (y, p)) in enumerate(series.items()):
        cols[i % len(cols)].plotly_chart(evaluation.confusion(y, p, threshold, title=name, words=words),
                                         width="stretch", key=f"cm-{i}")


labels = {r.run_id: f"{r.model} · {r.started:%Y-%m-%d %H:%M:%S}" + (f" · v{r.version}" if r.version else "")
          for r in runs.itertuples()}
latest = runs.loc[runs["training"] == runs["training"].iloc[0], "run_id"].tolist()
st.subheader("Overlay candidates")
chosen = st.multiselect("Candidates to compare (two or more)", list(labels), default=latest,
                        format_func=labels.get, key=session_keys.COMPARE_SELECTION)
if len(chosen) < 2:
    st.info("Pick two or more candidates to overlay their curves.")
else:
    try:
        evals = [candidate(str(settings.home), settings.dataset.name, run_id) for run_id in chosen]
    except WorkbenchError as err:
        st.error(str(err))
        st.stop()
    series = {labels[e.run_id]: (e.y_true, e.proba) for e in evals}
    colours = evaluation.colour_map(list(series))  # one colour per candidate on every chart
    tab_roc, tab_pr, tab_cal, tab_cm, tab_imp, tab_lc = st.tabs(
        ["ROC", "Precision-recall", "Calibration", "Confusion matrices", "Feature importance", "Learning curves"])
    words = Words.of(settings.dataset)
    tab_roc.plotly_chart(evaluation.roc(series, words=words, colours=colours), width="stretch")
    tab_pr.plotly_chart(evaluation.pr(series, words=words, colours=colours), width="stretch")
    tab_cal.plotly_chart(evaluation.calibration(series, words=words, colours=colours), width="stretch")
    with tab_cm:
        spec = settings.dataset
        st.caption("Each candidate decides at its own threshold (chosen on cross-validated predictions, "
                   "stored with its version). Move the slider to see every candidate at one threshold instead.")
        own = pd.DataFrame([{"candidate": labels[e.run_id], "own threshold": e.threshold,
                             **metrics.from_proba(e.y_true, e.proba, e.threshold)} for e in evals])
        st.dataframe(own[["candidate", "own threshold", "precision", "recall", "f1", "accuracy"]], hide_index=True,
                     width="stretch", column_config={c: st.column_config.NumberColumn(format="%.3f")
                                                     for c in ("own threshold", "precision", "recall", "f1",
                                                               "accuracy")})
        at_one_threshold(series, spec, words, float(min(max(round(evals[0].threshold, 2), 0.01), 0.99)))
    with tab_imp:
        cols = st.columns(min(len(evals), 3))
        for i, e in enumerate(evals):
            cols[i % len(cols)].plotly_chart(e.figure("importance"), width="stretch", key=f"imp-{i}")
    with tab_lc:
        cols = st.columns(min(len(evals), 3))
        for i, e in enumerate(evals):
            fig = e.figure("learning_curve").update_layout(title=labels[e.run_id])
            cols[i % len(cols)].plotly_chart(fig, width="stretch", key=f"lc-{i}")

st.subheader("Registry")
versions = comparison.registry_table(settings)
if versions.empty:
    st.info("Nothing registered yet: a training registers its best candidate as champion.")
    st.stop()
st.dataframe(versions.assign(mlflow=[mlflow_links.version_url(settings, v) for v in versions["version"]])
             .drop(columns=["run_id"]), hide_index=True, width="stretch",
             column_config={c: fmt4 for c in ("CV log loss", "test log loss", "test F1", "threshold")}
             | {"registered": st.column_config.DatetimeColumn("registered (UTC)", format="YYYY-MM-DD HH:mm"),
                "parameters": st.column_config.TextColumn("tuned parameters", width="medium"),
                "mlflow": st.column_config.LinkColumn("MLflow", display_text="open")})
st.caption("A training registers its best candidate and makes it champion only when it beats the champion on the "
           "test split (alias `challenger` otherwise); `previous` is the champion before the last promotion.")
champion = registry.champion(settings)
previous = registry.alias_version(settings, registry.PREVIOUS)
left, right = st.columns(2)
with left.container(border=True):
    st.markdown("**Promote a version to champion**")
    version = st.selectbox("Version", versions["version"].tolist(),
                           format_func=lambda v: f"v{v} · " + versions.set_index("version").loc[v, "model"])
    by_version = versions.set_index("version")

    def described(v: str) -> str:
        row = by_version.loc[v]
        return (f"v{v} ({row['model'] or 'model'}, test log loss {row['test log loss']:.4f}, "
                f"threshold {row['threshold']:.2f})")

    confirm = st.checkbox(f"Yes, make {described(version)} champion"
                          + (f" in place of {described(champion.version)}, which becomes previous"
                             if champion and champion.version in by_version.index and champion.version != version
                             else ""),
                          key=f"confirm-promote-{version}")
    if st.button("Promote", disabled=not confirm or (champion is not None and champion.version == version)):
        try:
            info = registry.promote(settings, version)
        except WorkbenchError as err:
            st.error(str(err))
        else:
            st.toast(f"Version {info.version} is now champion.")
            st.rerun()
with right.container(border=True):
    st.markdown("**Roll back**")
    if previous is None:
        st.caption("No previous champion to roll back to.")
    else:
        back = st.checkbox(f"Yes, make the previous champion v{previous.version} champion again")
        if st.button("Roll back", disabled=not back):
            try:
                info = registry.rollback(settings)
            except WorkbenchError as err:
                st.error(str(err))
            else:
                st.toast(f"Rolled back: version {info.version} is champion again.")
                st.rerun()
