"""`serve` and `predict`: the model server in the foreground, and one row scored on it."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from core.cli import options
from core.cli.options import UsageError
from core.config import MAX_SERVE_WORKERS, Settings
from core.dataset import DatasetSpec
from core.progress import ProgressFn

# the hidden option that `predict --json '{...}'` (the deprecated form) is rewritten to
LEGACY_ROW = "--legacy-json-row"
_PREDICT_VALUES = ("--input", "--url", "--threshold", "--dataset", LEGACY_ROW)


# --------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.serving import server

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    port = settings.serve_port if args.port is None else args.port
    workers = settings.serve_workers if args.workers is None else args.workers
    # Ctrl-C and a plain `kill` both stop the server (it runs in its own process group)
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sys.stderr.write(f"starting the model server on {settings.serve_host}:{port} ({workers} worker(s)) ...\n")
        try:
            started = server.start(settings, port=port, workers=workers)
            sys.stderr.write(
                f"serving {started.model_uri} (version {started.model_version}) at {started.url}; "
                f"press Ctrl-C to stop\n"
            )
            final = server.wait(settings)
            sys.stderr.write(f"the model server exited; last lines of its log:\n{server.log_tail(settings)}\n")
        except KeyboardInterrupt:
            final = server.stop(settings)
            sys.stderr.write("stopped\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return {"url": f"http://{settings.serve_host}:{port}", "running": final.running}


def add_serve(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("serve", help="serve the champion with `mlflow models serve` until interrupted")
    p.add_argument("--port", type=options.port, default=None, metavar="PORT",
                   help="port on 127.0.0.1, 1-65535 (default WORKBENCH_SERVE_PORT, else 5001)")
    p.add_argument("--workers", type=options.whole(1, MAX_SERVE_WORKERS), metavar="N", default=None,
                   help=f"uvicorn worker processes, 1-{MAX_SERVE_WORKERS} (default WORKBENCH_SERVE_WORKERS, "
                        "else 2 on two or more cores)")
    p.set_defaults(func=cmd_serve)


# --------------------------------------------------------------------------- predict
def legacy_predict_row(argv: list[str], command_at: int) -> list[str]:
    """`argv` with the deprecated `predict --json '{...}'` (a value right after --json: predict
    takes no positional argument, so it can only be the row) rewritten to `--json` plus the
    hidden LEGACY_ROW option; any other command line unchanged."""
    out = argv[:command_at + 1]
    i = command_at + 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            out += argv[i:]
            break
        if word.startswith("--json="):
            out += ["--json", LEGACY_ROW, word[len("--json="):]]
        elif word == "--json" and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out += ["--json", LEGACY_ROW, argv[i + 1]]
            i += 1
        elif word in _PREDICT_VALUES and i + 1 < len(argv):
            out += [word, argv[i + 1]]
            i += 1
        else:
            out.append(word)
        i += 1
    return out


def cmd_predict(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.serving import predict

    spec = settings.dataset
    if args.legacy_row is not None and args.input is not None:
        raise UsageError("python -m core predict: give the row once, with --input (the deprecated "
                         "`--json '{...}'` also gives it)")
    option, text = ("--json", args.legacy_row) if args.legacy_row is not None else ("--input", args.input)
    if text is None:
        raise UsageError(f"python -m core predict: give the {spec.row_noun} with --input "
                         f"'{json.dumps(spec.example_row())}' or --input @FILE.json (the deprecated "
                         f"`--json '{{...}}'` also works)")
    row = predict.load_row(text, option, spec.example_row())
    settings = _row_settings(settings, row)
    spec = settings.dataset
    # InvalidInputError before the address is looked up
    spec.rules.validate_row(row, what=spec.row_noun, allow_unseen=args.allow_unseen)
    pred = predict.predict_one(settings, row, url=args.url, threshold=args.threshold, log_source="cli",
                               allow_unseen=args.allow_unseen)
    # the probability under the dataset's own name (e.g. "proba_made") and a neutral one
    return {spec.proba_column: pred.proba, "proba": pred.proba, "label": pred.label,
            "model_version": pred.model_version, "latency_ms": pred.latency_ms}


def _row_settings(settings: Settings, row: dict[str, Any]) -> Settings:
    """The settings seen through the feature set whose columns the row gives exactly (the served
    model checks them again); when none matches, through the champion's set, so that the refusal
    names the champion's missing or extra columns. Matching first spares a registry look-up
    (about 1.5 s of MLflow start-up) on every `predict`."""
    chosen = settings.dataset.feature_set_for(row)
    if chosen is not None:
        return settings.replace(dataset=settings.dataset.with_feature_set(chosen))
    from core.modeling import registry

    return registry.champion_settings(settings)


def add_predict(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    example = json.dumps(spec.example_row())
    p = sub.add_parser("predict", help=f"score one {spec.row_noun} on the running model server")
    p.add_argument("--input", default=None, metavar="JSON|@FILE",
                   help=f"the {spec.row_noun} as a JSON object, e.g. '{example}', or @FILE holding one")
    p.add_argument("--json", action="store_true",
                   help=f"print exactly one JSON object on stdout. Deprecated: `--json '{{...}}'` (a JSON "
                        f"object right after --json) still gives the {spec.row_noun}, as --input '{{...}}' "
                        f"--json would")
    p.add_argument(LEGACY_ROW, dest="legacy_row", default=None, help=argparse.SUPPRESS)
    p.add_argument("--url", type=options.url, default=None,
                   help="server address, http(s)://host[:port] (default: the managed server)")
    p.add_argument("--threshold", type=options.threshold, default=None,
                   help=f"class threshold on {spec.proba_label}, strictly between 0 and 1 (default 0.5)")
    p.add_argument("--allow-unseen", action="store_true",
                   help="score a category never seen in training as an unknown category instead of refusing it")
    p.set_defaults(func=cmd_predict)
