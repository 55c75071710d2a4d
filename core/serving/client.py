"""HTTP client of a model server (`mlflow models serve`): `dataframe_split` in, the positive class's probability out.

`Client` keeps a `requests.Session` (for `/ping`, HTTPS and proxied addresses) and posts
predictions to a plain-HTTP server over one kept-alive `http.client` connection per thread,
headers and body in a single send. Against the same server (five alternating runs of 400
single-row requests) that gave a p50 of 3.51 ms instead of 4.84 ms through requests' urllib3
pool, and 0.34 ms of client CPU per request instead of 0.75 ms: urllib3 sends the headers and
the body as two packets and does more bookkeeping per call. A connection the server has closed (idle keep-alive timeout, restart) is
noticed before reuse and replaced; a request that fails on a reused connection is sent once
more on a fresh one (scoring is idempotent).
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import re
import select
import socket
import threading
import uuid
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import pandas as pd
import requests

from core.errors import WorkbenchError


class ServerError(WorkbenchError):
    """The model server could not do what was asked."""


class ServerNotRunningError(ServerError):
    """Nothing answers at the server's address."""


class PredictionError(ServerError):
    """The server answered with an error (its `message`, never its stack trace)."""


class InvalidURLError(ServerError):
    """A model server address that is not a plain http(s) address with a host."""


class WrongServerError(ServerError):
    """The server at the address serves another dataset, model or version than the one expected
    (its message names what it serves)."""


# --------------------------------------------------------------------------- who answers
# the workbench's server names what it serves on every answer (`core/serving/asgi.py`)
MODEL_HEADER, DATASET_HEADER = "X-Workbench-Model", "X-Workbench-Dataset"
MODEL_ENV, DATASET_ENV = "WORKBENCH_SERVED_MODEL", "WORKBENCH_SERVED_DATASET"  # set for the server process


@dataclass(frozen=True)
class ServerIdentity:
    """What a model server serves: the dataset, the registered model's name and its version
    (None in an expectation: any version of that model)."""

    dataset: str
    model: str
    version: str | None = None

    @property
    def text(self) -> str:
        """e.g. "dataset 'hmda' (model 'hmda_model' version 3)"."""
        version = f" version {self.version}" if self.version is not None else ""
        return f"dataset {self.dataset!r} (model {self.model!r}{version})"

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The answer headers that say it (names in lower case, values percent-encoded)."""
        model = f"{quote(self.model, safe='')}/{quote(str(self.version or ''), safe='')}"
        return [(MODEL_HEADER.lower().encode("ascii"), model.encode("ascii")),
                (DATASET_HEADER.lower().encode("ascii"), quote(self.dataset, safe="").encode("ascii"))]


def read_identity(get: Callable[[str], str | None]) -> ServerIdentity | None:
    """The identity in an answer's headers (`get(name)` gives a header's value), or None when the
    server sent none (a stock `mlflow models serve`, someone else's server)."""
    model, dataset = get(MODEL_HEADER), get(DATASET_HEADER)
    if not model or dataset is None:
        return None
    name, _, version = model.rpartition("/")
    return ServerIdentity(unquote(dataset), unquote(name), unquote(version) or None)


def identity_problem(url: str, expected: ServerIdentity, found: ServerIdentity) -> str | None:
    """Why the server at `url`, serving `found`, is not the one expected, or None when it is."""
    if (found.dataset, found.model) == (expected.dataset, expected.model) and (
            expected.version is None or found.version is None or str(found.version) == str(expected.version)):
        return None
    return (f"The model server at {url} serves {found.text}, not {expected.text}: the row was not scored "
            f"by it. Start this dataset's own server (`python -m core serve --dataset {expected.dataset}`, "
            f"or the Serve page), or give its address with --url / --via.")


# --------------------------------------------------------------------------- addresses
URL_RULE = "an http:// or https:// address with a host, e.g. http://127.0.0.1:5001"
MAX_URL_CHARS = 2048
# a DNS name (letters, digits, '-', '_' for container names), dot-separated
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")


def url_problem(url: object) -> str | None:
    """Why `url` is not a model server address (scheme http or https, a host, an optional port
    and path prefix; no credentials, query or fragment), or None when it is one."""
    if not isinstance(url, str) or not url:
        return "it is empty"
    if len(url) > MAX_URL_CHARS:
        return f"it is {len(url):,} characters long (at most {MAX_URL_CHARS:,})"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:  # a bad IPv6 literal, a port that is not a number from 0 to 65535
        return f"it cannot be read as an address ({err})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"its scheme is {parts.scheme!r}" if parts.scheme else "it has no http:// or https:// scheme"
    if "@" in parts.netloc:
        return "it holds credentials (user@host); the model server takes none"
    host = parts.hostname or ""
    if not host:
        return "it has no host"
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    elif not _HOSTNAME.match(host):
        return f"{host!r} is not a host name or IP address"
    if port == 0:
        return "port 0 is not a port a server listens on"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "it has a query or fragment (?…, #…)"
    return None


def check_url(url: str, what: str = "The model server address") -> str:
    """`url` without a trailing slash, or InvalidURLError saying what is wrong and what is allowed."""
    problem = url_problem(url)
    if problem:
        raise InvalidURLError(f"{what} must be {URL_RULE}, not {url!r}: {problem}.")
    return url.rstrip("/")


_JSON = {"Content-Type": "application/json"}
# the server's inference log: who sent a request, its id, and (in the answer) the id it is logged under
SOURCE_HEADER, REQUEST_ID_HEADER, CAPTURED_HEADER = "X-Workbench-Source", "X-Request-Id", "X-Workbench-Capture"
_PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
_DURATION = re.compile(r"(?:^|[;,\s])dur=([0-9]+(?:\.[0-9]+)?)")


def server_time_ms(header: str | None) -> float | None:
    """The duration in a `Server-Timing` header (`app;dur=0.412`, W3C Server Timing), in ms;
    the sum of the metrics when there are several; None without one."""
    if not header:
        return None
    found = [float(m) for m in _DURATION.findall(header)]
    return sum(found) if found else None


# what a dropped or refused connection raises in http.client (TimeoutError is an OSError too)
_DROPPED = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine,
            http.client.IncompleteRead, BrokenPipeError)


def _server_message(text: str, reason: str = "") -> str:
    """The `message` of an MLflow error answer, shortened, never the stack trace."""
    try:
        body = json.loads(text)
        message = str(body.get("message", "")) if isinstance(body, dict) else str(body)
    except ValueError:
        message = text
    message = " ".join(message.split())
    return (message[:400] + "…") if len(message) > 400 else (message or reason or "no message")


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when the server has closed this idle connection (readable = EOF or junk pending)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Client:
    """HTTP client of a model server; returns the positive class's probability. Safe to share between threads."""

    def __init__(self, url: str, timeout_s: float = 10.0, features: tuple[str, ...] = (),
                 expected: ServerIdentity | None = None) -> None:
        """`expected`: what the server must serve; an answer naming anything else raises
        `WrongServerError` (checked on the answer's headers: no extra request); an answer naming
        nothing is accepted, with `last_checked` False."""
        self.url = check_url(url)  # InvalidURLError before any connection
        self.expected = expected
        self.timeout_s = float(timeout_s)
        self.features = tuple(features)
        self.session = requests.Session()
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path.rstrip("/") + "/invocations"
        # plain HTTP without a proxy: our own connections; anything else: requests
        self._direct = parts.scheme == "http" and not requests.utils.get_environ_proxies(self.url)
        self._local = threading.local()
        # weak: a thread's connection goes (and its socket closes) when the thread ends
        self._conns: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._whole_as_int = True  # batches: whole numbers as int64 (see `predict_proba`)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
        for conn in conns:
            conn.close()
        self.session.close()

    @property
    def last_server_ms(self) -> float | None:
        """The server's own time for this thread's last answer, in ms (its `Server-Timing`
        header, which the workbench's server sends), or None when the server gave none."""
        return getattr(self._local, "server_ms", None)

    def ping(self) -> bool:
        """True when the server answers `/ping` (who it is, checked against `expected`, too)."""
        try:
            resp = self.session.get(f"{self.url}/ping", timeout=min(self.timeout_s, 2.0))
        except requests.RequestException:
            return False
        self._local.identity = read_identity(resp.headers.get)
        if resp.status_code == 200:
            self._check_identity()
        return resp.status_code == 200

    @property
    def last_identity(self) -> ServerIdentity | None:
        """What the server said it serves in this thread's last answer (None: it said nothing)."""
        return getattr(self._local, "identity", None)

    @property
    def last_checked(self) -> bool:
        """True when this thread's last answer named what the server serves and it was the one
        expected (a mismatch raises instead); False when it could not be checked."""
        return self.expected is not None and self.last_identity is not None

    def _check_identity(self) -> None:
        found = self.last_identity
        if self.expected is not None and found is not None:
            problem = identity_problem(self.url, self.expected, found)
            if problem:
                raise WrongServerError(problem)

    def _not_running(self) -> ServerNotRunningError:
        return ServerNotRunningError(
            f"The model server is not running at {self.url}: start it on the Serve page "
            f"or with `python -m core serve`."
        )

    def _timed_out(self) -> ServerError:
        return ServerError(f"The model server at {self.url} did not answer within {self.timeout_s:g} s.")

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(this thread's connection, whether it is a reused one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not _dropped(conn):
            return conn, True
        if conn is not None:
            self._forget(conn)
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn = conn
        with self._lock:
            self._conns.add(conn)
        return conn, False

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            self._conns.discard(conn)

    @property
    def last_capture(self) -> str | None:
        """The request id under which the server logged this thread's last request (its
        `X-Workbench-Capture` header: the workbench's server records every request in the
        inference log), or None when the server gave none (a server without that capture)."""
        return getattr(self._local, "captured", None)

    def _post_direct(self, body: bytes, headers: dict[str, str] = _JSON) -> tuple[int, str, str]:
        for attempt in (1, 2):
            conn = None
            try:
                conn, reused = self._connection()
                conn.request("POST", self._path, body, headers)  # one send: headers + body
                resp = conn.getresponse()
                self._local.server_ms = server_time_ms(resp.getheader("server-timing"))
                self._local.captured = resp.getheader(CAPTURED_HEADER)
                self._local.identity = read_identity(resp.getheader)
                return resp.status, resp.read().decode("utf-8"), resp.reason or ""
            except TimeoutError as err:
                if conn is not None:
                    self._forget(conn)
                raise self._timed_out() from err
            except (*_DROPPED, OSError) as err:
                if conn is not None:
                    self._forget(conn)
                if attempt == 1 and conn is not None and reused:
                    continue  # the server closed a kept-alive connection: once more, fresh
                raise self._not_running() from err
        raise self._not_running()  # unreachable: the loop returns or raises

    def _post(self, body: bytes, headers: dict[str, str] = _JSON) -> tuple[int, str, str]:
        """(status, text, reason) of a POST to `/invocations`; `WrongServerError` when the
        answer names another model than `expected` (before its status is looked at)."""
        if self._direct:
            answer = self._post_direct(body, headers)
            self._check_identity()
            return answer
        try:
            resp = self.session.post(f"{self.url}/invocations", data=body, headers=headers, timeout=self.timeout_s)
        except requests.ConnectionError as err:
            raise self._not_running() from err
        except requests.Timeout as err:
            raise self._timed_out() from err
        self._local.server_ms = server_time_ms(resp.headers.get("server-timing"))
        self._local.captured = resp.headers.get(CAPTURED_HEADER)
        self._local.identity = read_identity(resp.headers.get)
        self._check_identity()
        return resp.status_code, resp.text, resp.reason or ""

    def post_json(self, body: str, source: str | None = None) -> str:
        """POST a serialized `dataframe_split` payload to `/invocations`; the answer's text.
        `source` (e.g. "serve-page") tags the request for the server's inference log, with a
        request id of its own (`last_capture` gives it back when the server logged it)."""
        headers = _JSON if source is None else {**_JSON, SOURCE_HEADER: source, REQUEST_ID_HEADER: uuid.uuid4().hex}
        code, text, reason = self._post(body.encode("utf-8"), headers)
        if code >= 400:
            raise PredictionError(f"The model server refused the request (HTTP {code}): {_server_message(text, reason)}")
        return text

    def predict_rows(self, rows: list[list[Any]], params: dict[str, Any] | None = None,
                     source: str | None = None) -> np.ndarray:
        """The positive class's probability (a binary model's) for rows given as lists of values
        (numbers, and text for categorical features) in the client's feature order; `params` go
        with the request (e.g. `{"allow_unseen": true}`); `source` tags it for the server's
        inference log (`post_json`). `answer_rows` gives the whole answer of any task kind."""
        return self.answer_rows(rows, params, source)[:, -1]

    def answer_rows(self, rows: list[list[Any]], params: dict[str, Any] | None = None,
                    source: str | None = None) -> np.ndarray:
        """The served answer for rows given as `predict_rows` takes them: a matrix, one row per
        row sent (binary both probabilities, multiclass k, regression prediction, lower, upper)."""
        payload: dict[str, Any] = {"dataframe_split": {"columns": list(self.features), "data": rows}}
        if params:
            payload["params"] = params
        return parse_answers(self.post_json(json.dumps(payload), source=source))

    def explain_rows(self, rows: list[list[Any]], params: dict[str, Any] | None = None,
                     source: str | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """`answer_rows`' answer and each row's explanation, asked with `{"explain": true}`
        (issue 31); None for the explanations when the served version does not explain."""
        payload = {"dataframe_split": {"columns": list(self.features), "data": rows},
                   "params": {**(params or {}), "explain": True}}
        return parse_explained(self.post_json(json.dumps(payload), source=source))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The positive class's probability (a binary model's) for each row of `frame`
        (`predict_answers`' last column)."""
        return self.predict_answers(frame)[:, -1]

    def predict_answers(self, frame: pd.DataFrame) -> np.ndarray:
        """The served answer for each row of `frame` (validated feature columns), as `answer_rows`.

        The rows go as a parquet file, which the model server reads with pyarrow: every double
        exactly, and the least work on both sides of the formats it accepts (50,000 rows at load
        ~3.5: written in 27 ms, answered in 451 ms; as `dataframe_split` JSON 140 ms and 620 ms;
        most of the rest is MLflow writing its JSON answer; bench/RESULTS.md, issue 19)."""
        code, text, reason = self._post(parquet_payload(frame, self.features, self._whole_as_int), _PARQUET)
        if code == 400 and self._whole_as_int and "safely convert int64" in text:
            # a model logged before whole-number features were declared `long` takes doubles only
            self._whole_as_int = False
            code, text, reason = self._post(parquet_payload(frame, self.features, False), _PARQUET)
        if code >= 400:
            raise PredictionError(f"The model server refused the request (HTTP {code}): "
                                  f"{_server_message(text, reason)}")
        return parse_answers(text)


def _numbers(sub: pd.DataFrame, whole_as_int: bool = True) -> pd.DataFrame:
    """Number columns as doubles, except (with `whole_as_int`) those holding whole numbers only,
    as int64: a served model declares whole-number features `long`, and MLflow's schema check
    refuses doubles for them in a parquet body (JSON numbers it converts itself)."""
    out = {}
    for c in sub.columns:
        if sub[c].dtype == object:
            continue
        v = sub[c].to_numpy(dtype="float64")
        whole = whole_as_int and bool(np.isfinite(v).all() and (v == np.round(v)).all() and (np.abs(v) < 2**53).all())
        out[c] = "int64" if whole else "float64"
    return sub.astype(out)


def split_payload(frame: pd.DataFrame, features: tuple[str, ...]) -> str:
    """The `dataframe_split` JSON body of `frame`'s feature columns (pandas' fast encoder)."""
    body = _numbers(frame.loc[:, list(features)]).to_json(orient="split", index=False, double_precision=15)
    return '{"dataframe_split": ' + body + "}"


def parquet_payload(frame: pd.DataFrame, features: tuple[str, ...], whole_as_int: bool = True) -> bytes:
    """`frame`'s feature columns as a parquet file (numbers as `_numbers` gives them, text as text)."""
    import io

    buf = io.BytesIO()
    _numbers(frame.loc[:, list(features)], whole_as_int).reset_index(drop=True).to_parquet(buf, index=False)
    return buf.getvalue()


def parse_answers(text: str) -> np.ndarray:
    """A server answer `{"predictions": [[...], ...]}` as a float matrix, one row per scored row
    (binary both probabilities, multiclass k probabilities, regression prediction, lower, upper;
    a flat list of numbers: one column).

    The usual `[[a, b, ...], ...]` answer is read with numpy's text parser (about twice as fast
    as `json.loads` on large batches); anything else goes through `json.loads`.
    """
    start = text.find("[[")
    if text.startswith('{"predictions": [[') and start >= 0:
        width = text.count(",", start, text.index("]", start)) + 1
        with warnings.catch_warnings():
            # numpy's reader stops at what is not a number (a JSON null: an unknown interval bound)
            # and only warns: then the answer is read by json
            warnings.simplefilter("error", DeprecationWarning)
            try:
                flat = np.fromstring(text[start:text.rindex("]") + 1].replace("[", " ").replace("]", " "), sep=",")
            except (DeprecationWarning, ValueError):
                flat = None
        if flat is not None and width >= 1 and flat.size % width == 0:
            return flat.reshape(-1, width)
    preds = json.loads(text)
    preds = preds.get("predictions", preds) if isinstance(preds, dict) else preds
    # a JSON null (an unknown interval bound) reads as NaN
    arr = np.asarray(preds, dtype="float64") if not _has_none(preds) else np.asarray(
        [[np.nan if v is None else v for v in row] if isinstance(row, list) else (np.nan if row is None else row)
         for row in preds], dtype="float64")
    return arr if arr.ndim == 2 else arr.reshape(-1, 1)


NO_EXPLANATIONS = ("this model version cannot explain its answers: it was logged before explanations "
                   "existed (retrain with python -m core train and serve the new champion to get them)")


def parse_explained(text: str) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
    """An answer to `{"explain": true}`: `{"predictions": [{"prediction": [...], "explanation":
    {...}}, ...]}` as (the answer matrix, the explanations); a plain answer (a model logged
    before explanations existed: MLflow drops a parameter its signature lacks) as (the answer
    matrix, None)."""
    preds = json.loads(text)
    preds = preds.get("predictions", preds) if isinstance(preds, dict) else preds
    if not (isinstance(preds, list) and preds and all(isinstance(r, dict) and "explanation" in r for r in preds)):
        return parse_answers(text), None
    answers = [[np.nan if v is None else v for v in (r["prediction"] if isinstance(r["prediction"], list)
                                                     else [r["prediction"]])] for r in preds]
    return np.asarray(answers, dtype="float64"), [r["explanation"] for r in preds]


def _has_none(preds: Any) -> bool:
    return isinstance(preds, list) and any(v is None or (isinstance(v, list) and None in v) for v in preds)


def parse_predictions(text: str) -> np.ndarray:
    """The last column of a server answer `{"predictions": [[p0, p1], ...]}` (or a flat list of
    probabilities): a binary model's positive class's probability (`parse_answers` for the rows)."""
    return parse_answers(text)[:, -1]
