"""One input widget per feature of the dataset definition (the Serve page's form).

The widget follows the feature's definition: a radio for a binary feature, a select box for a
list of allowed values, a whole-number or decimal input bounded by the feature's range. Help
texts give the definition's help and the training range.
"""
from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from core.dataset import Feature


def widget_key(feature: Feature, prefix: str = "serve") -> str:
    """The session-state key of a feature's widget."""
    return f"{prefix}_{feature.name}"


def hint(feature: Feature, ranges: Mapping[str, tuple[float, float]]) -> str:
    """The feature's help text with its training range."""
    text = feature.help or feature.title
    if feature.name in ranges:
        low, high = ranges[feature.name]
        unit = f" {feature.unit}" if feature.unit else ""
        text += f" Training range: {low:g} to {high:g}{unit}."
    return text


def feature_input(feature: Feature, default: float, ranges: Mapping[str, tuple[float, float]],
                  where: Any = st, prefix: str = "serve") -> float:
    """Draw the widget of one feature in `where` (the form, a column) and return its value."""
    key = widget_key(feature, prefix)
    helptext = hint(feature, ranges)
    if feature.values:
        options = list(feature.values)
        index = options.index(default) if default in options else 0
        if feature.kind == "binary":
            return where.radio(feature.title, options, index=index, horizontal=True, key=key,
                               format_func=feature.value_label, help=helptext)
        return where.selectbox(feature.title, options, index=index, key=key, format_func=feature.value_label,
                               help=helptext)
    if feature.integer:
        st.session_state.setdefault(key, int(default))
        return where.number_input(feature.title, key=key, step=1,
                                  min_value=None if feature.minimum is None else int(feature.minimum),
                                  max_value=None if feature.maximum is None else int(feature.maximum), help=helptext)
    st.session_state.setdefault(key, float(default))
    return where.number_input(feature.title, key=key, step=feature.step or 0.01, format="%.4f",
                              min_value=feature.minimum, max_value=feature.maximum, help=helptext)
