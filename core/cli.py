"""Command line: `python -m core <command>`. Each command prints one JSON object with --json.

Expected problems go to stderr with exit status 2 (bad input, missing data), never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from core import catalog
from core.config import MAX_SERVE_WORKERS, Settings
from core.dataset import DatasetSpec
from core.errors import WorkbenchError
from core.progress import ProgressFn


def _terminal_progress(enabled: bool) -> tuple[ProgressFn, Callable[[], None]]:
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


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- commands
def cmd_prepare(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.data import preparation

    s = preparation.prepare(settings, test_size=args.test_size, seed=args.seed, on_progress=on_progress)
    return {
        "rows": s.rows,
        "train_rows": s.train_rows,
        "test_rows": s.test_rows,
        "prod_rows": s.prod_rows,
        "dropped_missing": s.dropped_missing,
        "duplicates": s.duplicates,
        "positive_rate": s.positive_rate,
        "mlflow_run_id": s.mlflow_run_id,
        "seconds": s.seconds,
    }


def add_prepare(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("prepare", help="acquire the raw data, filter, split and log PreparacaoDados")
    p.add_argument("--test-size", type=float, default=None, help="test share (default 0.2)")
    p.add_argument("--seed", type=int, default=None, help="split seed (default 42)")
    p.set_defaults(func=cmd_prepare)


# --------------------------------------------------------------------------- serving (issue 4)
def cmd_serve(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    import signal

    from core.serving import server

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and a plain `kill` both stop the server (it runs in its own process group)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    port = settings.serve_port if args.port is None else args.port
    workers = settings.serve_workers if args.workers is None else args.workers
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
    return {"url": f"http://{settings.serve_host}:{port}", "running": final.running}


def add_serve(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("serve", help="serve the champion with `mlflow models serve` until interrupted")
    p.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 5001)")
    p.add_argument("--workers", type=int, choices=range(1, MAX_SERVE_WORKERS + 1), metavar="N", default=None,
                   help=f"uvicorn worker processes, 1-{MAX_SERVE_WORKERS} (default WORKBENCH_SERVE_WORKERS, "
                        "else 2 on two or more cores)")
    p.set_defaults(func=cmd_serve)


def cmd_predict(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.data import rules
    from core.serving import predict

    try:
        row = json.loads(args.json)
    except json.JSONDecodeError as err:
        raise rules.InvalidInputError(f"--json is not valid JSON ({err}); give one object like "
                                      f"'{json.dumps(settings.dataset.example_row())}'.") from err
    if not isinstance(row, dict):
        raise rules.InvalidInputError(f"--json must be one JSON object with the features {', '.join(settings.features)}.")
    threshold = settings.threshold if args.threshold is None else args.threshold
    pred = predict.predict_one(settings, row, url=args.url, threshold=threshold, log_source="cli")
    # the probability under the dataset's own name (e.g. "proba_made") and a neutral one
    return {settings.dataset.proba_column: pred.proba, "proba": pred.proba, "label": pred.label,
            "model_version": pred.model_version, "latency_ms": pred.latency_ms}


def add_predict(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("predict", help=f"score one {spec.row_noun} on the running model server")
    # dest "json" holds the row: the command always prints one JSON object
    p.add_argument("--json", dest="json", required=True,
                   help=f"the {spec.row_noun} as a JSON object, e.g. '{json.dumps(spec.example_row())}'")
    p.add_argument("--url", default=None, help="server address (default: the managed server)")
    p.add_argument("--threshold", type=float, default=None,
                   help=f"class threshold on {spec.proba_label} (default 0.5)")
    p.set_defaults(func=cmd_predict)


# --------------------------------------------------------------------------- drift (issue 6)
def cmd_drift(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.progress import Stopwatch

    clock = Stopwatch()
    from core.data import batches
    from core.monitoring import check

    if args.inference_log is not None:
        batch = check.inference_log_batch(settings, args.inference_log)
        source = "inference_log"
    elif args.batch is not None:
        batch = batches.read_batch(args.batch, settings)  # BatchError: exit 2, nothing written
        source = "cli"
    else:
        raise batches.BatchError(["batch: give --batch FILE or --inference-log N"], "the command")
    report = check.check(batch, settings, source=source, domain=not args.no_domain,
                              on_progress=on_progress)
    result = report.summary()
    result["seconds"] = round(clock.seconds, 3)
    return result


def add_drift(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("drift", help="check a production batch for drift and estimate model health "
                                     "(logs a Monitoramento run)")
    p.add_argument("--batch", default=None, help=f"parquet or CSV file (raw format or just the features "
                                                 f"{','.join(spec.features)}, with or without "
                                                 f"{spec.target.column})")
    p.add_argument("--inference-log", type=int, default=None, metavar="N",
                   help="check the last N requests of the Serve page's inference log instead")
    p.add_argument("--no-domain", action="store_true", help="skip the domain classifier")
    p.set_defaults(func=cmd_drift)


# --------------------------------------------------------------------------- retrain (issue 7)
def cmd_retrain(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.data import batch_store, batches
    from core.monitoring import history, retraining

    if args.batch:
        chosen = [batches.read_batch(path, settings) for path in args.batch]  # all validated first
        for b in chosen:
            batch_store.store(b, settings)
    else:
        chosen = [batches.read_batch(r.path, settings) for r in batch_store.list_batches(settings) if r.n_labelled]
    if args.if_needed:
        past = history.history(settings)
        f1 = past["est_f1"].dropna().tolist() if "est_f1" in past else []
        result = retraining.retrain_if_needed(settings, chosen, f1_history=f1, on_progress=on_progress)
    else:
        result = retraining.retrain(settings, chosen, reason="requested from the command line",
                                    on_progress=on_progress)
    return result.to_dict()


def add_retrain(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("retrain", help="train a challenger with production labels, gate it against the "
                                       "champion, log a Retreinamento run")
    p.add_argument("--if-needed", action="store_true",
                   help="apply the retraining policy first and retrain only when it says so (for cron/CI)")
    p.add_argument("--batch", action="append", default=None, metavar="FILE",
                   help="labelled batch file (repeatable); default: the stored batches with labels")
    p.set_defaults(func=cmd_retrain)


# --------------------------------------------------------------------------- Spark scoring (issue 9)
def cmd_apply_spark(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    """`apply --engine spark`: the same JSON as the local engine, computed on Spark."""
    from core.scoring import spark

    r = spark.score_spark(settings, args.batch, master=args.master, threshold=args.threshold,
                                  on_progress=on_progress)
    return {"rows": r.rows, "model_version": r.model_version, "path": r.path, "metrics": r.metrics,
            "output": r.output, "mlflow_run_id": r.mlflow_run_id, "seconds": r.seconds}


def add_spark_options(p: argparse.ArgumentParser) -> None:
    """--engine and --master of `apply` (Spark needs requirements-scale.txt and Java)."""
    p.add_argument("--engine", choices=["local", "spark"], default="local",
                   help="local: the model server or in-process (default); spark: mlflow spark_udf on a Spark "
                        "session, output as partitioned parquet (--via/--in-process do not apply)")
    p.add_argument("--master", default=None,
                   help="Spark master for --engine spark, e.g. local[2] or spark://host:7077 (default: "
                        "SPARK_MASTER, else Spark's configuration, i.e. local[*])")


# --------------------------------------------------------------------------- production scoring (issue 5)
def cmd_apply(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    if args.engine == "spark":
        return cmd_apply_spark(args, settings, on_progress)
    from core.scoring import local

    r = local.score(settings, batch=args.batch, via=args.via, threshold=args.threshold,
                      in_process=args.in_process, on_progress=on_progress)
    return {"rows": r.rows, "model_version": r.model_version, "path": r.path, "metrics": r.metrics,
            "output": r.output, "mlflow_run_id": r.mlflow_run_id, "seconds": r.seconds}


def add_apply(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("apply", help="score a production batch with the champion and log PipelineAplicacao")
    p.add_argument("--batch", default=None, help="parquet or CSV batch with the feature columns "
                                                 "(default: the prepared production data)")
    p.add_argument("--via", default=None, help="model server URL, e.g. http://127.0.0.1:5001 (default: the "
                                               "managed server when it runs, else in-process)")
    p.add_argument("--in-process", action="store_true", help="score in-process even when a server runs")
    p.add_argument("--threshold", type=float, default=None,
                   help=f"class threshold on {spec.proba_label} (default 0.5)")
    add_spark_options(p)
    p.set_defaults(func=cmd_apply)


# --------------------------------------------------------------------------- train (issue 3)
def cmd_train(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.modeling import training

    models = None if args.models is None else [m for m in args.models.split(",") if m.strip()]
    result = training.train(settings, models=models, n_iter=args.n_iter, folds=args.folds,
                            criterion=args.criterion, on_progress=on_progress)
    return result.to_dict()


def add_train(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    from core.modeling.candidates import (
        CRITERIA,
        DEFAULT_FOLDS,
        DEFAULT_MODELS,
        DEFAULT_N_ITER,
        MODELS,
    )

    p = sub.add_parser("train", help="tune candidates with PyCaret, log them to MLflow (Treinamento) and "
                                     "register the best as champion")
    p.add_argument("--models", default=None, metavar="ID,ID",
                   help=f"candidates (lr and dt always added; default {','.join(DEFAULT_MODELS)}); "
                        f"choose from {','.join(MODELS)}")
    p.add_argument("--n-iter", type=int, default=DEFAULT_N_ITER, help="tuning iterations per candidate")
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="stratified CV folds")
    p.add_argument("--criterion", default="log_loss", choices=list(CRITERIA),
                   help="test metric that picks the champion (default log_loss)")
    p.set_defaults(func=cmd_train)


# --------------------------------------------------------------------------- datasets
def cmd_dataset(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> Any:
    """`dataset list`: every known dataset with its state (the active one marked)."""
    from core.data import preparation
    from core.modeling import registry

    rows = []
    for name, path in catalog.available().items():
        spec = catalog.load(path)
        s = settings.replace(dataset=spec)
        champ = registry.champion(s) if preparation.is_prepared(s) else None
        rows.append({"name": spec.name, "title": spec.title, "active": spec.name == settings.dataset.name,
                     "target": spec.target.column, "features": list(spec.features),
                     "prepared": preparation.is_prepared(s), "champion": champ.version if champ else None,
                     "model_name": spec.model_name, "definition": str(path)})
    return rows


def add_dataset(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("dataset", help="the known datasets (definitions under datasets/NAME/dataset.toml)")
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list the datasets, their state and which one is active")
    listing.add_argument("--json", action="store_true", help="print exactly one JSON value on stdout")
    listing.set_defaults(func=cmd_dataset)


COMMANDS: list[Callable[[argparse._SubParsersAction, DatasetSpec], None]] = [
    add_prepare, add_serve, add_predict, add_drift, add_retrain, add_apply, add_train, add_dataset]


def build_parser(spec: DatasetSpec) -> argparse.ArgumentParser:
    """The command line; help texts and examples speak of the dataset `spec`."""
    parser = argparse.ArgumentParser(prog="python -m core", description=f"Workbench command line ({spec.title})")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="the dataset to work on (default WORKBENCH_DATASET, else kobe)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub, spec)
    for p in sub.choices.values():
        if not any(a.dest == "json" for a in p._actions) and p.prog.split()[-1] != "dataset":
            p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
        p.add_argument("--dataset", default=argparse.SUPPRESS, metavar="NAME", help="the dataset to work on")
    return parser


def _settings(argv: list[str] | None) -> Settings:
    """Settings for the dataset named by `--dataset` (before the full parse: help texts use it)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.dataset:
        return Settings.from_env(dataset=catalog.find(known.dataset))
    return Settings.from_env()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = _settings(argv)
    except WorkbenchError as err:
        sys.stderr.write(f"error: {err}\n")
        return err.exit_code
    args = build_parser(settings.dataset).parse_args(argv)
    show_bar = not args.json and sys.stderr.isatty()
    on_progress, close = _terminal_progress(show_bar)
    try:
        result = args.func(args, settings, on_progress)
    except WorkbenchError as err:
        close()
        sys.stderr.write(f"error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        close()
        sys.stderr.write("interrupted\n")
        return 130
    close()
    if result is not None:
        _emit(result, args.json)
    return 0
