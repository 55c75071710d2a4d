"""What the command line writes: the result on stdout (one JSON object with --json), progress
and errors on stderr, and with --json an error as one JSON object on stdout too."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Sequence

from core.progress import ProgressFn

JSON_FLAG = "--json"


def wants_json(argv: Sequence[str]) -> bool:
    """Whether `argv` asks for JSON output, read from the raw words (for errors met before or while
    parsing): `--json`, `--json=...`, or an abbreviation argparse would accept (`--js`)."""
    for word in argv:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if len(name) >= 3 and JSON_FLAG.startswith(name):
            return True
    return False


def terminal_progress(enabled: bool) -> tuple[ProgressFn, Callable[[], None]]:
    """A tqdm bar on stderr mapped onto the progress callback; without a terminal, one plain
    line on stderr per step (stdout stays for the result)."""
    if not enabled:
        last: list[str] = []

        def plain(fraction: float, step: str) -> None:
            if not last or last[-1] != step:
                last.append(step)
                sys.stderr.write(f"[{fraction:4.0%}] {step}\n")
                sys.stderr.flush()

        return plain, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}", leave=False)

    def on_progress(fraction: float, step: str) -> None:
        bar.set_description_str(step[:60])
        bar.n = int(fraction * 1000)
        bar.refresh()

    return on_progress, bar.close


def emit(result: Any, as_json: bool) -> None:
    """The result: one line of JSON with --json, else indented JSON."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")


def emit_error(kind: str, message: str, as_json: bool) -> None:
    """`error: message` on stderr; with --json also `{"error": {"kind": ..., "message": ...}}` on
    stdout (kind: the exception's class name, or "usage" for the command line itself)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    if as_json:
        sys.stdout.write(json.dumps({"error": {"kind": kind, "message": message}}) + "\n")
        sys.stdout.flush()


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr)."""
    sys.stderr.write(f"note: {message}\n")
