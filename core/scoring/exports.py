"""Scored rows as files to download: CSV and parquet bytes of a frame, and of the last scored
batch (`prod_predictions.parquet`, the file `apply` and the Production page write)."""
from __future__ import annotations

import io
from typing import Literal

import pandas as pd

from core.config import Settings

Format = Literal["csv", "parquet"]
MIME: dict[str, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV with a header row and no index."""
    return frame.to_csv(index=False).encode("utf-8")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as a parquet file (no index), read back by `pd.read_parquet` with the same columns and types."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def scored_rows(settings: Settings, fmt: Format) -> bytes:
    """The last scored batch, every row and column (features, label when known, the probability,
    the class at the version's threshold, the scoring version), as `fmt` bytes.

    Raises `NotPreparedError` when nothing was scored yet."""
    from core.scoring.local import load_scored

    if fmt not in MIME:
        raise ValueError(f"format must be one of {sorted(MIME)}, not {fmt!r}")
    frame = load_scored(settings)
    return csv_bytes(frame) if fmt == "csv" else parquet_bytes(frame)


def file_name(settings: Settings, fmt: Format) -> str:
    """The download's file name: the scored batch's own name with the format's suffix."""
    return f"{settings.predictions_path.stem}.{fmt}"
