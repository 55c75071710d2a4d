"""Compare: every training run from MLflow, candidates' curves overlaid, and the registry's aliases."""
import pandas as pd
import streamlit as st

from core.charts import evaluation
from core.charts import multiclass as multiclass_charts
from core.charts import tasks as task_charts
from core.charts.words import Words
from core.errors import WorkbenchError
from core.modeling import comparison, metrics, promotion, registry
from core.scoring import exports
from ui import mlflow_links, segment_tables, session_keys, times
from ui.dataset_picker import active_settings
from ui.text import md

st.set_page_config(page_title="Compare · Kobe Workbench", layout="wide")
settings = active_settings()
st.title(f"Compare: {md(settings.dataset.title)}")
st.caption("All training candidates logged to MLflow: compare their test-set curves, then choose which "
           "registered version is the champion.")

HOME, DATASET = str(settings.home), settings.dataset.name
TASK = settings.dataset.task


# cached per state of the tracking store (its stamp changes with every write): a new training, a
# promotion from the CLI or another session is read at once; a tracking server is read every time
@st.cache_data(show_spinner=False, max_entries=8)
def runs_table(home: str, dataset: str, stamp: str, _settings):
    return comparison.training_runs(_settings)


@st.cache_data(show_spinner=False, max_entries=8)
def registry_rows(home: str, dataset: str, stamp: str, _settings):
    return comparison.registry_table(_settings)


stamp = comparison.store_stamp(settings)
runs = comparison.training_runs(settings) if stamp is None else runs_table(HOME, DATASET, stamp, settings)
if runs.empty:
    st.info("No training runs yet — train candidates on the Train page (or `python -m core train`) first.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def candidate(home: str, dataset: str, run_id: str, _settings) -> comparison.CandidateEval:
    """A candidate's test predictions and figures; a run's artifacts never change."""
    return comparison.load_candidate(_settings, run_id)


# figures cached as objects (st.plotly_chart copies them, nothing mutates them): per candidate run
# (immutable) and, for overlays, per selection; the confusion matrices per threshold too
@st.cache_resource(show_spinner=False, max_entries=64)
def curves(home: str, dataset: str, kind: str, run_ids: tuple[str, ...], names: tuple[str, ...], _settings):
    series = {name: (e.y_true, e.proba) for name, e in zip(names, (candidate(home, dataset, r, _settings) for r in run_ids))}
    draw = {"roc": evaluation.roc, "pr": evaluation.pr, "calibration": evaluation.calibration}[kind]
    return draw(series, words=Words.of(_settings.dataset), colours=evaluation.colour_map(names))


@st.cache_resource(show_spinner=False, max_entries=256)
def diagnostic_figure(home: str, dataset: str, run_id: str, name: str, title: str | None, _settings):
    """A candidate's importance or learning curve, drawn from its stored data (None: not stored)."""
    return evaluation.diagnostic(candidate(home, dataset, run_id, _settings), name, title,
                                 words=Words.of(_settings.dataset))


@st.cache_resource(show_spinner=False, max_entries=512)
def confusion_figure(home: str, dataset: str, run_id: str, name: str, threshold: float, _settings):
    e = candidate(home, dataset, run_id, _settings)
    return evaluation.confusion(e.y_true, e.proba, threshold, title=name, words=Words.of(_settings.dataset))


@st.cache_resource(show_spinner=False, max_entries=256)
def task_figure(home: str, dataset: str, kind: str, run_ids: tuple[str, ...], names: tuple[str, ...], _settings):
    """A multiclass or regression chart of one candidate (`run_ids` of one) or of several overlaid."""
    held = [candidate(home, dataset, r, _settings).held_out for r in run_ids]
    return task_charts.figure(kind, names, held, _settings.dataset)


fmt4 = st.column_config.NumberColumn(format="%.4f")
AT_THRESHOLD = ("precision", "recall", "f1", "accuracy")  # the figures a threshold moves
TABS = ["ROC", "Precision-recall", "Calibration", "Confusion matrices", "Feature importance", "Learning curves"]
TASK_TABS = {"binary": TABS,
             "multiclass": ["ROC per class", "Confusion matrices", "Precision and recall per class",
                            "Feature importance", "Learning curves"],
             "regression": ["Predicted vs actual", "Residuals", "Error distribution", "Interval coverage",
                            "Feature importance", "Learning curves"]}
REGISTRY_ESSENTIALS = ["version", "aliases", "model", "CV log loss", "test log loss", "test F1", "threshold", "mlflow"]
TASK_REGISTRY = {"binary": REGISTRY_ESSENTIALS,
                 "multiclass": ["version", "aliases", "model", "CV log loss", "test log loss", "test accuracy",
                                "test macro F1", "mlflow"],
                 "regression": ["version", "aliases", "model", "CV RMSE", "test RMSE", "test R²",
                                "test interval coverage", "interval ±", "mlflow"]}
CANDIDATE_COLUMNS = ["model", "CV log loss", "test log loss", "test ROC-AUC", "test F1", "threshold", "registered",
                     "mlflow"]  # the essentials fit the page; calibration and parameters are listed below the table
TASK_CANDIDATES = {"binary": CANDIDATE_COLUMNS,
                   "multiclass": ["model", "CV log loss", "test log loss", "test accuracy", "test macro F1",
                                  "registered", "mlflow"],
                   "regression": ["model", "CV RMSE", "test RMSE", "test MAE", "test R²", "test interval coverage",
                                  "interval ±", "registered", "mlflow"]}
# a regression's figures are in the target's own units: 4 significant digits, not 4 decimals
SCALE_FREE = {"test accuracy", "test macro F1", "test R²", "test interval coverage", "CV log loss", "test log loss",
              "test ROC-AUC", "test F1", "threshold", "test MAPE", "CV R²"}


# short headers where the registry table's narrow columns would cut the long one
REGISTRY_HEADERS = {"test interval coverage": "covered"}
REGISTRY_HELP = {"test interval coverage": "The share of test rows whose actual value lies inside their interval"}


def figure_columns(columns: list[str]) -> dict:
    """The number format of each figure column (shares and losses 4 decimals, a regression's
    errors and interval 4 significant digits)."""
    return {c: st.column_config.NumberColumn(c, format="%.4f" if c in SCALE_FREE else "%.4g")
            for c in columns if c not in ("version", "aliases", "model", "registered", "mlflow")}


st.subheader("Trainings")
CRITERION = metrics.label(comparison.criterion_column(TASK).removeprefix("CV "))
if TASK == "binary":
    st.caption("**CV log loss chose each training's best candidate** (out-of-fold predictions of the model as "
               "logged, calibrated or not); the test split only reports, and gates the promotion against the "
               f"champion. Test F1, precision, recall and accuracy are at each candidate's own threshold on "
               f"{md(settings.dataset.proba_label)}, chosen on the cross-validated predictions. "
               + mlflow_links.ui_hint(settings))
else:
    st.caption(f"**CV {CRITERION} chose each training's best candidate** (out-of-fold predictions of the model as "
               "logged), unless the training named another criterion; the test split only reports, and gates the "
               "promotion against the champion. "
               + ("A multiclass model answers its most probable class; accuracy and macro F1 are of that class. "
                  if TASK == "multiclass" else
                  "Interval coverage: the share of test rows inside the candidate's interval (± its halfwidth). ")
               + mlflow_links.ui_hint(settings))
groups = comparison.trainings(runs, TASK)
shown = st.number_input("Trainings shown", min_value=1, max_value=max(len(groups), 1), value=min(len(groups), 5),
                        help="Newest first; each opens to its candidates.") if len(groups) > 5 else len(groups)
for i, group in enumerate(groups[: int(shown)]):
    registered = (f" · registered v{group['version']}" + (f" ({group['aliases']})" if group["aliases"] else "")
                  if group["version"] else "")
    best_cv = f"{group['best CV']:.4f}" if TASK != "regression" else f"{group['best CV']:,.4g}"
    with st.expander(f"{group['started']:%Y-%m-%d %H:%M:%S} UTC · {group['candidates']} candidates · best "
                     f"{group['best']} (CV {group['criterion']} {best_cv}){registered} · "
                     f"{group['folds']} folds, {group['iterations']} iterations", expanded=i == 0):
        rows = group["rows"].assign(
            mlflow=mlflow_links.run_urls(settings, list(group["rows"]["run_id"])),
            registered=[f"v{v}" + (f" ({a})" if a else "") if v else "" for v, a in
                        zip(group["rows"]["version"], group["rows"]["aliases"])])
        columns = TASK_CANDIDATES[TASK]
        st.dataframe(rows[columns], hide_index=True, width="stretch",  # fits the page
                     column_config=figure_columns(columns)
                     | {"mlflow": st.column_config.LinkColumn("MLflow run", display_text="open", width="small")})
        st.caption(" · ".join(f"**{r.model}**: {r.parameters or 'defaults'}"
                              + (f"; calibration {r.calibration or 'none'}" if TASK != "regression" else "")
                              for r in rows.itertuples()))
st.download_button("Download every candidate (CSV)", lambda: exports.csv_bytes(comparison.runs_export(runs)), file_name="candidates.csv",
                   mime="text/csv", on_click="ignore", icon=":material/download:")
st.caption(exports.CSV_NOTE)


@st.fragment
def at_one_threshold(evals: list, names: list[str], spec, start: float) -> None:
    """The slider and what depends on it: a move reruns this part of the page only."""
    threshold = st.slider(f"One threshold for all, on {md(spec.proba_label)}: a {md(spec.row_noun)} is called "
                          f"{md(spec.positive_name)} at or above it", 0.01, 0.99, start, 0.01,
                          key=session_keys.COMPARE_THRESHOLD)
    at = pd.DataFrame([{"candidate": name, **metrics.from_proba(e.y_true, e.proba, threshold)}
                       for name, e in zip(names, evals)])
    st.dataframe(at[["candidate", *AT_THRESHOLD]], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(metrics.label(c), format="%.3f")
                                for c in AT_THRESHOLD})
    cols = st.columns(min(len(evals), 3))
    for i, (name, e) in enumerate(zip(names, evals)):
        cols[i % len(cols)].plotly_chart(confusion_figure(HOME, DATASET, e.run_id, name, round(threshold, 2), settings),
                                         width="stretch", key=f"cm-{i}")


def diagnostics_tabs(tab: dict, evals: list, names: list[str]) -> None:
    """Feature importance and learning curves, one chart per candidate (every task kind)."""
    for title, figure in (("Feature importance", "importance"), ("Learning curves", "learning_curve")):
        cols = tab[title].columns(min(len(evals), 3))
        for i, (name, e) in enumerate(zip(names, evals)):
            heading = (name if TASK == "binary" else short(name)) if figure == "learning_curve" else None
            fig = diagnostic_figure(HOME, DATASET, e.run_id, figure, heading, settings)
            if fig is None:
                cols[i % len(cols)].caption(f"**{name}**: no {title.lower()} stored with this run (logged by an "
                                            "older workbench); open it in MLflow.")
            else:
                cols[i % len(cols)].plotly_chart(fig, width="stretch", key=f"{figure}-{i}")


def short(name: str) -> str:
    """A candidate's label without its training's time ('Ridge Regression · v3'): a title that fits
    a third of the page."""
    parts = name.split(" · ")
    return " · ".join([parts[0], *parts[2:]])


def per_candidate(where, kind: str, evals: list, names: list[str]) -> None:
    """One chart per candidate, three to a row."""
    cols = where.columns(min(len(evals), 3))
    for i, (name, e) in enumerate(zip(names, evals)):
        cols[i % len(cols)].plotly_chart(task_figure(HOME, DATASET, kind, (e.run_id,), (short(name),), settings),
                                         width="stretch", key=f"{kind}-{i}")


def overlay_multiclass(tab: dict, evals: list, names: list[str]) -> None:
    """A multiclass training's charts: ROC per class and the k x k confusion matrix per candidate,
    per-class precision and recall overlaid."""
    picked = (tuple(e.run_id for e in evals), tuple(shortest(names)))
    tab["ROC per class"].caption("Each class against all the others, from the class's own probability.")
    per_candidate(tab["ROC per class"], "roc_per_class", evals, names)
    tab["Confusion matrices"].caption("Each candidate answers its most probable class; each cell shows the rows and "
                                      "their share of the actual class (the diagonal is each class's recall).")
    per_candidate(tab["Confusion matrices"], "confusion", evals, names)
    with tab["Precision and recall per class"]:
        left, right = st.columns(2)
        for where, kind in ((left, "precision"), (right, "recall")):
            where.plotly_chart(task_figure(HOME, DATASET, kind, *picked, settings), width="stretch")
        table = pd.DataFrame([{"candidate": name, "class": cls, **{k: float(v[j]) for k, v in scores.items()}}
                              for name, e in zip(names, evals)
                              for scores in [multiclass_charts.per_class_scores(e.y_true, e.proba, len(e.held_out.classes))]
                              for j, cls in enumerate(e.held_out.classes)])
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(metrics.label(c), format="%.3f")
                                    for c in ("precision", "recall", "f1")}
                     | {"rows": st.column_config.NumberColumn("test rows", format="%d")})


def shortest(names: list[str]) -> list[str]:
    """The candidates' labels without their trainings' times when that leaves them distinct (a
    legend of three fits the chart's width), else as they are."""
    cut = [short(n) for n in names]
    return cut if len(set(cut)) == len(cut) else names


def overlay_regression(tab: dict, evals: list, names: list[str]) -> None:
    """A regression training's charts: predicted vs actual and residuals per candidate, the error
    distributions and the interval coverage overlaid."""
    picked = (tuple(e.run_id for e in evals), tuple(shortest(names)))
    tab["Predicted vs actual"].caption("Points above the dashed line are over-predicted, below it under-predicted.")
    per_candidate(tab["Predicted vs actual"], "predicted_vs_actual", evals, names)
    tab["Residuals"].caption("The error of each test row against its prediction; outside the dashed band the "
                             "interval misses the actual value. A funnel or a curve is error the model leaves.")
    per_candidate(tab["Residuals"], "residuals", evals, names)
    tab["Error distribution"].plotly_chart(task_figure(HOME, DATASET, "errors", *picked, settings), width="stretch")
    tab["Interval coverage"].caption("The share of test rows inside their interval, per tenth of the predicted values. "
                                     "Conformal intervals hold the nominal share overall; a range below it is one "
                                     "where the errors are larger than usual.")
    tab["Interval coverage"].plotly_chart(task_figure(HOME, DATASET, "coverage", *picked, settings), width="stretch")


def overlay(evals: list, names: list[str]) -> None:
    """The chosen candidates' charts, every tab drawn once: a tab click is then the browser's
    alone (bench/RESULTS.md, issue 18 session 7: a tab drawn on its click took 0.7-1.4 s in
    Chromium, of which 20-300 ms were the page's own work; drawn with the page, 0.17-0.37 s)."""
    tab = dict(zip(TASK_TABS[TASK], st.tabs(TASK_TABS[TASK])))
    if TASK == "multiclass":
        overlay_multiclass(tab, evals, names)
    elif TASK == "regression":
        overlay_regression(tab, evals, names)
    else:
        overlay_binary(tab, evals, names)
    diagnostics_tabs(tab, evals, names)


def overlay_binary(tab: dict, evals: list, names: list[str]) -> None:
    """A binary training's curves overlaid and its confusion matrices at each one's threshold."""
    picked = (tuple(e.run_id for e in evals), tuple(names))
    # one colour per candidate on every chart (evaluation.colour_map of the same names)
    for title, kind in (("ROC", "roc"), ("Precision-recall", "pr"), ("Calibration", "calibration")):
        tab[title].plotly_chart(curves(HOME, DATASET, kind, *picked, settings), width="stretch")
    with tab["Confusion matrices"]:
        spec = settings.dataset
        st.caption("Each candidate decides at its own threshold (chosen on cross-validated predictions, "
                   "stored with its version). Move the slider to see every candidate at one threshold instead.")
        own = pd.DataFrame([{"candidate": name, "own threshold": e.threshold,
                             **metrics.from_proba(e.y_true, e.proba, e.threshold)} for name, e in zip(names, evals)])
        st.dataframe(own[["candidate", "own threshold", *AT_THRESHOLD]],
                     hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(metrics.label(c), format="%.3f")
                                    for c in ("own threshold", *AT_THRESHOLD)})
        at_one_threshold(evals, names, spec, float(min(max(round(evals[0].threshold, 2), 0.01), 0.99)))


labels = {r.run_id: f"{r.model} · {r.started:%Y-%m-%d %H:%M:%S}" + (f" · v{r.version}" if r.version else "")
          for r in runs.itertuples()}
latest = runs.loc[runs["training"] == runs["training"].iloc[0], "run_id"].tolist()
st.subheader("Overlay candidates")
chosen = st.multiselect("Candidates to compare (two or more)", list(labels), default=latest,
                        format_func=labels.get, key=session_keys.COMPARE_SELECTION)
evals, unreadable = [], []
for run_id in chosen:
    try:
        found = candidate(HOME, DATASET, run_id, settings)
    except WorkbenchError as err:  # e.g. a run logged by an older workbench: the others are still shown
        unreadable.append(str(err))
        continue
    if found.task != TASK:  # logged when the dataset's target was of another kind: its charts differ
        unreadable.append(f"{labels[run_id]} is a {found.task} model and the target is now {TASK}: it is left out.")
    else:
        evals.append(found)
for note in unreadable:
    st.warning(md(note))
if len(evals) < 2:
    st.info("Pick two or more candidates to overlay their curves."
            + (" The ones above cannot be drawn here." if unreadable else ""))
else:
    overlay(evals, [labels[e.run_id] for e in evals])

st.subheader("Registry")
versions = comparison.registry_table(settings) if stamp is None else registry_rows(HOME, DATASET, stamp, settings)
if versions.empty:
    st.info("Nothing registered yet: a training registers its best candidate as champion.")
    st.stop()
versions = versions.assign(mlflow=[mlflow_links.version_url(settings, v) for v in versions["version"]])
essentials = TASK_REGISTRY[TASK]
st.dataframe(versions[essentials], hide_index=True, width="stretch",  # fits the page: no scrolling
             column_config={"version": st.column_config.TextColumn("version", width="small"),
                            "aliases": st.column_config.TextColumn("aliases", width="small"),
                            "model": st.column_config.TextColumn("model", width="medium"),
                            **{c: st.column_config.NumberColumn(REGISTRY_HEADERS.get(c, c),
                                                                format="%.4f" if c in SCALE_FREE else "%.4g",
                                                                width="small", help=REGISTRY_HELP.get(c))
                               for c in essentials if c not in ("version", "aliases", "model", "mlflow")},
                            "mlflow": st.column_config.LinkColumn("MLflow", display_text="open", width="small")})
with st.expander("Every registry column: tuned parameters, feature set, training rows, registration time"):
    zone = times.browser_zone()
    st.dataframe(versions[["version", "model", "parameters", "feature set", "train rows", "registered"]]
                 .assign(registered=times.local_times(versions["registered"], zone)),
                 hide_index=True, width="stretch",
                 column_config={"version": st.column_config.TextColumn("version", width="small"),
                                "registered": st.column_config.DatetimeColumn(f"registered ({zone})",
                                                                              format=times.READABLE),
                                "parameters": st.column_config.TextColumn("tuned parameters", width="medium")})
st.caption("A training registers its best candidate and makes it champion only when it beats the champion on the "
           "test split (alias `challenger` otherwise); `previous` is the champion before the last promotion.")
champion = comparison.version_with_alias(versions, registry.CHAMPION)  # the registry as read above
previous = comparison.version_with_alias(versions, registry.PREVIOUS)
left, right = st.columns(2)
with left.container(border=True):
    st.markdown("**Promote a version to champion**")
    version = st.selectbox("Version", versions["version"].tolist(),
                           format_func=lambda v: f"v{v} · " + versions.set_index("version").loc[v, "model"])
    by_version = versions.set_index("version")

    def described(v: str) -> str:
        row = by_version.loc[v]
        if TASK == "regression":
            return f"v{v} ({row['model'] or 'model'}, test RMSE {row['test RMSE']:,.4g})"
        if TASK == "multiclass":
            return f"v{v} ({row['model'] or 'model'}, test log loss {row['test log loss']:.4f})"
        return (f"v{v} ({row['model'] or 'model'}, test log loss {row['test log loss']:.4f}, "
                f"threshold {row['threshold']:.2f})")

    confirm = st.checkbox(f"Yes, make {described(version)} champion"
                          + (f" in place of {described(champion)}, which becomes previous"
                             if champion and champion in by_version.index and champion != version
                             else ""),
                          key=f"confirm-promote-{version}")
    is_champion = champion == version
    if st.button("Promote", disabled=not confirm or is_champion):
        try:
            info = promotion.promote(settings, version)
        except WorkbenchError as err:
            st.error(md(err))
        else:
            st.toast(f"Version {info.version} is now champion.")
            runs_table.clear(), registry_rows.clear()  # not left to the stamp: a file time is coarse
            st.rerun()
    if is_champion:
        st.caption(f":material/block: Disabled: v{version} is already the champion; pick another version.")
    elif not confirm:
        st.caption(":material/block: Disabled until you tick the confirmation above.")
with right.container(border=True):
    st.markdown("**Roll back**")
    if previous is None:
        st.caption("No previous champion to roll back to.")
    else:
        back = st.checkbox(f"Yes, make the previous champion v{previous} champion again")
        if st.button("Roll back", disabled=not back):
            try:
                info = promotion.rollback(settings)
            except WorkbenchError as err:
                st.error(md(err))
            else:
                st.toast(f"Rolled back: version {info.version} is champion again.")
                runs_table.clear(), registry_rows.clear()
                st.rerun()
        if not back:
            st.caption(":material/block: Disabled until you tick the confirmation above.")

segment_tables.test_split_section(settings, versions["version"].tolist(), champion)
