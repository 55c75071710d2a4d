"""The inference log: one row per single request, in SQLite (safe for concurrent appends).

Written by the Serve page and `python -m core predict`; read by the drift monitor as a batch
(`read_last`). Its table has one column per feature of the dataset definition, the positive
class's probability (`spec.proba_column`, e.g. `proba_made`), the class, the threshold, the
model version, the latency, the source and the time. A log whose columns no longer match the
definition is kept under a timestamped name and a new one is started.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from core.config import Settings
from core.files import keep_previous

TABLE = "requests"
# columns after the features, in order; "{proba}" is the definition's probability column
_TAIL = ("{proba}", "label", "threshold", "model_version", "latency_ms", "source")


def _quote(name: str) -> str:
    """An SQL identifier (any column name of the definition is safe inside double quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def columns(spec: Any) -> list[str]:
    """The table's columns for a dataset definition (without `id`)."""
    return ["timestamp", *spec.features, *(c.format(proba=spec.proba_column) for c in _TAIL)]


def _schema(spec: Any) -> str:
    features = ", ".join(f"{_quote(f.name)} {'TEXT' if f.kind == 'categorical' else 'REAL'}"
                         f"{'' if f.nullable else ' NOT NULL'}" for f in spec.features_spec)
    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"timestamp TEXT NOT NULL, {features}, {_quote(spec.proba_column)} REAL NOT NULL, "
            "label INTEGER NOT NULL, threshold REAL NOT NULL, model_version TEXT, latency_ms REAL NOT NULL, "
            "source TEXT NOT NULL)")


def _matches(con: sqlite3.Connection, spec: Any) -> bool:
    """True when the log open on `con` has the columns the definition asks for."""
    found = {row[1] for row in con.execute(f"PRAGMA table_info({TABLE})")}
    return set(columns(spec)) <= found


def _create(path: Path, spec: Any) -> None:
    """Create the log once, complete (WAL journaling, which the file keeps, and the table), then
    move it into place: concurrent first writers never see a half-made database, and none of
    them has to switch the journal mode while another holds a lock ("database is locked").
    A log of other columns (another feature set) is kept aside under a timestamped name."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.exists():
            with closing(sqlite3.connect(path, timeout=10.0)) as con:
                if _matches(con, spec):
                    return
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            keep_previous(path)
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        with closing(sqlite3.connect(tmp)) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_schema(spec))
            con.commit()
        os.replace(tmp, path)


def _connect(settings: Settings) -> sqlite3.Connection:
    """A connection with a busy timeout to the log (created, or started anew when its columns
    no longer match the definition, on first use)."""
    path = settings.inference_log_path
    if path.exists():
        con = sqlite3.connect(path, timeout=10.0)
        if _matches(con, settings.dataset):
            return con
        con.close()
    _create(path, settings.dataset)
    return sqlite3.connect(path, timeout=10.0)


def append(
    settings: Settings,
    row: Mapping[str, Any],
    proba: float,
    threshold: float,
    model_version: str | None,
    latency_ms: float,
    source: str = "serve-page",
) -> int:
    """Append one request (inputs, output, model version, latency); return the new row's id."""
    spec = settings.dataset
    values = [_stored(row[f]) for f in spec.features]
    label = int(proba >= threshold)
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    names = columns(spec)
    sql = (f"INSERT INTO {TABLE} ({', '.join(_quote(c) for c in names)}) "
           f"VALUES ({', '.join('?' for _ in names)})")
    with closing(_connect(settings)) as con, con:
        cur = con.execute(
            sql, [stamp, *values, float(proba), label, float(threshold), model_version, float(latency_ms), source])
        return int(cur.lastrowid or 0)


def _stored(value: Any) -> Any:
    """A validated value as SQLite keeps it: text as text, a missing value as NULL, else a double."""
    if isinstance(value, str):
        return value
    if value is None or value != value:  # NaN
        return None
    return float(value)


def count(settings: Settings) -> int:
    """Number of logged requests (0 when the log does not exist yet)."""
    if not settings.inference_log_path.exists():
        return 0
    with closing(_connect(settings)) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])


def read_last(settings: Settings, n: int = 1000) -> pd.DataFrame:
    """The last `n` requests, oldest first: `id`, `timestamp` (UTC datetimes), the feature
    columns, the probability column, `label`, `threshold`, `model_version`, `latency_ms` and
    `source`. An empty frame with those columns when nothing was logged yet.
    """
    names = ["id", *columns(settings.dataset)]
    if not settings.inference_log_path.exists():
        text = set(settings.dataset.categorical_features) | {"source", "model_version"}
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in text else "float64") for c in names})
        empty["timestamp"] = pd.to_datetime(empty["timestamp"], utc=True)
        return empty
    with closing(_connect(settings)) as con:
        df = pd.read_sql_query(
            f"SELECT {', '.join(_quote(c) for c in names)} FROM {TABLE} ORDER BY id DESC LIMIT ?", con,
            params=(int(n),))
    df = df.iloc[::-1].reset_index(drop=True)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    return df
