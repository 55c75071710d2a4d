"""Accepted production batches: stored under `data/08_batches/` with a timestamp and digest.

A stored batch is never overwritten: each file is created exclusively, named
`<UTC timestamp>_<first 12 hex digits of its SHA-256>.<parquet|csv>`, with a JSON sidecar
(original name, rows, labels, digest). Uploading the same bytes again reuses the stored file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.data.batches import Batch
from core.files import atomic_write, timestamp


@dataclass(frozen=True)
class BatchRecord:
    """A stored batch."""

    path: str
    name: str
    digest: str
    n_rows: int
    n_labelled: int
    stored_at: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def find(settings: Settings, digest: str) -> BatchRecord | None:
    """The stored batch with this digest, or None."""
    for record in list_batches(settings):
        if record.digest == digest:
            return record
    return None


def store(batch: Batch, settings: Settings) -> BatchRecord:
    """Store an accepted batch (its original bytes, or parquet for an in-memory frame).

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
            batch.frame.to_parquet(fh, index=False)
    record = BatchRecord(path=str(path), name=batch.name, digest=batch.digest, n_rows=batch.n_rows,
                         n_labelled=batch.n_labelled, stored_at=stamp, size_bytes=path.stat().st_size)
    atomic_write(_sidecar(path), lambda tmp: tmp.write_text(json.dumps(record.to_dict())))
    return record


def list_batches(settings: Settings) -> list[BatchRecord]:
    """Stored batches, newest first."""
    if not settings.batches_dir.exists():
        return []
    records = []
    for meta in settings.batches_dir.glob("*.json"):
        try:
            records.append(BatchRecord(**json.loads(meta.read_text())))
        except (ValueError, TypeError):
            continue  # a sidecar being written or from elsewhere: not a batch of ours
    return sorted(records, key=lambda r: r.stored_at, reverse=True)
