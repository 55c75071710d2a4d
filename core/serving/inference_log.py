"""The inference log: every scored row the model server answered, and every request, in SQLite (WAL).

Written by the model server's capture (`core/serving/capture.py`: each worker queues what it
answered and writes it every 0.25 s in one transaction, `write_captured`), whoever sent the
request; `append` writes one row itself (a server without that capture: `predict_one` falls back to it).
Read by the drift monitor as a batch (`read_last`) and by the operations view (`read_calls`).

Two tables:
- `requests`: one row per scored row (all rows of a small request, a sample of a large one):
  one column per feature of the dataset definition, the answer (`output_columns`, per task
  kind, `core/serving/answers.py`: binary the positive class's probability, e.g. `proba_made`,
  the class and the threshold; multiclass one `proba_<class>` per class and the class's
  position `label`; regression `prediction`, `prediction_lower`, `prediction_upper`), the model
  version, the server's latency of the request, the source and the time;
- `calls`: one row per request to /invocations: time, request id, model version, HTTP status,
  outcome (`ok` or the kind of refusal), rows sent and rows logged (`first_row_id` onwards in
  `requests`), the server's latency, source, worker and content type.

Retention (`prune`): the oldest rows beyond a row count or an age are deleted; a reader (a drift
check) reads in one transaction of its own, a snapshot that a deletion in WAL mode does not change.
A log whose columns no longer match the definition is kept under a timestamped name and a new
one is started.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.config import Settings
from core.files import keep_previous
from core.serving import answers

TABLE = "requests"
CALLS = "calls"
# one row per request; `first_row_id`: the id in `requests` of its first logged row
CALL_COLUMNS = ("timestamp", "request_id", "model_version", "status", "outcome", "n_rows", "n_logged",
                "first_row_id", "latency_ms", "source", "worker", "content_type")
_CALLS_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {CALLS} (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, "
                 "request_id TEXT, model_version TEXT, status INTEGER NOT NULL, outcome TEXT NOT NULL, "
                 "n_rows INTEGER NOT NULL, n_logged INTEGER NOT NULL, first_row_id INTEGER, latency_ms REAL NOT NULL, "
                 "source TEXT NOT NULL, worker INTEGER, content_type TEXT)")
_INDEXES = (f"CREATE INDEX IF NOT EXISTS calls_time ON {CALLS} (timestamp)",
            f"CREATE INDEX IF NOT EXISTS requests_time ON {TABLE} (timestamp)")
BUSY_TIMEOUT_S = 10.0
# columns after the features and the answer, in order
_TAIL = ("model_version", "latency_ms", "source")


def output_columns(spec: Any) -> list[str]:
    """The answer's columns for the definition's task kind (`answers.for_task(...).log_columns`)."""
    return answers.for_task(spec.task).log_columns(spec)


def _quote(name: str) -> str:
    """An SQL identifier (any column name of the definition is safe inside double quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def answer_columns(spec: Any) -> list[str]:
    """The columns that say when and how a request was answered (all but the features and `id`)."""
    return ["timestamp", *output_columns(spec), *_TAIL]


def columns(spec: Any) -> list[str]:
    """The table's columns for a dataset definition (without `id`)."""
    answer = answer_columns(spec)
    return [answer[0], *spec.features, *answer[1:]]


def _schema(spec: Any) -> str:
    features = ", ".join(f"{_quote(f.name)} {'TEXT' if f.kind == 'categorical' else 'REAL'}"
                         f"{'' if f.nullable else ' NOT NULL'}" for f in spec.features_spec)
    kind = answers.for_task(spec.task)
    outputs = ", ".join(f"{_quote(c)} {t}" for c, t in zip(kind.log_columns(spec), kind.log_types(spec)))
    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"timestamp TEXT NOT NULL, {features}, {outputs}, model_version TEXT, latency_ms REAL NOT NULL, "
            "source TEXT NOT NULL)")


def _matches(con: sqlite3.Connection, spec: Any) -> bool:
    """True when the log open on `con` has the columns the definition asks for."""
    found = {row[1] for row in con.execute(f"PRAGMA table_info({TABLE})")}
    return set(columns(spec)) <= found


def _add_calls(con: sqlite3.Connection) -> None:
    """The `calls` table and the time indexes, on a log made before they existed (its rows kept)."""
    have = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    if CALLS not in have or "calls_time" not in have or "requests_time" not in have:
        with con:
            con.execute(_CALLS_SCHEMA)
            for sql in _INDEXES:
                con.execute(sql)


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
            con.execute(_CALLS_SCHEMA)
            for sql in _INDEXES:
                con.execute(sql)
            con.commit()
        os.replace(tmp, path)


def _connect(settings: Settings) -> sqlite3.Connection:
    """A connection with a busy timeout to the log (created, or started anew when its columns
    no longer match the definition, on first use; a log without the `calls` table gets it)."""
    path = settings.inference_log_path
    if path.exists():
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
        if _matches(con, settings.dataset):
            _add_calls(con)
            return con
        con.close()
    _create(path, settings.dataset)
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)


def ensure(settings: Settings) -> Path:
    """Create the log (or bring an older one up to date) before the server writes to it; its path."""
    with closing(_connect(settings)):
        pass
    return settings.inference_log_path


def append(
    settings: Settings,
    row: Mapping[str, Any],
    proba: float | Sequence[float],
    threshold: float | None,
    model_version: str | None,
    latency_ms: float,
    source: str = "serve-page",
) -> int:
    """Append one request (inputs, answer, model version, latency); return the new row's id.
    `proba` is the served answer of the row: a binary model's positive class's probability (the
    class at `threshold`), a multiclass model's k probabilities, a regression's prediction,
    lower and upper bound (`threshold` None)."""
    spec = settings.dataset
    values = [_stored(row[f]) for f in spec.features]
    answer = [[float(proba)]] if np.ndim(proba) == 0 else [[float(v) for v in proba]]
    outputs = answers.for_task(spec.task).log_rows(answers.matrix(answer), threshold)[0]
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    names = columns(spec)
    sql = (f"INSERT INTO {TABLE} ({', '.join(_quote(c) for c in names)}) "
           f"VALUES ({', '.join('?' for _ in names)})")
    with closing(_connect(settings)) as con, con:
        cur = con.execute(sql, [stamp, *values, *outputs, model_version, float(latency_ms), source])
        return int(cur.lastrowid or 0)


def _stored(value: Any) -> Any:
    """A validated value as SQLite keeps it: text as text, a missing value as NULL, else a double."""
    if isinstance(value, str):
        return value
    if value is None or value != value:  # NaN
        return None
    return float(value)


def count(settings: Settings) -> int:
    """Number of logged rows (the `requests` table: one per scored row, so a request of 100 rows
    counts 100; 0 when the log does not exist yet). `count_requests` counts the requests."""
    if not settings.inference_log_path.exists():
        return 0
    with closing(_connect(settings)) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])


def count_requests(settings: Settings) -> int:
    """Number of logged requests to /invocations (the `calls` table, refused ones included; 0 when
    the log does not exist yet). A row `append` wrote itself (a server without the capture) has
    no request here."""
    if not settings.inference_log_path.exists():
        return 0
    with closing(_connect(settings)) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {CALLS}").fetchone()[0])


def logged_text(settings: Settings) -> str:
    """What the log holds in words, rows and requests apart: '102 rows logged from 3 requests'
    ('5 rows logged' when no request was recorded, e.g. rows `append` wrote)."""
    rows, requests = count(settings), count_requests(settings)
    text = f"{rows:,} row{'' if rows == 1 else 's'} logged"
    return f"{text} from {requests:,} request{'' if requests == 1 else 's'}" if requests else text


def read_last(settings: Settings, n: int = 1000) -> pd.DataFrame:
    """The last `n` logged rows, oldest first: `id`, `timestamp` (UTC datetimes), the feature
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


# --------------------------------------------------------------------------- the server's capture
def open_for_capture(path: Path) -> sqlite3.Connection:
    """A writer's connection to an existing log (the server's capture): WAL, a busy timeout for
    the other workers' transactions, `synchronous=NORMAL` (a commit survives the process being
    killed; only a power cut can lose the last ones), transactions begun explicitly."""
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def table_columns(con: sqlite3.Connection, table: str = TABLE) -> list[str]:
    """The columns of `table` in the log open on `con`, in order."""
    return [row[1] for row in con.execute(f"PRAGMA table_info({_quote(table)})")]


def write_captured(con: sqlite3.Connection, row_columns: Sequence[str],
                   calls: Iterable[tuple[tuple[Any, ...], Sequence[Sequence[Any]]]]) -> tuple[int, int]:
    """Write captured requests in one transaction; (requests written, rows written).

    Each item of `calls` is (the request's values in CALL_COLUMNS order without `n_logged` and
    `first_row_id`, its rows' values in `row_columns` order). A request's rows get consecutive
    ids (given here, inside the write lock that BEGIN IMMEDIATE takes) and its `calls` row
    points at the first. Either everything is written or nothing is (then it can be retried
    without duplicates)."""
    rows_sql = (f"INSERT INTO {TABLE} (id, {', '.join(_quote(c) for c in row_columns)}) "
                f"VALUES (?, {', '.join('?' for _ in row_columns)})")
    calls_sql = (f"INSERT INTO {CALLS} ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' for _ in CALL_COLUMNS)})")
    con.execute("BEGIN IMMEDIATE")
    try:
        last = con.execute(f"SELECT seq FROM sqlite_sequence WHERE name = '{TABLE}'").fetchone()
        top = con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {TABLE}").fetchone()[0]
        next_id = max(int(last[0]) if last else 0, int(top)) + 1
        all_rows: list[tuple[Any, ...]] = []
        all_calls: list[tuple[Any, ...]] = []
        for head, rows in calls:
            first = next_id if rows else None
            for values in rows:
                all_rows.append((next_id, *values))
                next_id += 1
            # head: timestamp, request_id, model_version, status, outcome, n_rows | latency, source, worker, type
            all_calls.append((*head[:6], len(rows), first, *head[6:]))
        if all_rows:
            con.executemany(rows_sql, all_rows)
        con.executemany(calls_sql, all_calls)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(all_calls), len(all_rows)


def prune(con: sqlite3.Connection, max_rows: int | None, max_days: float | None,
          now: datetime | None = None) -> int:
    """Delete the rows beyond the newest `max_rows` (per table) and those older than `max_days`;
    the number of rows deleted. A reader in its own transaction keeps its snapshot meanwhile."""
    deleted = 0
    now = now or datetime.now(timezone.utc)
    con.execute("BEGIN IMMEDIATE")
    try:
        for table in (TABLE, CALLS):
            if max_rows is not None and max_rows > 0:
                deleted += con.execute(f"DELETE FROM {table} WHERE id <= (SELECT MAX(id) FROM {table}) - ?",
                                       (int(max_rows),)).rowcount
            if max_days is not None and max_days > 0:
                cutoff = (now - timedelta(days=float(max_days))).isoformat(timespec="microseconds")
                deleted += con.execute(f"DELETE FROM {table} WHERE timestamp < ?", (cutoff,)).rowcount
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return deleted


def prune_log(settings: Settings) -> int:
    """`prune` the settings' log to their retention (`log_max_rows`, `log_max_days`)."""
    if not settings.inference_log_path.exists():
        return 0
    with closing(_connect(settings)) as con:
        con.isolation_level = None
        return prune(con, settings.log_max_rows, settings.log_max_days)


def read_calls(settings: Settings, since: datetime | None = None) -> pd.DataFrame:
    """The requests (`calls`) since `since` (all when None), oldest first, `timestamp` as UTC
    datetimes; empty with the columns when none."""
    names = ["id", *CALL_COLUMNS]
    if not settings.inference_log_path.exists():
        empty = pd.DataFrame({c: pd.Series(dtype="float64" if c in ("latency_ms",) else object) for c in names})
        empty["timestamp"] = pd.to_datetime(empty["timestamp"], utc=True)
        return empty
    where, params = ("WHERE timestamp >= ?", (since.astimezone(timezone.utc).isoformat(timespec="microseconds"),)) \
        if since is not None else ("", ())
    with closing(_connect(settings)) as con:
        df = pd.read_sql_query(f"SELECT {', '.join(names)} FROM {CALLS} {where} ORDER BY id", con, params=params)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    return df


def read_rows(settings: Settings, since: datetime | None = None) -> pd.DataFrame:
    """The logged rows (`requests`) since `since`, oldest first (as `read_last` gives them)."""
    names = ["id", *columns(settings.dataset)]
    if since is None or not settings.inference_log_path.exists():
        return read_last(settings, 10**9) if since is None else read_last(settings, 0)
    with closing(_connect(settings)) as con:
        df = pd.read_sql_query(
            f"SELECT {', '.join(_quote(c) for c in names)} FROM {TABLE} WHERE timestamp >= ? ORDER BY id", con,
            params=(since.astimezone(timezone.utc).isoformat(timespec="microseconds"),))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    return df


def find_request(settings: Settings, request_id: str) -> tuple[int | None, bool]:
    """(the id of the first logged row of the request `request_id`, whether the request is in
    the log at all)."""
    if not settings.inference_log_path.exists():
        return None, False
    with closing(_connect(settings)) as con:
        got = con.execute(f"SELECT first_row_id FROM {CALLS} WHERE request_id = ? ORDER BY id DESC LIMIT 1",
                          (request_id,)).fetchone()
    return (None, False) if got is None else ((None if got[0] is None else int(got[0])), True)


def wait_for_request(settings: Settings, request_id: str, timeout_s: float = 2.0,
                     poll_s: float = 0.005) -> int | None:
    """The id of the first logged row of the request `request_id` once the server has written
    it (None when it is not there within `timeout_s`, or was logged without rows)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        row_id, found = find_request(settings, request_id)
        if found or time.monotonic() >= deadline:
            return row_id
        time.sleep(poll_s)
