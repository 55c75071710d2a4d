"""A drift check of a parquet file read in record batches: the same report as `check.check` on
the whole file, in bounded memory (5,000,000 rows under 1 GB).

Each record batch is validated by the dataset's rules (`batches.validate_frame`), counted
(`statistics.count_features`) and scored; only the champion's probabilities and the labels are
kept. The domain classifier's rows (`domain.batch_positions`, the same rows as for the whole
file) are read first, row group by row group, and classified in a thread while the record
batches are scored (`check.start_domain`). A file with any problem is handed to
`batches.read_batch`, which refuses it with every problem listed, before anything is written:
while a cache the check would write is missing (the training reference or its sample, the
champion's model copy, a regression champion's loss models), a first pass validates the whole
file before it is built.

A regression champion's label-free estimate needs each row's features (`task_health.row_figures`):
its loss models are loaded before the pass and each record batch is estimated as it is scored.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import batches
from core.monitoring import check as checks
from core.monitoring import domain as domain_classifier
from core.modeling.model_version import ModelVersion
from core.monitoring import reference, statistics
from core.monitoring.champion import model_cache_path
from core.monitoring.drift_report import DriftReport
from core.progress import ProgressFn, Stopwatch, report

CHUNK_ROWS = 500_000


def _columns(path: Path, settings: Settings) -> list[str] | None:
    """The wanted columns of a readable parquet file without duplicates (None: let
    `batches.read_batch` say what is wrong)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = list(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError):
        return None
    wanted = (*settings.features, settings.target)
    present = [c for c in names if c in wanted]
    return present if len(present) == len(set(present)) else None


def streamable(path: Path, settings: Settings) -> bool:
    """A parquet file within the upload limit, with its columns each once."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        size = path.stat().st_size
    except OSError:
        return False
    return magic == b"PAR1" and size <= settings.max_upload_mb * 1_000_000 and _columns(path, settings) is not None


def _sampled_rows(pf: object, positions: np.ndarray, settings: Settings) -> pd.DataFrame | None:
    """The validated feature rows at `positions` (increasing), read row group by row group (one
    in memory at a time); None when they break a rule (the pass over the file then says how)."""
    meta = pf.metadata  # type: ignore[attr-defined]
    parts, start = [], 0
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        inside = positions[(positions >= start) & (positions < start + n)] - start
        if len(inside):
            group = pf.read_row_group(i, columns=list(settings.features))  # type: ignore[attr-defined]
            parts.append(group.take(inside).to_pandas())
        start += n
    if not parts:
        return None
    frame, problems = batches.validate_frame(pd.concat(parts, ignore_index=True), settings.dataset)
    return None if problems or len(frame) != len(positions) else frame[list(settings.features)]


def _refuse(path: Path, settings: Settings) -> NoReturn:
    """Refuse a file a record batch of which broke a rule (or that has no rows): `read_batch`
    raises `BatchError` with every problem of the file."""
    batches.read_batch(path, settings)
    raise AssertionError(f"read_batch accepted {path.name}, whose record batches broke a rule")


def _validate_file(pf: object, path: Path, settings: Settings, columns: list[str], chunk_rows: int,
                   on_progress: ProgressFn = None) -> None:
    """Validate the whole file record batch by record batch, keeping nothing; raises `BatchError`
    (`_refuse`) at the first that breaks a rule, or for a file without rows. Writes nothing."""
    n, total = 0, pf.metadata.num_rows  # type: ignore[attr-defined]
    for chunk in pf.iter_batches(batch_size=chunk_rows, columns=columns):  # type: ignore[attr-defined]
        frame, problems = batches.validate_frame(chunk.to_pandas(), settings.dataset)
        if problems or len(frame) != chunk.num_rows:
            _refuse(path, settings)
        n += chunk.num_rows
        report(on_progress, 0.05 * n / max(total, 1), f"Validating rows {n:,} of {total:,}")
    if n == 0:
        _refuse(path, settings)


def _cached(settings: Settings, model: ModelVersion) -> tuple[reference.TrainingReference | None, bool]:
    """The stored training reference when current (None: a check would write it or its sample)
    and whether the model copy of version `model` is there (False: a check would write it). Reads only."""
    cached = model_cache_path(settings, model.version, model.run_id).exists()
    return reference.stored_reference(settings), cached


def check_file(path: Path, settings: Settings, *, model: ModelVersion, source: str = "cli", store: bool = True,
               log: bool | str = True,
               domain: bool = True, chunk_rows: int = CHUNK_ROWS, on_progress: ProgressFn = None) -> DriftReport:
    """Check a parquet batch file (`streamable`) record batch by record batch.

    Raises `BatchError` (from `batches.read_batch`) when a record batch breaks a rule; then
    nothing was written: no cache is built (`_cached`) before the whole file is found valid.
    """
    import pyarrow.parquet as pq

    from core.monitoring import health, monitors, outputs, task_health

    clock = Stopwatch()
    champ, settings = model, model.scoped(settings)
    path = Path(path)
    t, spec = settings.drift, settings.dataset
    pf = pq.ParquetFile(path)
    total = pf.metadata.num_rows
    columns = _columns(path, settings) or []
    ref, model_cached = _cached(settings, champ)
    mon = monitors.monitor_of(champ)
    # regression: the loss models are read (or built) before the pass, so built only once the file is valid
    task_cached = not mon.needs_rows or task_health.reference_path(settings, champ.version).exists()
    if ref is None or not model_cached or not task_cached:  # a cache to build: not before the file is found valid
        report(on_progress, 0.0, "Validating the batch")
        _validate_file(pf, path, settings, columns, chunk_rows, on_progress)
    report(on_progress, 0.05, "Loading the champion")
    version, model = checks.champion_model(settings, champ)
    report(on_progress, 0.1, "Loading the training reference")
    ref = ref or reference.load_reference(settings)
    positions = domain_classifier.batch_positions(total, t.domain_sample, settings.seed) if domain else None
    future = None
    if positions is not None:  # the sampled rows first: the domain classifier runs beside the scoring
        sample = _sampled_rows(pf, positions, settings)
        if sample is not None:
            future = checks.start_domain(settings, ref, sample)
            positions = None
    mref = mon.reference(settings, model, champ) if mon.needs_rows else None  # regression: per-row estimates
    counted = None
    proba, labels, rows, figures = [], [], [], []
    offset = 0
    for chunk in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        frame, problems = batches.validate_frame(chunk.to_pandas(), spec)
        if problems or len(frame) != chunk.num_rows:
            _refuse(path, settings)
        counted = statistics.count_features(frame, ref, settings.features, counted)
        out = outputs.model_outputs(model, frame, settings.features, spec.categorical_features, champ)
        proba.append(out)
        if mref is not None:
            figures.append(mon.rows(mref, frame, out))
        if settings.target in frame:
            labels.append(frame[settings.target].to_numpy(dtype="float64"))
        if positions is not None:
            inside = positions[(positions >= offset) & (positions < offset + len(frame))] - offset
            rows.append(frame.iloc[inside][list(settings.features)])
        offset += len(frame)
        report(on_progress, 0.1 + 0.4 * offset / max(total, 1),
               f"Counting and scoring rows {offset:,} of {total:,}")
    if counted is None:  # an empty file: refused with its message
        _refuse(path, settings)
    scores = np.concatenate(proba)
    y = np.concatenate(labels) if labels else None
    del proba, labels  # the chunks' copies: 80 MB at 5,000,000 rows
    n_labelled = int(np.isfinite(y).sum()) if y is not None else 0
    data = path.read_bytes()
    batch = batches.Batch(frame=pd.DataFrame(), name=path.name, digest=hashlib.sha256(data).hexdigest(),
                          n_rows=total, n_labelled=n_labelled, size_bytes=len(data), raw=data, suffix=".parquet")
    measured = checks.Measured(counted=counted, n_rows=total, proba=scores,
                               labels=y if n_labelled else None,
                               domain_rows=pd.concat(rows, ignore_index=True) if positions is not None else None,
                               domain_future=future, reference=mref,
                               rows=np.concatenate(figures) if figures else None)
    return checks.conclude(batch, measured, settings, ref, champ, model, clock, source=source, store=store,
                           log=log, on_progress=on_progress)
