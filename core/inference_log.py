"""The inference log: one row per single-shot request, in SQLite (safe for concurrent appends).

Written by the Serve page and `python -m core predict`; read by the drift monitor as a batch
(`read_last`) with the feature columns, `proba_made`, `model_version` and `timestamp`.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import pandas as pd

from core.config import FEATURES, Settings

TABLE = "requests"
_COLUMNS_SQL = ", ".join(f"{f} REAL NOT NULL" for f in FEATURES)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT NOT NULL,
    {_COLUMNS_SQL},
    proba_made REAL NOT NULL,
    label INTEGER NOT NULL,
    threshold REAL NOT NULL,
    model_version TEXT,
    latency_ms REAL NOT NULL,
    source TEXT NOT NULL
)
"""


def _create(path: Path) -> None:
    """Create the log once, complete (WAL journaling, which the file keeps, and the table), then
    move it into place: concurrent first writers never see a half-made database, and none of
    them has to switch the journal mode while another holds a lock ("database is locked")."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.exists():
            return
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        with closing(sqlite3.connect(tmp)) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)
            con.commit()
        os.replace(tmp, path)


def _connect(settings: Settings) -> sqlite3.Connection:
    """A connection with a busy timeout to the log (created on first use)."""
    if not settings.inference_log_path.exists():
        _create(settings.inference_log_path)
    return sqlite3.connect(settings.inference_log_path, timeout=10.0)


def append(
    settings: Settings,
    row: Mapping[str, float],
    proba_made: float,
    threshold: float,
    model_version: str | None,
    latency_ms: float,
    source: str = "serve-page",
) -> int:
    """Append one request (inputs, output, model version, latency); return the new row's id."""
    values = [float(row[f]) for f in FEATURES]
    label = int(proba_made >= threshold)
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    placeholders = ", ".join("?" for _ in range(len(FEATURES) + 7))
    sql = (
        f"INSERT INTO {TABLE} (timestamp, {', '.join(FEATURES)}, proba_made, label, threshold, "
        f"model_version, latency_ms, source) VALUES ({placeholders})"
    )
    with closing(_connect(settings)) as con, con:
        cur = con.execute(
            sql,
            [stamp, *values, float(proba_made), label, float(threshold), model_version, float(latency_ms), source],
        )
        return int(cur.lastrowid or 0)


def count(settings: Settings) -> int:
    """Number of logged requests (0 when the log does not exist yet)."""
    if not settings.inference_log_path.exists():
        return 0
    with closing(_connect(settings)) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])


def read_last(settings: Settings, n: int = 1000) -> pd.DataFrame:
    """The last `n` requests, oldest first: the feature columns, `proba_made`, `label`,
    `threshold`, `model_version`, `latency_ms`, `source` and `timestamp` (UTC datetimes).

    An empty frame with those columns when nothing was logged yet.
    """
    columns = ["id", "timestamp", *FEATURES, "proba_made", "label", "threshold", "model_version",
               "latency_ms", "source"]
    if not settings.inference_log_path.exists():
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        empty["timestamp"] = pd.to_datetime(empty["timestamp"], utc=True)
        return empty
    with closing(_connect(settings)) as con:
        df = pd.read_sql_query(
            f"SELECT {', '.join(columns)} FROM {TABLE} ORDER BY id DESC LIMIT ?", con, params=(int(n),)
        )
    df = df.iloc[::-1].reset_index(drop=True)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    return df
