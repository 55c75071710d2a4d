"""`serve` and `predict`: the model server in the foreground (`serve status`, `serve stop`, `serve
stats`), and one row scored on it."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from core.cli import options, output
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

    port = args.port  # None: the dataset's own port (remembered, else a free one; server.start)
    workers = settings.serve_workers if args.workers is None else args.workers
    startup_s = since_launch = None
    url = None
    # Ctrl-C and a plain `kill` both stop the server (it runs in its own process group)
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        where = f"{settings.serve_host}:{port}" if port is not None else f"{settings.serve_host}, its own port"
        sys.stderr.write(f"starting the model server of dataset {settings.dataset.name!r} on {where} "
                         f"({workers} worker(s)) ...\n")
        try:
            started = server.start(settings, port=port, workers=workers, started_by=server.BY_CLI)
            startup_s, url = started.startup_s, started.url
            since_launch = _seconds_since_launch()
            launched = f" ({since_launch:.1f} s since the command started)" if since_launch is not None else ""
            ready = f"ready in {startup_s:.1f} s{launched}; " if startup_s is not None else "already running; "
            sys.stderr.write(
                f"serving {started.model_uri} (version {started.model_version}) at {started.url}; "
                f"{ready}press Ctrl-C to stop\n"
            )
            sys.stderr.flush()
            final = server.wait(settings)
            sys.stderr.write(f"the model server exited; last lines of its log:\n{server.log_tail(settings)}\n")
        except KeyboardInterrupt:
            final = server.stop(settings)
            sys.stderr.write("stopped\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return {"url": url or final.url, "running": final.running, "startup_s": startup_s,
            "dataset": settings.dataset.name,
            "since_launch_s": None if since_launch is None else round(since_launch, 2)}


def _seconds_since_launch() -> float | None:
    """Seconds since this process started (Python and the workbench's imports included), or None
    off Linux. Against the clock since boot: the process's start tick is exact, whereas its
    wall-clock start time rests on a boot time rounded to the second."""
    if not hasattr(time, "CLOCK_BOOTTIME"):
        return None
    me = psutil.Process()
    return time.clock_gettime(time.CLOCK_BOOTTIME) - (me.create_time() - psutil.boot_time())


def cmd_serve_status(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.serving import server

    if getattr(args, "all", False):
        every = server.status_all(settings, with_champion=True)
        return {"servers": [_status_fields(now) for now in every],
                "running": sum(1 for now in every if now.running)}
    now = server.status(settings, with_champion=True)
    if now.stale:
        output.note(f"the model server is stale ({now.in_step_text}): restart it with `python -m core serve stop` "
                    f"and `python -m core serve`, or with one click on the Serve page.")
    return _status_fields(now)


def _status_fields(now: Any) -> dict[str, Any]:
    """One server's `serve status` fields (a `server.ServerStatus`)."""
    return {"running": now.running, "pid": now.pid, "port": now.port, "url": now.url,
            "model_version": now.model_version, "champion_version": now.champion_version, "stale": now.stale,
            "uptime_s": now.uptime_s, "startup_s": now.startup_s, "workers": now.workers,
            "started_by": now.started_by, "started_at": now.started_at, "log_path": now.log_path,
            "dataset": now.dataset}


def cmd_serve_stop(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.serving import server

    if args.all:
        found = server.stop_all(settings, started_by=server.BY_APP if args.app_only else None)
    else:
        before = server.status(settings)
        server.stop(settings)
        found = [before] if before.running else []
    return {"stopped": [{"dataset_runtime": str(Path(s.log_path).parent), "pid": s.pid, "port": s.port,
                         "model_version": s.model_version, "started_by": s.started_by} for s in found],
            "running": False}


def cmd_serve_stats(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.monitoring import ops

    try:
        minutes = ops.parse_window(args.window)
    except ops.WindowError as err:
        raise UsageError(f"python -m core serve stats: {err}") from None
    report = ops.stats(settings, minutes)
    if report.capture.get("write_failures") or report.capture.get("dropped"):
        output.note(f"the server's capture failed to write {report.capture['write_failures']} time(s) and dropped "
                    f"{report.capture['dropped']} request(s); last error: {report.capture.get('last_error')}")
    return report.to_dict()


def add_serve(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("serve", help="serve the champion until interrupted (`serve status`, `serve stop`: "
                                     "see or stop the managed model server)",
                       description="`serve [--port N] [--workers N]` serves the champion in the foreground until "
                                   "Ctrl-C; `serve status` and `serve stop` look at and stop the managed server "
                                   "(the one the Serve page or `serve` started).")
    p.add_argument("--port", type=options.port, default=None, metavar="PORT",
                   help="port on 127.0.0.1, 1-65535 (default WORKBENCH_SERVE_PORT, else the dataset's own: "
                        "the one its server last ran on when free, else a free one, 5001 for the first)")
    p.add_argument("--workers", type=options.whole(1, MAX_SERVE_WORKERS), metavar="N", default=None,
                   help=f"uvicorn worker processes, 1-{MAX_SERVE_WORKERS} (default WORKBENCH_SERVE_WORKERS, "
                        "else 2 on two or more cores)")
    p.set_defaults(func=cmd_serve)
    actions = p.add_subparsers(dest="serve_action", metavar="{status,stop,stats}", required=False,
                               parser_class=type(p))
    status = actions.add_parser("status", help="is the managed server running, which version it serves and "
                                               "the champion's, pid, port, uptime")
    status.add_argument("--all", action="store_true",
                        help="every dataset's server of this home: {\"servers\": [...], \"running\": N}")
    status.set_defaults(func=cmd_serve_status)
    stop = actions.add_parser("stop", help="stop the managed model server (and every process of it)")
    stop.add_argument("--all", action="store_true", help="the managed servers of every dataset of this home")
    stop.add_argument("--app-only", action="store_true",
                      help="with --all: only the servers the app's pages started (what the app's launcher "
                           "stops on exit), not a `serve` running in a terminal")
    stop.set_defaults(func=cmd_serve_stop)
    stats = actions.add_parser("stats", help="what the model server answered over a window: requests per minute, "
                                             "p50/p99 latency (also apart by request size: single rows, batches), refusals, "
                                             "share outside the training domain, "
                                             "versions served (from the inference log its capture writes)")
    stats.add_argument("--window", default="1h", metavar="DURATION",
                       help="how far back: 15m, 2h, 7d, ... or all (default 1h)")
    stats.set_defaults(func=cmd_serve_stats)
    for each in (status, stop, stats):
        each.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
        each.add_argument("--dataset", default=argparse.SUPPRESS, metavar="NAME", help="the dataset to work on")


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
    model = predict.answering_model(settings)  # read once (milliseconds on SQLite): its inputs, threshold
    spec = predict.row_inputs(settings, row, model)
    # InvalidInputError before any request
    spec.rules.validate_row(row, what=spec.row_noun, allow_unseen=args.allow_unseen)
    pred = predict.predict_one(settings, row, model, url=args.url, threshold=args.threshold, log_source="cli",
                               allow_unseen=args.allow_unseen, explain=args.explain)
    if pred.stale:
        sys.stderr.write(f"warning: {predict.stale_warning(pred.model_version, pred.champion_version, pred.url)}\n")
    if not pred.checked:
        sys.stderr.write(f"warning: {predict.UNCHECKED_WARNING.format(url=pred.url)}\n")
    if args.explain and pred.explanation is None:  # printed as null: the answer itself stands
        from core.serving.client import NO_EXPLANATIONS

        sys.stderr.write(f"warning: {NO_EXPLANATIONS}\n")
    # asked with --explain: {"base_value", "contributions": {feature: value}, "scale", "output"}
    explained = {"explanation": pred.explanation} if args.explain else {}
    common = {**explained, "model_version": pred.model_version, "latency_ms": pred.latency_ms,
              "server_ms": pred.server_ms, "network_ms": pred.network_ms,
              "champion_version": pred.champion_version, "stale": pred.stale,
              "checked": pred.checked, "dataset": settings.dataset.name, "url": pred.url, "task": pred.task}
    if pred.task == "regression":  # the value and its interval
        return {"prediction": pred.prediction, "interval": list(pred.interval) if pred.interval else None,
                "interval_level": pred.interval_level, **common}
    if pred.task == "multiclass":  # the most probable class by name, every class's probability
        return {"label": pred.class_name, "probabilities": pred.probabilities, "proba": pred.proba,
                "class": pred.class_value, "class_name": pred.class_name, "class_index": pred.label, **common}
    # the probability under the dataset's own name (e.g. "proba_made") and a neutral one; the class
    # as the model's label (1 = the positive class), as the data holds it and by its name
    return {spec.proba_column: pred.proba, "proba": pred.proba, "label": pred.label,
            "class": pred.class_value, "class_name": pred.class_name,
            "model_version": pred.model_version, "latency_ms": pred.latency_ms,
            "server_ms": pred.server_ms, "network_ms": pred.network_ms,
            "champion_version": pred.champion_version, "stale": pred.stale, "threshold": pred.threshold,
            "checked": pred.checked, "dataset": settings.dataset.name, "url": pred.url, "task": pred.task,
            **explained}


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
                   help=f"class threshold on {spec.proba_label}, strictly between 0 and 1 (default: the version's own threshold)")
    p.add_argument("--allow-unseen", action="store_true",
                   help="score a category never seen in training as an unknown category instead of refusing it")
    p.add_argument("--explain", action="store_true",
                   help="add the answer's explanation: each feature's contribution, the base value and their "
                        "scale (log_odds, probability, value; per class for a multiclass model)")
    p.set_defaults(func=cmd_predict)
