"""The Data page's "Add a dataset" panel: upload a table, infer its definition, edit it, save it.

The work is core's: `dataset_store.read_table` reads the file, `infer.infer` proposes the
definition (the target's task kind too: the analyst may choose another kind the target fits,
which infers it again), `definition_edit` turns it into an editable table and back,
`dataset_store.add` saves it. Once saved, the new dataset becomes this session's
(`dataset_picker.use_dataset`).
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from core.config import Settings
from core.data import dataset_store, definition_edit, infer, target_task
from core.dataset import KINDS, DatasetError
from ui import session_keys
from ui.dataset_picker import use_dataset
from ui.text import md

UPLOAD_KEY = "add_upload"
# why a target fits one task kind only (the Task select box's help)
OTHER_KINDS = {"binary": "two values are two classes",
               "multiclass": "its values are text, so it cannot be predicted as a number",
               "regression": "its numbers are too many or too rare to be classes"}


@st.cache_data(show_spinner="Reading the file…", max_entries=4)
def _table(file_id: str, file_name: str, _file: Any) -> pd.DataFrame:
    # keyed by the upload's id (the file itself is not hashed)
    return dataset_store.read_table(_file, name=file_name)


def in_progress() -> bool:
    """True while this session is reviewing a proposed definition or has just saved one (the
    panel is then drawn open)."""
    return session_keys.ADD_INFERENCE in st.session_state or session_keys.ADD_SAVED in st.session_state


def panel(settings: Settings) -> None:
    """Draw the panel (inside the caller's expander)."""
    saved = st.session_state.pop(session_keys.ADD_SAVED, None)
    if saved:
        st.success(saved)
    st.caption("Bring your own table and name the column to predict: two classes (binary), 3 to 50 classes "
               "(multiclass) or a number (regression). The workbench proposes a definition (the task, the target's "
               "classes, each feature's kind and domain, the columns it leaves out and why); check and edit it, "
               f"then save. The file and its definition are kept under `{settings.home / 'data' / 'datasets'}`.")
    # a new uploader after each save (the browser would otherwise keep showing the saved file)
    uploaded = st.file_uploader("Table (CSV or parquet)", type=["csv", "parquet"],
                                key=f"{UPLOAD_KEY}_{st.session_state.get(session_keys.ADD_ROUND, 0)}")
    if uploaded is None:
        st.session_state.pop(session_keys.ADD_INFERENCE, None)
        return
    try:
        frame = _table(uploaded.file_id, uploaded.name, uploaded)
    except DatasetError as err:
        st.error(md(err))
        return
    st.caption(f"{md(uploaded.name)}: {len(frame):,} rows, {frame.shape[1]} columns.")

    left, right = st.columns(2)
    name = left.text_input("Name", placeholder="e.g. churn-2024",
                           help="Lower-case letters, digits, '-' or '_'. It names the dataset's folder, its MLflow "
                                "experiment and its model.").strip()
    target = right.selectbox("Target: the column to predict", list(frame.columns), index=None,
                             placeholder="Choose the column to predict",
                             help="A column with two classes (e.g. 0/1, yes/no), 3 to 50 classes (e.g. species) or "
                                  "a number (e.g. a price); rows where it is empty are kept as unlabelled.")
    task = _task_box(left, frame, uploaded.file_id, target)
    positive = right.text_input("Positive class (optional)", placeholder="default: the minority class",
                                disabled=task != "binary",
                                help="For a binary target (two classes): the value the model gives the probability "
                                     "of.").strip()
    prod_where = st.text_input("Production rows (optional row filter)", placeholder="e.g. year >= 2024",
                               help="Rows matching the filter (comparisons joined by and / or / not, e.g. region in [\"north\", \"south\"]) are set apart as the production batch, the others "
                                    "are the dev data. Leave empty for no production batch.").strip()
    kinds = _choices(uploaded.file_id, target, frame) if target else ()
    params = {"file_id": uploaded.file_id, "name": name, "target": target,
              "positive": (positive or None) if task == "binary" else None, "prod_where": prod_where or None,
              "task": None if not kinds or task == kinds[0] else task}

    state = st.session_state.get(session_keys.ADD_INFERENCE)
    again = state is not None and state["params"] != params and all(
        state["params"][k] == params[k] for k in params if k != "task")  # the Task box changed: infer again
    if st.button("Infer definition", type="primary", disabled=not (name and target),
                 help=None if name and target else "Give a name and choose the target first.") or again:
        try:
            found = infer.infer(frame, name, target, positive=params["positive"], prod_where=params["prod_where"],
                                task=params["task"])
        except DatasetError as err:
            st.session_state.pop(session_keys.ADD_INFERENCE, None)
            st.error(md(re.sub(r"with --task ([a-z]+)", r"by choosing \1 under Task", str(err))))
            return
        st.session_state[session_keys.ADD_INFERENCE] = {"params": params, "inference": found}
        st.session_state.pop(session_keys.ADD_EDITOR, None)  # a fresh table for a fresh inference

    state = st.session_state.get(session_keys.ADD_INFERENCE)
    if state is None or state["params"]["file_id"] != uploaded.file_id:
        st.session_state.pop(session_keys.ADD_INFERENCE, None)
        return
    _review(settings, frame, state["params"], state["inference"], stale=state["params"] != params)


@st.cache_data(show_spinner=False, max_entries=16)
def _choices(file_id: str, target: str, _frame: pd.DataFrame) -> tuple[str, ...]:
    # keyed by the upload and the target column (the frame is the upload's, not hashed)
    return target_task.task_choices(_frame[target])


def _task_box(column: Any, frame: pd.DataFrame, file_id: str, target: str | None) -> str | None:
    """The Task select box: the kinds the target fits, the one inferred from its values first (a
    box of its own per target, so that another target starts at its inferred kind). The kind
    chosen (None before a target is chosen or when none fits)."""
    kinds = _choices(file_id, target, frame) if target else ()
    if not kinds:
        column.selectbox("Task", [], index=None, disabled=True, key=f"{session_keys.ADD_TASK}_none",
                         placeholder="inferred from the target" if not target else "no kind fits this target",
                         help="Choose the target first: the task kind is inferred from its values.")
        return None
    why = (f" {md(target)} fits no other kind: {OTHER_KINDS.get(kinds[0], '')}." if len(kinds) < 2 else
           " Another choice infers the definition again.")
    return column.selectbox(
        "Task", kinds, index=0, key=f"{session_keys.ADD_TASK}_{file_id}_{target}", disabled=len(kinds) < 2,
        format_func=lambda kind: f"{kind} (inferred)" if kind == kinds[0] else kind,
        help="The kind of prediction: binary (two classes), multiclass (3 to 50 classes) or regression (a number); "
             "the list holds the kinds this target fits, the one inferred from its values first." + why)


def _sentence(note: str | None, flag: str, widget: str) -> str:
    """A note of the inference as the page says it: capitalised, the CLI flag as the page's widget."""
    text = (note or "").replace(f"use {flag} to choose", f"change {widget} to choose")
    text = re.sub(rf"; {flag} ([a-z]+(?: or [a-z]+)*) fits too", rf"; \1 fits too: choose it under {widget}", text)
    text = text.replace(f"as chosen with {flag}", f"as chosen under {widget}")
    return text[:1].upper() + text[1:] + "."


def _review(settings: Settings, frame: pd.DataFrame, params: dict, found: infer.Inference, stale: bool) -> None:
    """The proposed definition: its task and, for binary, its positive class in words, counts,
    the editable feature table, the columns left out, and the Save button."""
    st.markdown(f"**Proposed definition of `{found.name}`**")
    st.info(md(" ".join(_sentence(note, flag, widget) for note, flag, widget in (
        (found.task_note, "--task", "Task"), (found.positive_note, "--positive", "Positive class")) if note)))
    c = st.columns(4)
    c[0].metric("Rows", f"{found.rows:,}")
    c[1].metric("Labelled", f"{found.labelled_rows:,}")
    c[2].metric("Unlabelled", f"{found.unlabelled_rows:,}", help="Rows without a target value: kept out of training.")
    c[3].metric("Production rows", "none" if found.prod_rows is None else f"{found.prod_rows:,}",
                help="Set apart by the production filter" if found.prod_rows is not None else
                     "No production filter: every labelled row is dev data.")
    for warning in found.warnings:
        st.warning(md(warning))

    st.markdown("Features: untick **include** to leave one out, change a **kind**, allow missing values, "
                "or bound a numeric feature's range (**min** and **max** apply to numeric features only; "
                "an empty cell is no bound).")
    edited = st.data_editor(
        pd.DataFrame(definition_edit.edit_table(found.definition), columns=list(definition_edit.COLUMNS)),
        key=session_keys.ADD_EDITOR, hide_index=True, width="stretch", num_rows="fixed",
        disabled=["column", "values"],
        column_config={
            "column": st.column_config.TextColumn("column"),
            "include": st.column_config.CheckboxColumn("include", help="Use this column as a model input."),
            "kind": st.column_config.SelectboxColumn("kind", options=list(KINDS), required=True,
                                                     help="numeric: a number in a range; binary: one of two "
                                                          "numbers; categorical: one of the categories seen."),
            "nullable": st.column_config.CheckboxColumn("may be missing",
                                                        help="Keep rows where it is empty (the model imputes it); "
                                                             "otherwise such rows are dropped."),
            "min": st.column_config.NumberColumn("min", help="Numeric features: the smallest allowed value "
                                                             "(empty: unbounded)."),
            "max": st.column_config.NumberColumn("max", help="Numeric features: the largest allowed value "
                                                             "(empty: unbounded)."),
            "values": st.column_config.TextColumn("allowed values"),
        })
    excluded = [e for e in found.excluded if e["column"] != params["target"]]
    if excluded:
        st.markdown(f"**Left out** ({len(excluded)} column{'s' if len(excluded) != 1 else ''})")
        st.dataframe(pd.DataFrame(excluded, columns=["column", "reason"]), hide_index=True, width="stretch")

    if stale:
        st.warning("The name, target, positive class or production filter changed since this definition was "
                   "inferred: click **Infer definition** again before saving.")
    replace = st.checkbox(f"Replace the dataset {found.name!r} if it already exists",
                          help="Its table, definition and prepared data are replaced; its inference log, "
                               "stored batches and drift history stay, and so do MLflow runs and models. "
                               "Refused while its model server runs.")
    if st.button("Save dataset", type="primary", disabled=stale):
        try:
            definition = definition_edit.apply_edits(found.definition, edited, frame)
            result = dataset_store.add(settings.home, frame, params["name"], params["target"],
                                       positive=params["positive"], prod_where=params["prod_where"],
                                       definition=definition, replace=replace)
        except DatasetError as err:
            st.error(md(err))
            return
        round_ = st.session_state.get(session_keys.ADD_ROUND, 0)
        use_dataset(result.name)
        st.session_state[session_keys.ADD_ROUND] = round_ + 1
        st.session_state[session_keys.ADD_SAVED] = (
            f"Saved {result.name}: {result.rows:,} rows, {len(result.features)} features"
            + (f", {result.prod_rows:,} production rows" if result.prod_rows is not None else "")
            + ". It is now this session's dataset: click **Prepare data** to split it and log it to MLflow."
            + (f" Kept in place in {result.folder}: {', '.join(result.kept)}." if result.kept else ""))
        st.rerun()
