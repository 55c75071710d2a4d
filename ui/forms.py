"""One input widget per feature of the dataset definition (the Serve page's form).

The widget follows the feature's definition: a toggle for a binary feature (returning one of its
two numbers), a select box for a categorical feature (its categories seen in training; typing
another one sends it as an *unseen* category) or for listed numbers, a whole-number or decimal
input bounded by the feature's range. Help texts give the definition's help and the training range.
"""
from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from core.dataset import Feature
from ui.text import md


def widget_key(feature: Feature, prefix: str = "serve") -> str:
    """The session-state key of a feature's widget."""
    return f"{prefix}_{feature.name}"


def hint(feature: Feature, ranges: Mapping[str, tuple[float, float]]) -> str:
    """The feature's help text with its training range (numeric features), as Markdown showing the
    definition's text literally (`ui.text.md`)."""
    text = md(feature.help or feature.title)
    if feature.numeric and feature.name in ranges:
        low, high = ranges[feature.name]
        unit = f" {md(feature.unit)}" if feature.unit else ""
        text += f" Training range: {low:g} to {high:g}{unit}."
    return text


def as_sent(values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values as the request sends them: numbers as floats, categories as text."""
    return {k: v if isinstance(v, str) or v is None else float(v) for k, v in values.items()}


def unseen_label(value: Any) -> str:
    """How a typed category that training never saw is shown."""
    return f"{value} (unseen in training)"


def feature_input(feature: Feature, default: Any, ranges: Mapping[str, tuple[float, float]],
                  where: Any = st, prefix: str = "serve") -> Any:
    """Draw the widget of one feature in `where` (the form, a column) and return its value: a
    number for numeric and binary features, the category's text for a categorical one."""
    key = widget_key(feature, prefix)
    helptext = hint(feature, ranges)
    if feature.kind == "categorical":
        return _category_input(feature, default, helptext, where, key)
    if feature.kind == "binary" and len(feature.values) == 2:
        return _binary_input(feature, default, helptext, where, key)
    if feature.values:
        options = list(feature.values)
        index = options.index(default) if default in options else 0
        return where.selectbox(md(feature.title), options, index=index, key=key, format_func=feature.value_label,
                               help=helptext)
    if feature.integer:
        st.session_state.setdefault(key, int(default))
        return where.number_input(md(feature.title), key=key, step=1,
                                  min_value=None if feature.minimum is None else int(feature.minimum),
                                  max_value=None if feature.maximum is None else int(feature.maximum), help=helptext)
    st.session_state.setdefault(key, float(default))
    return where.number_input(md(feature.title), key=key, step=feature.step or 0.01, format="%.4f",
                              min_value=feature.minimum, max_value=feature.maximum, help=helptext)


def _category_input(feature: Feature, default: Any, helptext: str, where: Any, key: str) -> str:
    """A select box of the categories seen in training; typing another value sends it as unseen."""
    options = [str(v) for v in feature.values]
    known = set(options)
    index = options.index(str(default)) if str(default) in known else (0 if options else None)
    value = where.selectbox(
        md(feature.title), options, index=index, key=key, accept_new_options=True,
        format_func=feature.value_label,
        placeholder="Pick or type a category",
        help=f"{helptext} Pick one of the {len(options)} categories seen in training, or type another "
             "one: it is sent as a category the model never saw.")
    if value is not None and value not in known:
        where.caption(f":orange[{md(unseen_label(repr(value)))}: not one of the {len(options)} categories the model "
                      "saw.]")
    return value


def _binary_input(feature: Feature, default: Any, helptext: str, where: Any, key: str) -> float:
    """A toggle: on is the feature's larger value, off the smaller one (returned as numbers)."""
    off, on = sorted(float(v) for v in feature.values)
    st.session_state.setdefault(key, default is not None and float(default) == on)
    on_text = feature.value_label(on)
    label = f"{md(feature.title)}: {md(on_text)}" if on_text != f"{on:g}" else f"{md(feature.title)} = {on:g}"
    checked = where.toggle(label, key=key,
                           help=f"{helptext} On: {md(on_text)} ({on:g}); off: {md(feature.value_label(off))} ({off:g}).")
    return on if checked else off
