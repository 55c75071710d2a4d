"""Where the model does worse: the worst segments' table, shared by Compare (the test split),
Production (a labelled scored batch) and Drift (a labelled checked batch). The computation is
`core.monitoring.segments` (via `segment_sources`); a page adds one call.

Segment names are the data's own values: they are shown in tables (plain text), never in Markdown.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.errors import WorkbenchError
from core.modeling import metrics
from core.monitoring import segment_sources
from core.monitoring.segments import SegmentReport
from ui.text import md

SHOWN = 8  # the worst segments shown at once; every segment is in the expander


@st.cache_data(show_spinner="Measuring the model per segment of the test split…", max_entries=16)
def _test_split(home: str, dataset: str, version: str, feature_set: str, prepared: float, _settings: Any,
                _model: Any) -> SegmentReport:
    # keyed by the version and the test split's age (`prepared`): a new preparation is judged anew
    return segment_sources.for_test_split(_settings, _model)


@st.cache_data(show_spinner="Measuring the model per segment of the batch…", max_entries=8)
def _scored(key: str, threshold: float | None, _scored_rows: pd.DataFrame, _settings: Any, _model: Any,
            source: str) -> SegmentReport:
    return segment_sources.for_scored(_scored_rows, _settings, _model, source=source, threshold=threshold)


@st.cache_data(show_spinner="Measuring the model per segment of the batch…", max_entries=8)
def _stored(path: str, digest: str, version: str, name: str, _settings: Any, _model: Any) -> SegmentReport:
    from core.data import batches

    batch = batches.read_batch(path, _model.scoped(_settings), name=name)
    return segment_sources.for_batch(batch, _settings, _model)


def _frame(report: SegmentReport, spec: Any, rows: list) -> pd.DataFrame:
    titles = {f: spec.feature(f).title for f in report.features}
    table = report.table(rows, feature_titles=titles)
    shares = [s.share for s in rows]
    return table.assign(share=shares)


def _columns(report: SegmentReport, table: pd.DataFrame, others_at_most: int = 99) -> tuple[list[str], dict]:
    crit = metrics.label(report.criterion)
    keep = ["feature", "segment", "rows", "share", crit, "gap"]
    others = [c for c in table.columns if c not in keep and c != "too small" and not c.startswith("f1_")]
    others = others[:others_at_most]
    number = st.column_config.NumberColumn
    longest = int(table["feature"].astype(str).str.len().max()) if len(table) else 10
    config = {"feature": st.column_config.TextColumn("feature", width=min(24 + 7 * longest, 320)),  # in pixels
              "segment": st.column_config.TextColumn("segment"),  # the data's own values
              "rows": number("rows", format="%d"),
              "share": number("share", format="percent", help="The segment's share of the labelled rows"),
              crit: number(crit, format="%.4g", help=f"The model's criterion on the segment's rows "
                                                     f"({'lower' if report.lower_is_better else 'higher'} is better)"),
              "gap": number("gap", format="%+.3g",
                            help=f"The segment's {crit} minus the whole's: "
                                 + ("above 0 is worse" if report.lower_is_better else "below 0 is worse")),
              **{c: number(c, format="%.3g") for c in others}}
    return keep + others, config


def show(report: SegmentReport, spec: Any, what: str) -> None:
    """The worst segments of `report` (`what` names the rows, e.g. "the test split") with their
    sizes, and every segment in an expander."""
    crit = metrics.label(report.criterion)
    whole = report.overall.get(report.criterion)
    small = sum(s.too_small for s in report.segments)
    st.caption(f"Every feature cut into segments (each category, up to {report.max_categories} with the rest "
               f"pooled as (other); numbers in {report.bins} quantile bins; missing values apart), ranked by "
               f"{crit}, worst first. The whole: {crit} {whole:.4g} on {report.rows:,} labelled rows of {what}, "
               f"model v{report.model_version}. "
               + (f"{small} segment(s) under {report.min_rows} rows are too small to judge and are not ranked."
                  if small else ""))
    worst = report.worst(SHOWN)
    if worst:
        table = _frame(report, spec, worst)
        columns, config = _columns(report, table, others_at_most=2)  # the whole row in view
        st.dataframe(table[columns], hide_index=True, width="stretch", column_config=config)
    elif not report.to_dict()["judged"]:
        st.info(f"Every segment has fewer than {report.min_rows} labelled rows: too small to judge. The table "
                "below lists them; a larger batch would tell more.")
    else:
        st.success(f"No segment of {report.min_rows} rows or more does worse than the whole on {crit}.")
    with st.expander(f"Every segment ({len(report.segments)}, the too small ones last)"):
        table = _frame(report, spec, list(report.segments))
        columns, config = _columns(report, table)
        st.dataframe(table[[*columns, "too small"]], hide_index=True, width="stretch", column_config=config)


def test_split_section(settings: Any, versions: list[str], default: str | None) -> None:
    """Compare: the worst segments of the test split for a registered version picked among
    `versions` (the champion `default` first)."""
    from core.modeling import registry

    st.subheader("Where a version does worse: segments of the test split")
    if not versions:
        return
    start = versions.index(default) if default in versions else 0
    version = st.selectbox("Version", versions, index=start, key="segments-version",
                           format_func=lambda v: f"v{v}" + (" (champion)" if v == default else ""))
    try:
        model = registry.version_info(settings, version)
        if model is None:
            st.info(f"Version {version} is no longer registered.")
            return
        test = model.scoped(settings).test_path
        report = _test_split(str(settings.home), settings.dataset.name, model.version, model.feature_set,
                             test.stat().st_mtime if test.exists() else 0.0, settings, model)
    except WorkbenchError as err:
        st.error(md(err))
        return
    show(report, model.inputs(settings.dataset), "the test split")


def scored_section(scored: pd.DataFrame, key: str, settings: Any, model: Any, source: str,
                   threshold: float | None = None) -> None:
    """Production: the worst segments of a scored batch's labelled rows (`key` names the scored
    file and its age); a batch without labels is said so."""
    st.subheader(f"Where v{model.version} does worse: segments of this batch")
    scored_by = str(scored["model_version"].iloc[0]).split()[0] if "model_version" in scored and len(scored) else None
    if scored_by is not None and scored_by != model.version:  # the page says so above: score again
        st.info(f"This batch was scored by v{scored_by}, not the champion v{model.version}: score it again to see "
                "the champion's segments.")
        return
    try:
        report = _scored(f"{key}:{model.version}", threshold, scored, settings, model, source)
    except WorkbenchError as err:
        st.info(md(err))
        return
    show(report, model.inputs(settings.dataset), md(source))


def batch_section(report: Any, settings: Any, model: Any) -> None:
    """Drift: the worst segments of a checked batch (a `DriftReport`) with labels, read back from
    where the check stored it; nothing for a batch without labels."""
    batch = report.batch
    if not batch.get("n_labelled") or not report.stored_path:
        return
    st.subheader(f"Where v{model.version} does worse: segments of this batch")
    try:
        seg = _stored(str(report.stored_path), batch["digest"], model.version, batch["name"], settings, model)
    except WorkbenchError as err:
        st.error(md(err))
        return
    show(seg, model.inputs(settings.dataset), md(batch["name"]))
