"""The parser of `python -m core` and `main`: parse, run one command, print its result or error."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from core import catalog
from core.cli import commands, lifecycle, mlflow_ui, output, segments, serving
from core.cli.options import Parser, UsageError
from core.config import Settings, home_from_env
from core.dataset import DatasetSpec
from core.errors import WorkbenchError

COMMANDS: list[Callable[[argparse._SubParsersAction, DatasetSpec], None]] = [
    commands.add_prepare, serving.add_serve, serving.add_predict, commands.add_drift, commands.add_retrain,
    commands.add_apply, segments.add_segments, commands.add_train, lifecycle.add_versions, lifecycle.add_promote,
    lifecycle.add_rollback, commands.add_dataset, mlflow_ui.add_mlflow_ui]


def build_parser(spec: DatasetSpec) -> argparse.ArgumentParser:
    """The command line; help texts and examples speak of the dataset `spec`. Its errors raise
    `UsageError` (see `options.Parser`)."""
    parser = Parser(prog="python -m core", description=f"Workbench command line ({spec.title})")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="the dataset to work on (default WORKBENCH_DATASET, else the one chosen with "
                             "`dataset use`, else kobe)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub, spec)
    for p in sub.choices.values():
        if not any(a.dest == "json" for a in p._actions) and p.prog.split()[-1] != "dataset":
            p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
        p.add_argument("--dataset", default=argparse.SUPPRESS, metavar="NAME", help="the dataset to work on")
    return parser


def _command_at(argv: Sequence[str]) -> int | None:
    """Where the command's name is in `argv` (after the global options), or None."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--dataset":
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            return i
    return None


def _settings(argv: list[str]) -> Settings:
    """Settings for the dataset named by `--dataset` (before the full parse: help texts use it)."""
    pre = Parser(add_help=False, prog="python -m core")
    pre.add_argument("--dataset", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.dataset:  # a built-in dataset or one of the home's own
        return Settings.from_env(dataset=catalog.find(known.dataset, [catalog.user_dir(home_from_env())]))
    return Settings.from_env()


def _parse(argv: list[str]) -> tuple[argparse.Namespace, Settings]:
    at = _command_at(argv)
    if at is not None and argv[at] == "predict":
        argv = serving.legacy_predict_row(argv, at)
    settings = _settings(argv)
    args = build_parser(settings.dataset).parse_args(argv)
    if getattr(args, "legacy_row", None) is not None:
        output.note("`predict --json '{...}'` is deprecated: give the row with --input '{...}' (or --input @FILE) "
                    "and add --json for JSON output.")
    return args, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 on an expected problem (a message, never a traceback;
    with --json also one JSON error object on stdout), 130 when interrupted."""
    words = list(sys.argv[1:] if argv is None else argv)
    as_json = output.wants_json(words)
    try:
        args, settings = _parse(words)
        as_json = bool(getattr(args, "json", False))
        on_progress, close = output.terminal_progress(not as_json and sys.stderr.isatty())
        try:
            result = args.func(args, settings, on_progress)
        finally:
            close()
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except UsageError as err:
        output.emit_error("usage", str(err), as_json)
        return err.exit_code
    except WorkbenchError as err:
        output.emit_error(type(err).__name__, str(err), as_json)
        return err.exit_code
    except KeyboardInterrupt:
        output.emit_error("KeyboardInterrupt", "interrupted", as_json)
        return 130
    except Exception as err:  # a bug: the JSON error for scripts, the traceback for us
        if as_json:
            output.emit_error(type(err).__name__, f"unexpected error: {err}", as_json)
        raise
    if result is not None:
        output.emit(result, as_json)
    return 0
