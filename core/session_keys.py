"""Streamlit session-state keys, in one place (plain strings; core never imports streamlit)."""

PREP_SUMMARY = "prep_summary"
