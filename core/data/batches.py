"""Reading and validating a batch (Drift page, `python -m core drift`, `apply --batch`, retraining).

A batch is a parquet or CSV file in the raw format (all columns) or with just the feature
columns, with or without the target column. `read_batch` returns the features as doubles and
the labels when present, or raises one `BatchError` listing every problem found, each with its
column and the number of rows affected. `from_frame` does the same for an in-memory frame (the
production split, the inference log).

The domain rules are the dataset definition's rule table (`core/data/rules.py`), run as a
pandera schema: the same rules that validate a single request.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import pandas as pd

from core.config import Settings
from core.errors import WorkbenchError

Source = Union[str, Path, bytes, BinaryIO]


class BatchError(WorkbenchError):
    """An uploaded batch was refused; `problems` lists every problem (one line each)."""

    def __init__(self, problems: list[str], name: str = "the batch") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(
            f"{name} was refused ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}); "
            f"nothing was stored. Fix the file and upload it again:\n{lines}"
        )


@dataclass(frozen=True)
class Batch:
    """An accepted batch: features as doubles (plus the labels when present) and its digest."""

    frame: pd.DataFrame = field(repr=False)
    name: str
    digest: str
    n_rows: int
    n_labelled: int
    size_bytes: int
    raw: bytes | None = field(default=None, repr=False)  # the file's bytes, stored as they came
    suffix: str = ".parquet"

    @property
    def has_labels(self) -> bool:
        return self.n_labelled > 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "n_rows": self.n_rows,
                "n_labelled": self.n_labelled, "size_bytes": self.size_bytes}


def _read_bytes(source: Source, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes and its name; refuses a file over `max_bytes` before reading it all."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise BatchError([f"file: {path} does not exist or is not a file"], label)
        size = path.stat().st_size
        if size > max_bytes:
            raise BatchError([_too_big(size, max_bytes)], label)
        return path.read_bytes(), label
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        label = name or "the batch"
    else:
        label = name or str(getattr(source, "name", "") or "the batch")
        size = getattr(source, "size", None)
        if isinstance(size, int) and size > max_bytes:
            raise BatchError([_too_big(size, max_bytes)], label)
        getvalue = getattr(source, "getvalue", None)
        data = getvalue() if callable(getvalue) else source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BatchError([_too_big(len(data), max_bytes)], label)
    return data, label


def _too_big(size: int, max_bytes: int) -> str:
    return (f"file: {size / 1e6:,.1f} MB is over the {max_bytes / 1e6:,.0f} MB limit; "
            f"split it into smaller batches")


def _parse(data: bytes, label: str, wanted: tuple[str, ...]) -> pd.DataFrame:
    """Parquet (by magic bytes) or CSV, keeping only the wanted columns that are present."""
    if not data:
        raise BatchError(["file: the file is empty (0 bytes)"], label)
    is_parquet = data[:4] == b"PAR1" or label.lower().endswith(".parquet")
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(io.BytesIO(data))
            cols = [c for c in pf.schema_arrow.names if c in wanted]
            return pf.read(columns=cols).to_pandas()
        return pd.read_csv(io.BytesIO(data), usecols=lambda c: c in wanted, dtype=str,
                           keep_default_na=False, na_values=[""])
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        kind = "parquet" if is_parquet else "CSV"
        raise BatchError([f"file: not a readable {kind} file ({type(err).__name__}: {err}); "
                          f"upload a parquet or CSV file"], label) from err


def _numeric(col: pd.Series) -> tuple[np.ndarray, int]:
    """The column as doubles and the number of non-empty values that are not numbers."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype="float64"), 0
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiu":
        return col.to_numpy(dtype="float64", copy=False), 0  # no copy for doubles
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype="float64", na_value=np.nan), 0
    text = col.astype("string").str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    non_numeric = int((np.isnan(values) & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()).sum())
    return values, non_numeric


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def validate_frame(raw: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, list[str]]:
    """Check a parsed frame against the dataset definition `spec`; return (features as doubles
    + target, problems).

    Problems are strings "<column>: <what> in <n> rows"; the frame is only meaningful when
    there are none. The target is optional; its missing values mean unlabelled rows.
    """
    features, target = spec.features, spec.target.column
    problems: list[str] = []
    missing = [c for c in features if c not in raw.columns]
    for c in missing:
        problems.append(f"{c}: column is missing (the batch needs {', '.join(features)})")
    if len(raw) == 0:
        problems.append("batch: there are no rows (0 rows)")
    out: dict[str, np.ndarray] = {}
    not_numeric: dict[str, int] = {}
    for c in features:
        if c in missing:
            continue
        values, non_numeric = _numeric(raw[c])
        if non_numeric:
            problems.append(f"{c}: non-numeric values in {_rows(non_numeric)}")
            not_numeric[c] = non_numeric
        out[c] = values
    frame = pd.DataFrame(out)
    problems += spec.rules.frame_problems(frame, not_numeric)
    if target in raw.columns:
        # the model's labels: 1 = the positive class, 0 = the negative one, NaN = unlabelled
        y, bad = spec.target.encode(raw[target])
        if bad:
            problems.append(f"{target}: values other than {spec.target.negative}, {spec.target.positive} or empty "
                            f"in {_rows(bad)} (empty means unlabelled)")
        frame[target] = y
    return frame, problems


def read_batch(source: Source, settings: Settings, name: str | None = None) -> Batch:
    """Read and validate a batch from a path, bytes or an uploaded file object.

    Raises `BatchError` listing every problem: unreadable file, over the size limit
    (`settings.max_upload_mb`), empty, missing columns, non-numeric, NaN or infinite values,
    values outside a feature's domain (the definition's rule table), labels other than the target's two values.
    """
    max_bytes = int(settings.max_upload_mb * 1_000_000)
    data, label = _read_bytes(source, name, max_bytes)
    raw = _parse(data, label, (*settings.features, settings.target))
    frame, problems = validate_frame(raw, settings.dataset)
    if problems:
        raise BatchError(problems, label)
    n_labelled = int(np.isfinite(frame[settings.target]).sum()) if settings.target in frame else 0
    if settings.target in frame and n_labelled == 0:
        frame = frame.drop(columns=[settings.target])
    return Batch(
        frame=frame,
        name=label,
        digest=hashlib.sha256(data).hexdigest(),
        n_rows=len(frame),
        n_labelled=n_labelled,
        size_bytes=len(data),
        raw=data,
        suffix=".parquet" if data[:4] == b"PAR1" else ".csv",
    )


def from_frame(df: pd.DataFrame, settings: Settings, name: str) -> Batch:
    """Validate an in-memory frame (e.g. the inference log) as a batch; digest of its values."""
    frame, problems = validate_frame(df, settings.dataset)
    if problems:
        raise BatchError(problems, name)
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    n_labelled = int(np.isfinite(frame[settings.target]).sum()) if settings.target in frame else 0
    if settings.target in frame and n_labelled == 0:
        frame = frame.drop(columns=[settings.target])
    return Batch(frame=frame, name=name, digest=digest, n_rows=len(frame), n_labelled=n_labelled,
                 size_bytes=int(frame.memory_usage(index=False).sum()))
