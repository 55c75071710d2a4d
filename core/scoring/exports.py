"""Scored rows as files to download: CSV and parquet bytes of a frame, and of the last scored
batch (`prod_predictions.parquet`, the file `apply` and the Production page write).

Every CSV the workbench hands out is written by `csv_bytes`, which neutralises formulas by OWASP's
rule (CSV injection): a text cell or a column name starting with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading `'`, so that a spreadsheet opening the file shows the text instead
of running it (a column or a category named `=HYPERLINK(...)` comes from the data). Numbers are
written as they are; parquet keeps every value unchanged.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from core.config import Settings
from core.errors import NotPreparedError

Format = Literal["csv", "parquet"]
MIME: dict[str, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
CSV_NOTE = ("In the CSV, text starting with =, +, -, @, a tab or a carriage return starts with ' instead, so that a "
            "spreadsheet shows it rather than running it as a formula (numbers are unchanged; parquet keeps every value).")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list: what a spreadsheet may run


def formula_safe(value: Any) -> Any:
    """`value` with a leading `'` when it is text a spreadsheet would read as a formula; any
    other value as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def formula_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose column names and text cells are `formula_safe` (numbers untouched)."""
    out = frame.rename(columns=formula_safe)
    for i, column in enumerate(out.columns):
        values = out.iloc[:, i]
        if values.dtype == object or isinstance(values.dtype, (pd.CategoricalDtype, pd.StringDtype)):
            out.isetitem(i, values.astype(object).map(formula_safe))
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV with a header row and no index, formulas neutralised (`formula_safe_frame`)."""
    return formula_safe_frame(frame).to_csv(index=False).encode("utf-8")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as a parquet file (no index), read back by `pd.read_parquet` with the same columns and types."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def output_problem(output: str | Path) -> str | None:
    """Why `output` cannot take scored rows (None when it can): its suffix must be .csv or .parquet."""
    if Path(output).suffix.lower() not in (".csv", ".parquet"):
        return (f"the scored rows are written as CSV or parquet by the file's extension: name a .csv or .parquet "
                f"file, not {Path(output).name!r}")
    return None


def scored_rows(settings: Settings, fmt: Format, path: str | Path | None = None) -> bytes:
    """The last scored batch (or the scored rows saved at `path`, e.g. an uploaded batch's), every
    row and column (features, label when known, the probability, the class at the version's
    threshold and its name, the scoring version), as `fmt` bytes.

    Raises `NotPreparedError` when nothing was scored yet."""
    if fmt not in MIME:
        raise ValueError(f"format must be one of {sorted(MIME)}, not {fmt!r}")
    frame = load_scored(settings, path)
    return csv_bytes(frame) if fmt == "csv" else parquet_bytes(frame)


def file_name(settings: Settings, fmt: Format, path: str | Path | None = None) -> str:
    """The download's file name: the scored batch's own name (or `path`'s) with the format's suffix."""
    return f"{Path(path).stem if path is not None else settings.predictions_path.stem}.{fmt}"


def load_scored(settings: Settings, path: str | Path | None = None) -> pd.DataFrame:
    """The last scored batch (`prod_predictions.parquet`), or the scored rows saved at `path`
    (an uploaded batch's, see `core.scoring.local.upload_output_path`)."""
    if path is not None:
        if not Path(path).exists():
            raise NotPreparedError(f"The scored rows at {path} are gone: score the batch again.")
        return pd.read_parquet(path)
    if not settings.predictions_path.exists():
        raise NotPreparedError("No scored batch yet: score the production batch on the Production page "
                               "(or `python -m core apply`).")
    return pd.read_parquet(settings.predictions_path)
