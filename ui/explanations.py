"""Compare's global view of the candidates' explanations (issue 31): per candidate, the mean
absolute contribution of each feature and a beeswarm-like strip, computed at training on a
sample of the test split and stored with its run (`eval/explanations.json`), beside the
permutation importance of the same tab."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.charts import explanation as charts
from ui.text import md

EXPLAINERS = {"linear": "exact coefficients", "tree": "TreeSHAP (shap)", "lightgbm": "LightGBM's own TreeSHAP",
              "fallback": "permutation sampling"}


def global_view(where: Any, evals: list, names: list[str], spec: Any) -> None:
    """One row per candidate: its mean |contribution| bars and its strip side by side, or why none."""
    where.markdown("**From the explanations** (per-row contributions on a sample of the test split)")
    for i, (name, e) in enumerate(zip(names, evals)):
        view = getattr(e, "explanations", None)
        if not view:
            where.caption(md(f"{name}: no explanations stored with this run (trained before they existed, or the "
                             "model could not be explained); retrain to get them."))
            continue
        model = name.split(" · ")[0]
        left, right = where.columns(2)
        left.plotly_chart(charts.importance_bars(view, spec, title=f"{model}: mean |contribution|"), width="stretch",
                          key=f"explain-bars-{i}", config={"displayModeBar": False})
        right.plotly_chart(charts.strip(view, spec, title=f"{model}: each of {view.get('rows', '?')} test rows"),
                           width="stretch", key=f"explain-strip-{i}", config={"displayModeBar": False})
        where.caption(md(f"{name}: {view.get('rows', '?')} test rows, {EXPLAINERS.get(view.get('explainer'), 'explained')}; "
                         f"scale: {charts.scale_words(str(view.get('scale', '')), spec)}"
                         + (" (summed over the classes on the left; on the right, to the class predicted for the row)"
                            if view.get("per_class") else "")
                         + ". Right: each dot a row, red where its value is high among the rows, blue where low "
                           "(a category: red where common)."))
