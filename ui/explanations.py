"""Compare's global view of the candidates' explanations (issue 31): per candidate, the mean
absolute contribution of each feature and a beeswarm-like strip, computed at training on a
sample of the test split and stored with its run (`eval/explanations.json`), beside the
permutation importance of the same tab."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.charts import explanation as charts
from ui.text import md

EXPLAINERS = {"linear": "exact coefficients", "tree": "TreeSHAP (shap)", "fallback": "permutation sampling"}


def global_view(where: Any, evals: list, names: list[str], spec: Any) -> None:
    """One column per candidate (three to a row): its global explanation charts, or why none."""
    where.markdown("**From the explanations** (per-row contributions on a sample of the test split)")
    cols = where.columns(min(len(evals), 3))
    for i, (name, e) in enumerate(zip(names, evals)):
        col = cols[i % len(cols)]
        view = getattr(e, "explanations", None)
        if not view:
            col.caption(md(f"{name}: no explanations stored with this run (trained before they existed, or the "
                           "model could not be explained); retrain to get them."))
            continue
        col.plotly_chart(charts.importance_bars(view, spec), width="stretch", key=f"explain-bars-{i}",
                         config={"displayModeBar": False})
        col.plotly_chart(charts.strip(view, spec), width="stretch", key=f"explain-strip-{i}",
                         config={"displayModeBar": False})
        col.caption(md(f"{name}: {view.get('rows', '?')} test rows, {EXPLAINERS.get(view.get('explainer'), 'explained')}; "
                       f"scale: {charts.scale_words(str(view.get('scale', '')), spec)}."))
