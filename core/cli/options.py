"""The parser of the command line and the types of its values: every value is checked where it
enters, so that a refused value exits 2 with one line naming the option, the value and what is
allowed, before any work starts (argparse prefixes "argument --OPTION: ")."""
from __future__ import annotations

import argparse
import math
import os
from typing import Callable

from core.config import (
    PORT_RULE,
    THRESHOLD_RULE,
    valid_port,
    valid_threshold,
    whole_number,
)
from core.errors import WorkbenchError

MAX_PATH_BYTES, MAX_NAME_BYTES = 4096, 255  # Linux's PATH_MAX and NAME_MAX
SEED_MAX = 2**32 - 1  # numpy's and scikit-learn's random_state


class UsageError(WorkbenchError):
    """The command line itself is wrong: an unknown option, a missing or refused value."""


class Parser(argparse.ArgumentParser):
    """argparse raising `UsageError` instead of printing the usage and exiting, so that `main`
    reports it like any other refusal (one line on stderr, and the JSON error with --json)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _refuse(text: str, rule: str, detail: str = "") -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"must be {rule}, not {text!r}" + (f" ({detail})" if detail else ""))


def _named(name: str, fn: Callable[[str], object]) -> Callable[[str], object]:
    fn.__name__ = name  # argparse names the type in its own messages
    return fn


def whole(lo: int, hi: int) -> Callable[[str], object]:
    """A type: a whole number from `lo` to `hi` (digits only: no sign, no decimals)."""
    def parse(text: str) -> int:
        value = whole_number(text)
        if value is None or not lo <= value <= hi:
            raise _refuse(text, f"a whole number from {lo:,} to {hi:,}")
        return value

    return _named(f"whole number from {lo} to {hi}", parse)


def port(text: str) -> int:
    """A type: a TCP port, 1-65535."""
    value = whole_number(text)
    if value is None or not valid_port(value):
        raise _refuse(text, PORT_RULE)
    return value


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def threshold(text: str) -> float:
    """A type: a class threshold, finite and strictly between 0 and 1."""
    value = _finite(text)
    if value is None or not valid_threshold(value):
        raise _refuse(text, THRESHOLD_RULE)
    return value


def fraction(text: str) -> float:
    """A type: a share of the rows, strictly between 0 and 1 (e.g. the test size)."""
    value = _finite(text)
    if value is None or not 0.0 < value < 1.0:
        raise _refuse(text, "a number strictly between 0 and 1")
    return value


seed = whole(0, SEED_MAX)


def ratio(text: str) -> float:
    """A type: a positive finite ratio (e.g. the cost of a false positive over a false negative)."""
    value = _finite(text)
    if value is None or not 0.0 < value <= 1000.0:
        raise _refuse(text, "a number above 0 and at most 1000")
    return value


def url(text: str) -> str:
    """A type: a model server address (http or https with a host; see `core.serving.client`)."""
    from core.serving.client import (  # only when an address is given
        URL_RULE,
        url_problem,
    )

    problem = url_problem(text)
    if problem:
        raise _refuse(text, URL_RULE, problem)
    return text


def path(text: str) -> str:
    """A type: a file path (or a glob pattern) the system can take: not empty, no NUL byte, not too long."""
    rule = "a file path"
    if not text.strip():
        raise _refuse(text, rule, "it is empty")
    if "\0" in text:
        raise _refuse(text, rule, "it contains a NUL byte")
    try:
        raw = os.fsencode(text)
    except UnicodeError:
        raise _refuse(text, rule, "it cannot be encoded as a file name") from None
    if len(raw) > MAX_PATH_BYTES or any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        raise _refuse(text, rule, f"longer than {MAX_PATH_BYTES} bytes, or a name over {MAX_NAME_BYTES}")
    return text


def scored_output(text: str) -> str:
    """A type: the file `apply --output` writes, a `path` ending in .csv or .parquet."""
    from core.scoring.exports import output_problem  # only when an output is given

    path(text)
    problem = output_problem(text)
    if problem:
        raise _refuse(text, "a .csv or .parquet file", problem)
    return text


def master(text: str) -> str:
    """A type: a Spark master URL such as local[2] or spark://host:7077 (one word, printable)."""
    if not text or len(text) > 1000 or any(c.isspace() or not c.isprintable() for c in text):
        raise _refuse(text, "a Spark master such as local[2] or spark://host:7077 (no spaces)")
    return text


def period(text: str) -> str:
    """A type: a chunk period, a whole number of minutes, hours or days (15m, 1h, 1d)."""
    from core.monitoring.chunks import PERIOD_RULE, period_frequency  # only when a period is given

    if period_frequency(text) is None:
        raise _refuse(text, PERIOD_RULE)
    return text.strip()
