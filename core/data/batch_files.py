"""Reading a batch file: its bytes (with the size limit), then parquet or CSV (the separator found
from the header, ragged rows and non-CSV files named), refusing what cannot be read with the real
reason in a `BatchError`.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import pandas as pd

from core.errors import WorkbenchError

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: magic bytes of files that are often uploaded by mistake instead of a CSV
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one: "
                                                      "save it as CSV)"),
          (b"\x1f\x8b", "a gzip archive (unpack it first)"), (b"\xd0\xcf\x11\xe0", "an old Excel/Office file"))
_SHOWN_LINES = 5


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


Source = Union[str, Path, bytes, BinaryIO]


class BatchError(WorkbenchError):
    """An uploaded batch was refused; `problems` lists every problem (one line each)."""

    def __init__(self, problems: list[str], name: str = "the batch", note: str = "",
                 fix: str = "Fix the file and upload it again") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"{name} was refused ({n} problem{'s' if n != 1 else ''}{'; ' + note if note else ''}); "
            f"nothing was stored. {fix}:\n{lines}"
        )


def _read_bytes(source: Source, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes and its name; refuses a file over `max_bytes` before reading it all."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise BatchError([f"file: {path} does not exist or is not a file"], label)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise BatchError([_too_big(size, max_bytes)], label)
            return path.read_bytes(), label
        except OSError as err:
            raise BatchError([f"file: {path} cannot be read ({err.strerror or err}); check its permissions"],
                             label) from err
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


# --------------------------------------------------------------------------- parsing
def _parse(data: bytes, label: str, wanted: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """Parquet (by magic bytes) or CSV, keeping only the wanted columns that are present; and a
    note on how the file was read (e.g. "read as a semicolon-separated CSV"), or "".

    Raises `BatchError` for what cannot be read: not a CSV or parquet file, duplicate wanted
    columns, ragged CSV rows.
    """
    if not data:
        raise BatchError(["file: the file is empty (0 bytes)"], label)
    if data[:4] == b"PAR1" or label.lower().endswith(".parquet"):
        return _parse_parquet(data, label, wanted), ""
    return _parse_csv(data, label, wanted)


def _duplicates(names: list[Any], wanted: tuple[str, ...]) -> list[str]:
    counts = pd.Series([n for n in names if n in wanted], dtype=object).value_counts(sort=False)
    return [f"{name}: column appears {k} times (keep one of them)" for name, k in counts.items() if k > 1]


def _parse_parquet(data: bytes, label: str, wanted: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        names = list(pf.schema_arrow.names)
        duplicated = _duplicates(names, wanted)
        if duplicated:
            raise BatchError(duplicated, label)
        return pf.read(columns=[c for c in names if c in wanted]).to_pandas()
    except (pa.ArrowException, ValueError, OSError, TypeError) as err:
        raise BatchError([f"file: not a readable parquet file ({type(err).__name__}: {err}); "
                          f"upload a parquet or CSV file"], label) from err


def _not_csv(data: bytes) -> str | None:
    """What a file that is not CSV text looks like, or None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return f"file: not a CSV file, it looks like {kind}; upload a parquet or CSV file"
    if b"\x00" in data:
        return "file: not a CSV file, it holds binary data (NUL bytes); upload a parquet or CSV file"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return (f"file: not a UTF-8 text file (byte 0x{data[err.start]:02x} at position {err.start:,} is not "
                f"UTF-8); save the CSV as UTF-8, or upload a parquet file")
    return None


def _header(sample: str, sep: str) -> list[str]:
    """The first non-blank row of `sample` split at `sep` ([] when there is none)."""
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=sep):
            if row and not (len(row) == 1 and not row[0].strip()):
                return row
    except csv.Error:
        return []
    return []


def _separator(sample: str, wanted: tuple[str, ...]) -> str:
    """The separator whose header holds the most wanted columns; without any, csv.Sniffer's guess
    (a comma when it has none)."""
    found = {sep: sum(name in wanted for name in set(_header(sample, sep))) for sep in SEPARATORS}
    best = max(found, key=lambda s: found[s])  # the first of the best: a comma on a tie
    if found[best] > 0:
        return best
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return ","


def _ragged_lines(data: bytes, sep: str) -> tuple[int, list[int]]:
    """The number of fields of the header and the line numbers (1-based) of the non-blank rows
    with more or fewer fields than it."""
    blank = b" \r" if sep == "\t" else b" \t\r"
    if b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
        return _ragged_lines_csv(data.decode("utf-8-sig"), sep, blank.decode())
    # no quotes, lines end with \n: count separators per line with numpy (fast on large files)
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.append(np.flatnonzero(arr == 10), len(arr))
    starts = np.concatenate(([0], ends[:-1] + 1))
    seps = np.diff(np.searchsorted(np.flatnonzero(arr == ord(sep)), ends), prepend=0)
    is_blank = lambda i: not data[starts[i]:ends[i]].strip(blank)  # noqa: E731
    head = next((i for i in range(len(ends)) if not is_blank(i)), None)
    if head is None:
        return 0, []
    n = int(seps[head]) + 1
    odd = np.flatnonzero(seps + 1 != n)
    return n, [int(i) + 1 for i in odd[odd > head] if not is_blank(int(i))]


def _ragged_lines_csv(text: str, sep: str, blank: str) -> tuple[int, list[int]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    n, bad, last = 0, [], 0
    for row in reader:
        first, last = last + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip(blank)):
            continue
        if not n:
            n = len(row)
        elif len(row) != n:
            bad.append(first)
    return n, bad


def _parse_csv(data: bytes, label: str, wanted: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    refused = _not_csv(data)
    if refused:
        raise BatchError([refused], label)
    sample = data[:65536].decode("utf-8-sig", errors="ignore")
    sep = _separator(sample, wanted)
    note = "" if sep == "," else f"read as a {SEPARATORS[sep]}-separated CSV"
    duplicated = _duplicates(_header(sample, sep), wanted)
    if duplicated:
        raise BatchError(duplicated, label, note)
    try:
        n_fields, ragged = _ragged_lines(data, sep)
        if ragged:
            shown = ", ".join(str(i) for i in ragged[:_SHOWN_LINES])
            more = f" and {len(ragged) - _SHOWN_LINES:,} more" if len(ragged) > _SHOWN_LINES else ""
            raise BatchError([f"file: more or fewer fields than the header's {n_fields} in {_rows(len(ragged))} "
                              f"(line{'s' if len(ragged) > 1 else ''} {shown}{more}); give every row one "
                              f"value per column"], label, note)
        header = _header(sample, sep)
        # without any wanted column, read the first one so that the rows are counted all the same
        use = (lambda c: c in wanted) if any(c in wanted for c in header) else [0] if header else None
        frame = pd.read_csv(io.BytesIO(data), sep=sep, usecols=use, dtype=str, keep_default_na=False,
                            na_values=[""], encoding="utf-8-sig")
        return frame.loc[:, [c for c in frame.columns if c in wanted]], note
    except (ValueError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise BatchError([f"file: not a readable CSV file ({type(err).__name__}: {err}); "
                          f"upload a parquet or CSV file"], label, note) from err
