"""Reading and validating a batch (Drift page, `python -m core drift`, `apply --batch`, retraining).

A batch is a parquet or CSV file in the raw format (all columns) or with just the feature
columns, with or without the target column. `read_batch` returns the features as doubles and
the labels when present, or raises one `BatchError` listing every problem found, each with its
column and the number of rows affected. `from_frame` does the same for an in-memory frame (the
production split, the inference log).

What cannot be read is refused with the real reason: a file that is not CSV or parquet at all
(an image, an archive, binary data, text that is not UTF-8), duplicate column names, rows with
more or fewer fields than the header (their line numbers). A CSV separated by semicolons, tabs
or pipes is read as such (the header says which: the separator that finds the most of the
batch's columns, else `csv.Sniffer`'s guess), and a refusal says how it was read.

The domain rules are the dataset definition's rule table (`core/rules.py`), run as a
pandera schema: the same rules that validate a single request. On top of them a batch is
refused for finite values the model cannot take (beyond float32's range: scikit-learn's trees
cast their input to float32) and for true/false columns given for a feature that is not binary.

With `drop_invalid=True` the rows breaking a row-level rule (non-numeric, empty, infinite,
out-of-domain or too large values in a feature, a label other than the target's two values)
are dropped instead, and the accepted `Batch` says how many and why (`n_dropped`, `dropped`);
file-level problems (unreadable, missing or duplicate columns, no rows left) still refuse it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.config import Settings
from core.data.batch_files import (  # noqa: F401
    BatchError,
    Source,
    _duplicates,
    _header,
    _not_csv,
    _parse,
    _parse_csv,
    _parse_parquet,
    _ragged_lines,
    _ragged_lines_csv,
    _read_bytes,
    _rows,
    _separator,
    _too_big,
)
from core.data.columns import as_text, yes_no_numbers

#: the largest magnitude the model takes: scikit-learn's trees cast their input to float32
MODEL_MAX = float(np.finfo(np.float32).max)
#: separators tried on a CSV's header, in order of preference, and their names




@dataclass(frozen=True)
class Batch:
    """An accepted batch: features as doubles (plus the labels when present) and its digest.

    `n_dropped` rows were left out by `drop_invalid=True`; `dropped` counts them per reason
    ("<column>: <what>"; a row breaking two rules counts under both). When rows were dropped,
    `raw` is the kept rows as parquet (what is stored, so that it reads back the same) and the
    digest is that file's.
    """

    frame: pd.DataFrame = field(repr=False)
    name: str
    digest: str
    n_rows: int
    n_labelled: int
    size_bytes: int
    raw: bytes | None = field(default=None, repr=False)  # the file's bytes, stored as they came
    suffix: str = ".parquet"
    n_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    # when each row happened, as the file or the log holds it (the definition's `time_column`, or
    # the inference log's request times); None when unknown. Read only to chunk a check by period
    times: pd.Series | None = field(default=None, repr=False)

    @property
    def has_labels(self) -> bool:
        return self.n_labelled > 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "n_rows": self.n_rows,
                "n_labelled": self.n_labelled, "size_bytes": self.size_bytes,
                "n_dropped": self.n_dropped, "dropped": dict(self.dropped)}


def dropped_text(batch: dict[str, Any]) -> str:
    """The rows a batch (`Batch.to_dict()`) left out, in words: "" when none."""
    n = int(batch.get("n_dropped") or 0)
    if not n:
        return ""
    why = "; ".join(f"{reason} in {_rows(k)}" for reason, k in (batch.get("dropped") or {}).items())
    return (f"{_rows(n)} dropped as invalid, {batch['n_rows']:,} kept ({why}). The stored batch holds "
            f"only the kept rows.")
























# --------------------------------------------------------------------------- validating
def _numeric(col: pd.Series, words: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The column as doubles and where its non-empty values are not numbers (a bool array);
    with `words` (a binary feature), yes/no, true/false or y/n words read as 1 and 0."""
    none = np.zeros(len(col), dtype=bool)
    if _is_bool(col):
        return col.astype(object).where(col.notna(), np.nan).to_numpy(dtype="float64"), none
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiu":
        return col.to_numpy(dtype="float64", copy=False), none  # no copy for doubles
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(col.dtype):
        return col.to_numpy(dtype="float64", na_value=np.nan), none
    text = col.astype("string").str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    given = (text.notna() & (text != "")).to_numpy(dtype=bool, na_value=False)
    bad = np.isnan(values) & given
    if words and bad.any() and (read := yes_no_numbers(col.where(given))) is not None:
        return read.to_numpy(dtype="float64"), none  # yes/no words: a binary feature's 1 and 0
    return values, bad


def _is_bool(col: pd.Series) -> bool:
    """True for a true/false column (a bool dtype, or objects that are all True/False/missing)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return True
    return col.dtype == object and col.notna().any() and pd.api.types.infer_dtype(col, skipna=True) == "boolean"


@dataclass(frozen=True)
class _Checked:
    frame: pd.DataFrame
    problems: list[str]
    keep: np.ndarray | None = None  # the kept rows when some were dropped
    dropped: dict[str, int] = field(default_factory=dict)


def _labels_in_words(target: Any) -> str:
    """What a label other than the target's is, in words: binary "values other than 0, 1",
    multiclass "values other than its classes (a, b, c)", regression "values that are not finite
    numbers"."""
    if target.task == "multiclass":
        shown = ", ".join(str(v) for v in target.classes[:10]) + (", ..." if len(target.classes) > 10 else "")
        return f"values other than its classes ({shown})"
    if target.task == "regression":
        return "values that are not finite numbers"
    return f"values other than {target.negative}, {target.positive}"


def _encoded_target(target: Any) -> Any:
    """The target whose values are the model's labels (a prepared split's): binary 1 / 0,
    multiclass the class positions, regression the numbers."""
    if target.task == "multiclass":
        return dataclasses.replace(target, classes=tuple(range(len(target.classes))))
    return dataclasses.replace(target, positive=1, negative=0)


def _check(raw: pd.DataFrame, spec: Any, drop_invalid: bool, encoded_labels: bool = False) -> _Checked:
    """Check a parsed frame against the definition; drop the rows breaking a row-level rule when
    `drop_invalid` (file-level problems are always problems)."""
    features, target = spec.features, spec.target.column
    fatal = _duplicates(list(raw.columns), (*features, target))
    if fatal:
        return _Checked(pd.DataFrame(), fatal)
    fatal += [f"{c}: column is missing (the batch needs {', '.join(features)})" for c in features
              if c not in raw.columns]
    if len(raw) == 0:
        fatal.append("batch: there are no rows (0 rows)")
    rows: list[str] = []   # row-level problems, as the strict reader reports them
    masks: dict[str, np.ndarray] = {}  # the rows breaking each row-level rule
    out: dict[str, np.ndarray] = {}
    not_numeric: dict[str, int] = {}
    by_name = spec.rules.by_name
    for c in features:
        if c not in raw.columns:
            continue
        col = raw[c]
        if by_name[c].categorical:
            # text categories; a category never seen in training is accepted here (the model
            # scores it as unknown, the drift check names it with its share)
            values = as_text(col)
            out[c] = values
            if drop_invalid and not by_name[c].nullable:
                empty = values.isna().to_numpy()
                if empty.any():
                    masks[f"{c}: empty values"] = empty
            continue
        if _is_bool(col) and spec.feature(c).kind != "binary" and len(raw):
            n = int(col.notna().sum())
            fatal.append(f"{c}: true/false values in {_rows(n)} ({c} is not a yes/no feature: "
                         f"it must be {by_name[c].describe()})")
            continue
        values, text = _numeric(col, words=spec.feature(c).kind == "binary")
        if text.any():
            not_numeric[c] = int(text.sum())
            rows.append(f"{c}: non-numeric values in {_rows(not_numeric[c])}")
            masks[f"{c}: non-numeric values"] = text
        out[c] = values
        masks.update(_rule_masks(by_name[c], values, text, every=drop_invalid))
    frame = pd.DataFrame(out)
    rows += spec.rules.frame_problems(frame, not_numeric, allow_unseen=True)
    for c, values in out.items():
        if by_name[c].categorical:
            continue
        large = masks.get(f"{c}: values too large for the model")
        if large is not None:
            rows.append(f"{c}: values too large for the model in {_rows(int(large.sum()))} "
                        f"(beyond ±{MODEL_MAX:.3g}, the range of the model's 32-bit floats)")
    if target in raw.columns:
        # the model's labels: 1 = the positive class, 0 = the negative one, NaN = unlabelled
        # (a prepared split already holds them as 1 / 0: `encoded_labels`)
        # (multiclass: the class positions 0..k-1; regression: the numbers themselves)
        target_spec = _encoded_target(spec.target) if encoded_labels else spec.target
        y, bad = target_spec.encode(raw[target])
        if bad:
            allowed = _labels_in_words(target_spec)
            rows.append(f"{target}: {allowed} or empty in {_rows(bad)} (empty means unlabelled)")
            masks[f"{target}: {allowed}"] = np.isnan(y) & ~_missing(raw[target])
        frame[target] = y
    if fatal or not drop_invalid:
        return _Checked(frame, fatal + rows)
    dropped = {reason: int(m.sum()) for reason, m in masks.items() if m.any()}
    if not dropped:
        return _Checked(frame, [])
    keep = ~np.logical_or.reduce(list(masks.values()))
    if not keep.any():
        reasons = "; ".join(f"{r} in {_rows(k)}" for r, k in dropped.items())
        return _Checked(frame, [f"batch: no valid rows left, every one of the {_rows(len(keep))} breaks a rule "
                                f"({reasons})"])
    kept = frame.loc[keep].reset_index(drop=True)
    return _Checked(kept, spec.rules.frame_problems(kept.loc[:, list(out)], allow_unseen=True), keep, dropped)


def _rule_masks(rule: Any, values: np.ndarray, text: np.ndarray, every: bool) -> dict[str, np.ndarray]:
    """The rows of one feature breaking its rule, per kind (the kinds `frame_problems` reports,
    and values too large for the model); only the latter unless `every`."""
    finite = np.isfinite(values)
    inside = rule.in_domain(values)
    with np.errstate(invalid="ignore"):
        found = {f"{rule.name}: values too large for the model": finite & inside & (np.abs(values) > MODEL_MAX)}
    if every:
        found.update({
            f"{rule.name}: empty (NaN) values": np.isnan(values) & ~text & (not rule.nullable),
            f"{rule.name}: infinite values": np.isinf(values),
            f"{rule.name}: out-of-domain values": finite & ~inside,
        })
    return {k: m for k, m in found.items() if m.any()}


def _missing(labels: pd.Series) -> np.ndarray:
    """Where a label is missing (an unlabelled row), as `Target.encode` counts it."""
    s = labels.reset_index(drop=True)
    return (s.isna() | (s.astype("string").str.strip() == "")).to_numpy(dtype=bool, na_value=True)


def validate_frame(raw: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, list[str]]:
    """Check a parsed frame against the dataset definition `spec`; return (features as doubles
    + target, problems).

    Problems are strings "<column>: <what> in <n> rows"; the frame is only meaningful when
    there are none. The target is optional; its missing values mean unlabelled rows.
    """
    checked = _check(raw, spec, drop_invalid=False)
    return checked.frame, checked.problems


def _labelled(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """The frame (without the target column when no row is labelled) and its labelled rows."""
    n_labelled = int(np.isfinite(frame[target]).sum()) if target in frame else 0
    if target in frame and n_labelled == 0:
        frame = frame.drop(columns=[target])
    return frame, n_labelled


def read_batch(source: Source, settings: Settings, name: str | None = None, *,
               drop_invalid: bool = False) -> Batch:
    """Read and validate a batch from a path, bytes or an uploaded file object.

    Raises `BatchError` listing every problem: unreadable file (not CSV or parquet, not UTF-8,
    ragged CSV rows), over the size limit (`settings.max_upload_mb`), empty, missing or
    duplicate columns, non-numeric, NaN, infinite or too large values, true/false values for a
    feature that is not binary, values outside a feature's domain (the definition's rule
    table), labels other than the target's two values. With `drop_invalid=True` the rows
    breaking a row-level rule are dropped instead (`Batch.n_dropped`, `Batch.dropped`).
    """
    max_bytes = int(settings.max_upload_mb * 1_000_000)
    data, label = _read_bytes(source, name, max_bytes)
    time_column = settings.dataset.time_column
    raw, note = _parse(data, label, (*settings.features, settings.target, *([time_column] if time_column else [])))
    checked = _check(raw, settings.dataset, drop_invalid)
    if checked.problems:
        raise BatchError(checked.problems, label, note)
    stored, suffix = data, ".parquet" if data[:4] == b"PAR1" else ".csv"
    if checked.keep is not None:  # store the kept rows, so that the stored file reads back the same
        buf = io.BytesIO()
        raw.loc[checked.keep].to_parquet(buf, index=False)
        stored, suffix = buf.getvalue(), ".parquet"
    frame, n_labelled = _labelled(checked.frame, settings.target)
    return Batch(
        frame=frame,
        name=label,
        digest=hashlib.sha256(stored).hexdigest(),
        n_rows=len(frame),
        n_labelled=n_labelled,
        size_bytes=len(data),
        raw=stored,
        suffix=suffix,
        n_dropped=0 if checked.keep is None else int((~checked.keep).sum()),
        dropped=checked.dropped,
        times=None if time_column not in raw.columns else (
            raw[time_column] if checked.keep is None else raw[time_column][checked.keep]).reset_index(drop=True),
    )


def from_frame(df: pd.DataFrame, settings: Settings, name: str, *, drop_invalid: bool = False,
               encoded_labels: bool = False) -> Batch:
    """Validate an in-memory frame (e.g. the inference log) as a batch; digest of its values.

    `drop_invalid` as for `read_batch`; `encoded_labels`: the target already holds the model's
    labels (1 / 0, as in the prepared splits), not the definition's values.
    """
    checked = _check(df, settings.dataset, drop_invalid, encoded_labels)
    if checked.problems:
        raise BatchError(checked.problems, name)
    digest = hashlib.sha256(pd.util.hash_pandas_object(checked.frame, index=False).to_numpy().tobytes()).hexdigest()
    frame, n_labelled = _labelled(checked.frame, settings.target)
    return Batch(frame=frame, name=name, digest=digest, n_rows=len(frame), n_labelled=n_labelled,
                 size_bytes=int(frame.memory_usage(index=False).sum()),
                 n_dropped=0 if checked.keep is None else int((~checked.keep).sum()), dropped=checked.dropped)
