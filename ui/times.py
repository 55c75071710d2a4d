"""Times as the analyst reads them: in the browser's own time zone (pages only)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

READABLE = "D MMM YYYY, HH:mm"  # a Datetime column's format, e.g. '7 Dec 2026, 16:09'


def browser_zone() -> str:
    """The browser's IANA time zone (e.g. 'Europe/Lisbon'), else UTC (a test, an old browser)."""
    zone = getattr(st.context, "timezone", None)
    try:
        pd.Timestamp.now(tz=zone)
    except (TypeError, ValueError, KeyError):
        return "UTC"
    return zone or "UTC"


def local_times(utc: pd.Series, zone: str) -> pd.Series:
    """Naive UTC times as naive wall-clock times of `zone` (what a Datetime column shows as is)."""
    return pd.to_datetime(utc).dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
