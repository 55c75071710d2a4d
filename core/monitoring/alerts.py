"""Alerts: a drift check that raises dataset drift or the retraining alarm POSTs one JSON object
to each configured URL (`Settings.alert_urls`: `WORKBENCH_ALERT_URL`, comma-separated).

The object (`message`) names the dataset, the model version, the check id, the `kind`
("dataset_drift" or "retraining_alarm"), the message in words (`text`, which a Slack-style
incoming webhook shows as it is), the drifted features, the alarm's reasons and a `link` to the
Drift page. Delivery (`deliver`) runs in a thread of its own per URL (`send_in_background`),
retried on a connection error, a timeout, 429 or 5xx within `Settings.alert_budget_s` in all;
it never changes the check's result or exit code. Each delivery's outcome is appended to
`alerts.jsonl` beside the monitoring references (`recent` reads it back for the Drift page) and
a failure is logged as a warning. A URL is written there as its scheme and host only: a
webhook's path is often its secret.

Hand-written over `urllib.request` (standard library): one POST with a timeout and a few
retries needs no client library.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import urlsplit

from core.config import Settings

LOG = logging.getLogger(__name__)
LOG_FILE = "alerts.jsonl"
ATTEMPTS = 3
ATTEMPT_TIMEOUT_S = 2.0
KEEP_LINES = 500  # outcomes kept in alerts.jsonl (the oldest dropped beyond this)
_write_lock = threading.Lock()


@dataclass(frozen=True)
class Delivery:
    """One alert's delivery to one URL: `ok`, the attempts made, the last HTTP status (None when
    no answer came) and the error in words ("" when delivered)."""

    check_id: str
    url: str  # scheme and host only
    ok: bool
    attempts: int
    status: int | None
    error: str
    at: str
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def page_link(settings: Settings) -> str:
    """The Drift page of the workbench app (`Settings.app_port` on the serving host)."""
    return f"http://{settings.serve_host}:{settings.app_port}/Drift"


def message(report: Any, settings: Settings) -> dict[str, Any] | None:
    """The alert of a drift check (`DriftReport`), or None when it raises neither dataset drift
    nor the retraining alarm."""
    alarm = list(report.verdict.get("alarm", ()))
    if not (report.dataset_drift or alarm):
        return None
    spec = settings.dataset
    kind = "dataset_drift" if report.dataset_drift else "retraining_alarm"
    drifted = list(report.stats.drifted)
    head = (f"Drift check of {spec.title} ({report.batch.get('name', 'a batch')}, "
            f"{report.batch.get('n_rows', 0):,} {spec.rows_noun}) by model version {report.model_version}: ")
    what = ("dataset drift" if report.dataset_drift else "the retraining alarm rang")
    text = (head + what + (f"; drifted features: {', '.join(drifted)}" if drifted else "")
            + (f". Why: {'; '.join(alarm)}" if alarm else "") + f". Recommendation: {report.recommendation}")
    return {"text": text, "dataset": spec.name, "model_version": str(report.model_version),
            "check_id": report.check_id, "kind": kind, "dataset_drift": bool(report.dataset_drift),
            "alarm": alarm, "drifted": drifted, "recommendation": report.recommendation,
            "batch": report.batch.get("name"), "source": report.source, "checked_at": report.checked_at,
            "link": page_link(settings)}


def shown_url(url: str) -> str:
    """A URL as the log shows it: scheme and host (a webhook's path is often its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def deliver(payload: dict[str, Any], url: str, budget_s: float) -> Delivery:
    """POST `payload` as JSON to `url`, retried (connection errors, timeouts, 429, 5xx) until
    `ATTEMPTS` are made or `budget_s` is spent; never raises."""
    body = json.dumps(payload, default=str).encode()
    deadline = time.monotonic() + budget_s
    status, error, attempts = None, "", 0
    while attempts < ATTEMPTS:
        left = deadline - time.monotonic()
        if left <= 0.05:
            error = error or "no time left"
            break
        attempts += 1
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "kobe-workbench-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=min(ATTEMPT_TIMEOUT_S, left)) as answer:
                status = answer.status
            error = ""
            break
        except urllib.error.HTTPError as err:
            status, error = err.code, f"HTTP {err.code} {err.reason}"
            if not (err.code == 429 or err.code >= 500):
                break  # the receiver refused this alert: sending it again changes nothing
        except (urllib.error.URLError, OSError, ValueError) as err:
            status, error = None, f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        time.sleep(min(0.25 * 2 ** (attempts - 1), max(deadline - time.monotonic(), 0)))
    ok = not error and status is not None and 200 <= status < 300
    return Delivery(check_id=str(payload.get("check_id", "")), url=shown_url(url), ok=ok, attempts=attempts,
                    status=status, error="" if ok else (error or f"HTTP {status}"),
                    at=datetime.now(timezone.utc).isoformat(timespec="seconds"), kind=str(payload.get("kind", "")))


def _deliver_and_record(payload: dict[str, Any], url: str, settings: Settings) -> None:
    try:
        outcome = deliver(payload, url, settings.alert_budget_s)
        if not outcome.ok:
            LOG.warning("alert of check %s to %s not delivered after %d attempt(s): %s", outcome.check_id,
                        outcome.url, outcome.attempts, outcome.error)
        record(outcome, settings)
    except Exception as err:  # noqa: BLE001 (a thread of its own: nothing may escape into the check)
        LOG.warning("alert to %s failed: %s", shown_url(url), err)


def record(outcome: Delivery, settings: Settings) -> None:
    """Append one delivery's outcome to the alerts log (the last `KEEP_LINES` kept)."""
    path = settings.monitoring_dir / LOG_FILE
    with _write_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines()[-(KEEP_LINES - 1):] if path.exists() else []
        lines.append(json.dumps(outcome.to_dict()))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)


def send_in_background(report: Any, settings: Settings,
                       urls: Sequence[str] | None = None) -> list[threading.Thread]:
    """Send the check's alert (`message`) to every URL, each in a thread (not a daemon: a command
    line waits for it before exiting, at most `alert_budget_s`); the threads, none when the check
    does not alarm or no URL is set. Never raises."""
    urls = list(settings.alert_urls if urls is None else urls)
    if not urls:
        return []
    try:
        payload = message(report, settings)
    except Exception as err:  # noqa: BLE001 (an alert never fails the check)
        LOG.warning("alert of check %s not built: %s", getattr(report, "check_id", "?"), err)
        return []
    if payload is None:
        return []
    threads = [threading.Thread(target=_deliver_and_record, args=(payload, url, settings), name="alert",
                                daemon=False) for url in urls]
    for t in threads:
        t.start()
    return threads


def recent(settings: Settings, n: int = 20) -> list[dict[str, Any]]:
    """The last `n` delivery outcomes, newest first (the Drift page)."""
    path = settings.monitoring_dir / LOG_FILE
    if not path.exists():
        return []
    found = []
    for line in reversed(path.read_text().splitlines()):
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
        if len(found) >= n:
            break
    return found
