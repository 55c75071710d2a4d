"""Accepted production batches: stored under `data/08_batches/` with a timestamp and digest.

A stored batch is never overwritten: each file is created exclusively, named
`<UTC timestamp>_<first 12 hex digits of its SHA-256>.<parquet|csv>`, with a JSON sidecar
(original name, rows, labels, digest). Uploading the same bytes again reuses the stored file.
`read_stored` reads the stored batches back, putting aside (with the reason) any that no longer
reads as a batch, so that one bad file never blocks what uses the others (retraining).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.config import Settings
from core.data.batches import Batch, BatchError, read_batch
from core.files import atomic_write, timestamp


@dataclass(frozen=True)
class BatchRecord:
    """A stored batch (`n_dropped`: invalid rows left out when it was read with `drop_invalid`)."""

    path: str
    name: str
    digest: str
    n_rows: int
    n_labelled: int
    stored_at: str
    size_bytes: int
    n_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TYPES = {"path": str, "name": str, "digest": str, "n_rows": int, "n_labelled": int, "stored_at": str,
          "size_bytes": int, "n_dropped": int}
_REQUIRED = {f.name for f in fields(BatchRecord) if f.name != "n_dropped"}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _record(meta: Path) -> BatchRecord | None:
    """The record of a sidecar, its path being the file beside it; None when it is not one of ours."""
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a sidecar being written or from elsewhere
    if not isinstance(d, dict) or not _REQUIRED <= set(d) <= set(_TYPES):
        return None
    if any(not isinstance(v, _TYPES[k]) or isinstance(v, bool) for k, v in d.items()):
        return None
    return BatchRecord(**{**d, "path": str(meta.with_name(meta.name[:-len(".json")]))})


def find(settings: Settings, digest: str) -> BatchRecord | None:
    """The stored batch with this digest, or None."""
    for record in list_batches(settings):
        if record.digest == digest:
            return record
    return None


def store(batch: Batch, settings: Settings) -> BatchRecord:
    """Store an accepted batch (its bytes, or parquet for an in-memory frame, whose labels are
    written back as the target's own values so that the file reads back the same).

    Never overwrites: the same digest stored before is returned as it is.
    """
    existing = find(settings, batch.digest)
    if existing is not None:
        return existing
    stamp = timestamp()
    suffix = batch.suffix if batch.raw is not None else ".parquet"
    path = settings.batches_dir / f"{stamp}_{batch.digest[:12]}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:  # exclusive: fails rather than overwrite
        if batch.raw is not None:
            fh.write(batch.raw)
        else:
            _as_file(batch.frame, settings).to_parquet(fh, index=False)
    record = BatchRecord(path=str(path), name=batch.name, digest=batch.digest, n_rows=batch.n_rows,
                         n_labelled=batch.n_labelled, stored_at=stamp, size_bytes=path.stat().st_size,
                         n_dropped=batch.n_dropped)
    atomic_write(_sidecar(path), lambda tmp: tmp.write_text(json.dumps(record.to_dict())))
    return record


def _as_file(frame: Any, settings: Settings) -> Any:
    """A batch's frame with its labels (the model's: binary 1.0 / 0.0, multiclass the class
    positions, regression the numbers; NaN unlabelled) as the target's values (`Target.decode`:
    a multiclass or regression batch read back the same, not as a binary one's)."""
    t = settings.dataset.target
    if t.column not in frame:
        return frame
    return frame.assign(**{t.column: t.decode(frame[t.column].to_numpy(dtype="float64")).to_numpy()})


def list_batches(settings: Settings) -> list[BatchRecord]:
    """Stored batches, newest first (sidecars that are not ours, or are being written, left out)."""
    if not settings.batches_dir.exists():
        return []
    records = [r for r in map(_record, settings.batches_dir.glob("*.json")) if r is not None]
    return sorted(records, key=lambda r: r.stored_at, reverse=True)


def read_stored(settings: Settings, labelled_only: bool = True) -> tuple[list[Batch], list[dict[str, Any]]]:
    """The stored batches read back (with labels only, by default), newest first; and a note for
    each one put aside because its file no longer reads as a batch (missing, or refused by
    today's rules): `{"name", "digest", "path", "use": "skipped", "reason"}`.
    """
    read, notes = [], []
    for record in list_batches(settings):
        if labelled_only and record.n_labelled <= 0:
            continue
        try:
            read.append(read_batch(record.path, settings, name=record.name))
        except BatchError as err:
            notes.append({"name": record.name, "digest": record.digest, "path": record.path, "use": "skipped",
                          "labelled_rows": record.n_labelled,
                          "reason": "the stored file no longer reads as a batch: " + "; ".join(err.problems)})
    return read, notes
