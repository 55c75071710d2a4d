"""`prepare`, `train`, `apply`, `drift`, `retrain` and `dataset list` (`dataset add` and `use` are in
`datasets`): each a `cmd_*` that does the work and returns what is printed, and an `add_*` that
declares its options (checked on entry)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from core import catalog
from core.cli import options, output
from core.cli.options import UsageError
from core.config import Settings
from core.dataset import DatasetSpec
from core.progress import ProgressFn

MAX_INFERENCE_LOG_ROWS = 1_000_000  # `drift --inference-log N`: the last N logged rows, 1..this
FOLDS = (2, 20)  # the bounds `core.modeling.candidates.check_budget` accepts
N_ITER = (1, 200)


# --------------------------------------------------------------------------- prepare
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
        "task": s.task,
        "class_shares": s.class_shares,
        "target_stats": s.target_stats,
        "mlflow_run_id": s.mlflow_run_id,
        "seconds": s.seconds,
    }


def add_prepare(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("prepare", help="acquire the raw data, filter, split and log PreparacaoDados")
    p.add_argument("--test-size", type=options.fraction, default=None,
                   help="test share, strictly between 0 and 1 (default 0.2)")
    p.add_argument("--seed", type=options.seed, default=None,
                   help=f"split seed, a whole number from 0 to {options.SEED_MAX} (default 42)")
    p.set_defaults(func=cmd_prepare)


# --------------------------------------------------------------------------- drift
def cmd_drift(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    if args.inference_log is None and args.batch is None:
        raise UsageError("python -m core drift: give --batch FILE or --inference-log N")
    if args.drop_invalid and args.batch is None:
        raise UsageError("python -m core drift: --drop-invalid applies to --batch FILE only")
    if args.engine == "spark" and (args.batch is None or args.drop_invalid):
        raise UsageError("python -m core drift: --engine spark checks a parquet --batch PATH (a file, a folder or "
                         "a glob), without --drop-invalid")
    if args.master is not None and args.engine != "spark":
        raise UsageError("python -m core drift: --master applies to --engine spark")
    if args.engine == "spark" and (args.chunk_size is not None or args.chunk_period is not None):
        raise UsageError("python -m core drift: --chunk-size and --chunk-period apply to the local engine (leave out "
                         "--engine spark, or check the batch whole on Spark)")
    from core.progress import Stopwatch

    clock = Stopwatch()
    chunking = None
    if args.chunk_size is not None or args.chunk_period is not None:
        from core.monitoring.chunks import Chunking

        chunking = Chunking(size=args.chunk_size, period=args.chunk_period)
        if chunking.period is not None and args.batch is not None and not settings.dataset.time_column:
            raise UsageError(f"python -m core drift: --chunk-period splits a batch by the time column its dataset "
                             f"definition names, and {settings.dataset.name}'s names none: add `time_column = "
                             f"\"COLUMN\"` to its dataset.toml (a column saying when each row happened), or "
                             f"use --chunk-size K")
    from core.data import batches
    from core.modeling import registry
    from core.monitoring import check, run_log, stream

    # the champion, read once (without MLflow on a SQLite store): its feature set and threshold
    model = registry.champion(settings)
    dataset, settings = settings, model.scoped(settings) if model else settings
    # the MLflow run is queued and logged by a detached process after the output (`run_log`):
    # MLflow's import and store cost more than the check itself
    log = True if args.wait_for_mlflow else "queue"
    if args.engine == "spark":
        from core.monitoring import spark_drift

        if model is None:
            raise TrackingError(registry.NO_CHAMPION)
        report = spark_drift.check_spark(args.batch, dataset, model=model, master=args.master,
                                         domain=not args.no_domain, log=log, on_progress=on_progress)
        batch = None
    elif args.inference_log is not None:
        batch = check.inference_log_batch(settings, args.inference_log)
        source = "inference_log"
    elif (model is not None and not args.drop_invalid and chunking is None
          and stream.streamable(args.batch, settings)):
        # a parquet file is read, validated and scored in record batches: bounded memory, same report
        report = stream.check_file(args.batch, dataset, model=model, source="cli", domain=not args.no_domain,
                                   log=log, on_progress=on_progress)
        batch = None
    else:  # BatchError: exit 2, nothing written
        batch = batches.read_batch(args.batch, settings, drop_invalid=args.drop_invalid)
        source = "cli"
        if batch.n_dropped:
            reasons = "; ".join(f"{reason}: {n:,}" for reason, n in batch.dropped.items())
            output.note(f"--drop-invalid left out {batch.n_dropped:,} row(s) of {batch.name} ({reasons})")
    if model is None:  # the batch was read first: its problems come before this one
        raise TrackingError(registry.NO_CHAMPION)
    if batch is not None:
        report = check.check(batch, dataset, model=model, source=source, domain=not args.no_domain, log=log,
                             chunking=chunking, on_progress=on_progress)
    if report.mlflow_pending:
        try:
            run_log.spawn_drain(settings)  # waits for this process to exit, then logs the run
        except OSError as err:  # the run stays queued: the next check logs it
            output.note(f"the Monitoramento run stays queued ({err}); the next drift check logs it")
    result = report.summary()
    result["seconds"] = round(clock.seconds, 3)
    return result


def add_drift(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("drift", help="check a production batch for drift and estimate model health "
                                     "(logs a Monitoramento run, after the output unless --wait-for-mlflow)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--batch", type=options.path, default=None,
                       help=f"parquet or CSV file (raw format or just the features {','.join(spec.features)}, "
                            f"with or without {spec.target.column})")
    which.add_argument("--inference-log", type=options.whole(1, MAX_INFERENCE_LOG_ROWS), default=None, metavar="N",
                       help=f"check the last N logged rows (1-{MAX_INFERENCE_LOG_ROWS:,}; one per scored row, "
                            f"not per request) of the model server's inference log instead")
    p.add_argument("--drop-invalid", action="store_true",
                   help="drop the rows that break the dataset's rules and check the rest, instead of refusing "
                        "the batch (with --batch)")
    p.add_argument("--no-domain", action="store_true", help="skip the domain classifier")
    chunk = p.add_mutually_exclusive_group()
    chunk.add_argument("--chunk-size", type=options.whole(1, MAX_INFERENCE_LOG_ROWS), default=None, metavar="K",
                       help="also judge the rows K by K, in order (`chunks` in the output: each chunk's drift, "
                            "estimate and verdict by the same policy)")
    chunk.add_argument("--chunk-period", type=options.period, default=None, metavar="PERIOD",
                       help="also judge the rows by period of time (15m, 1h, 1d, ...): by request time for "
                            "--inference-log, by the dataset definition's time_column for --batch"
                            + (f" ({spec.time_column})" if spec.time_column else " (this dataset names none)"))
    p.add_argument("--engine", choices=["local", "spark"], default="local",
                   help="local: in this process (default); spark: a parquet --batch (file, folder or glob) that may "
                        "not fit in memory, counted with Spark's aggregations (the estimate on a uniform sample "
                        "of about 1,000,000 rows)")
    p.add_argument("--master", type=options.master, default=None,
                   help="Spark master for --engine spark, e.g. local[2] or spark://host:7077 (default: "
                        "SPARK_MASTER, else Spark's configuration, i.e. local[*])")
    p.add_argument("--wait-for-mlflow", action="store_true",
                   help="log the Monitoramento run before printing (`mlflow_run_id` in the output) instead of "
                        "from a background process after it (`mlflow_pending`: the run tagged "
                        "workbench.check_id = the output's `check_id`)")
    p.set_defaults(func=cmd_drift)


# --------------------------------------------------------------------------- retrain
def cmd_retrain(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.data import batch_store, batches
    from core.modeling import registry
    from core.monitoring import history, retraining

    model = registry.champion(settings)  # read once: its feature set and threshold (None: refused later)
    dataset, settings = settings, model.scoped(settings) if model else settings
    notes: list = []
    if args.batch:
        chosen = [batches.read_batch(path, settings) for path in args.batch]  # all validated first
        for b in chosen:
            batch_store.store(b, settings)
    else:
        # a stored file that no longer reads is put aside with a note, never a failure
        chosen, notes = batch_store.read_stored(settings)
    if args.if_needed:
        past = history.history(settings)
        f1 = past["est_f1"].dropna().tolist() if "est_f1" in past else []
        result = retraining.retrain_if_needed(dataset, chosen, model, f1_history=f1, on_progress=on_progress,
                                              notes=notes)
    else:
        result = retraining.retrain(dataset, chosen, model, reason="requested from the command line",
                                    on_progress=on_progress, notes=notes)
    return result.to_dict()


def add_retrain(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("retrain", help="train a challenger with production labels, gate it against the "
                                       "champion, log a Retreinamento run")
    p.add_argument("--if-needed", action="store_true",
                   help="apply the retraining policy first and retrain only when it says so (for cron/CI)")
    p.add_argument("--batch", action="append", type=options.path, default=None, metavar="FILE",
                   help="labelled batch file (repeatable); default: the stored batches with labels")
    p.set_defaults(func=cmd_retrain)


# --------------------------------------------------------------------------- apply
def cmd_apply(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.modeling import registry

    model = registry.champion(settings)  # read once: its feature set and threshold (None: refused after the batch)
    if args.engine == "spark":
        from core.scoring import spark

        if args.output:
            raise options.UsageError("apply: --output writes one CSV or parquet file: it applies to --engine local "
                                     "(Spark writes a partitioned parquet dataset of its own)")
        r = spark.score_spark(settings, args.batch, master=args.master, threshold=args.threshold,
                              on_progress=on_progress, model=model)
    else:
        from core.scoring import local

        r = local.score(settings, model, batch=args.batch, via=args.via, threshold=args.threshold,
                        in_process=args.in_process, on_progress=on_progress, output=args.output)
    if getattr(r, "stale", False):  # scored by a server that serves another version than the champion
        print(f"warning: the model server at {r.url} serves v{r.model_version}, not the champion: restart it "
              "(Serve page, or `python -m core serve stop` then `python -m core serve`).", file=sys.stderr)
    if not r.checked:  # as `predict`: a server that does not say what it serves is used, with a warning
        from core.serving.predict import UNCHECKED_WARNING

        print(f"warning: {UNCHECKED_WARNING.format(url=r.url)}", file=sys.stderr)
    # the task kind and its batch figures (binary: predicted_positive_share; multiclass: class_shares;
    # regression: mean_prediction, mean_interval_width) after the fields every kind has
    return {"rows": r.rows, "model_version": r.model_version, "path": r.path, "metrics": r.metrics,
            "output": r.output, "mlflow_run_id": r.mlflow_run_id, "seconds": r.seconds,
            "stale": getattr(r, "stale", False), "threshold": getattr(r, "threshold", None),
            "checked": r.checked,
            "task": getattr(r, "task", model.task if model else settings.dataset.task), **getattr(r, "summary", {})}


def add_apply(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("apply", help="score a production batch with the champion and log PipelineAplicacao")
    p.add_argument("--batch", type=options.path, default=None,
                   help="parquet or CSV batch with the feature columns (default: the prepared production data)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--via", type=options.url, default=None,
                     help="model server URL, e.g. http://127.0.0.1:5001 (default: the managed server when it "
                          "runs, else in-process)")
    how.add_argument("--in-process", action="store_true", help="score in-process even when a server runs")
    p.add_argument("--threshold", type=options.threshold, default=None,
                   help=f"class threshold on {spec.proba_label}, strictly between 0 and 1 (default: the version's own threshold)")
    p.add_argument("--engine", choices=["local", "spark"], default="local",
                   help="local: the model server or in-process (default); spark: mlflow spark_udf on a Spark "
                        "session, output as partitioned parquet (--via/--in-process do not apply)")
    p.add_argument("--master", type=options.master, default=None,
                   help="Spark master for --engine spark, e.g. local[2] or spark://host:7077 (default: "
                        "SPARK_MASTER, else Spark's configuration, i.e. local[*])")
    p.add_argument("--output", type=options.scored_output, default=None, metavar="FILE",
                   help="write the scored rows to FILE, CSV or parquet by its extension (.csv, .parquet; its "
                        "folder is created when missing) instead of the default output, which is left alone")
    p.set_defaults(func=cmd_apply)


# --------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.modeling import training

    models = None if args.models is None else [m for m in args.models.split(",") if m.strip()]
    settings = settings.replace(dataset=settings.dataset.with_feature_set(args.feature_set))
    task = settings.dataset.task
    if task != "binary" and (args.threshold_rule is not None or args.cost_ratio is not None):
        raise UsageError(f"python -m core train: --threshold-rule and --cost-ratio apply to a binary target; "
                         f"{settings.dataset.name}'s target is {task}")
    if args.interval is not None:
        if task != "regression":
            raise UsageError(f"python -m core train: --interval applies to a regression target; "
                             f"{settings.dataset.name}'s target is {task}")
        settings = settings.replace(promotion=dataclasses.replace(settings.promotion, interval_level=args.interval))
    if args.threshold_rule is not None or args.cost_ratio is not None:
        rule = args.threshold_rule or ("cost" if args.cost_ratio is not None else settings.promotion.threshold_rule)
        if rule != "cost" and args.cost_ratio is not None:
            raise UsageError("python -m core train: --cost-ratio goes with --threshold-rule cost")
        settings = settings.replace(promotion=settings.promotion.with_rule(rule, args.cost_ratio))
    result = training.train(settings, models=models, n_iter=args.n_iter, folds=args.folds,
                            criterion=args.criterion, on_progress=on_progress, promote=args.promote)
    if not result.promoted:  # the JSON says it too; a person at a terminal should not miss it
        print(f"Champion unchanged: {result.reason}. Version {result.challenger.version} is registered as "
              "`challenger`; `--promote always` (or Compare > Promote) makes it champion anyway.", file=sys.stderr)
    return result.to_dict()


def add_train(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    from core.modeling.candidates import (
        DEFAULT_FOLDS,
        DEFAULT_N_ITER,
        PROMOTE_MODES,
        always_for,
        default_models_for,
        models_for,
    )
    from core.modeling.tasks import task_kind

    p = sub.add_parser("train", help="tune candidates with PyCaret, log them to MLflow (Treinamento) and "
                                     "register the best as champion")
    p.add_argument("--models", default=None, metavar="ID,ID",
                   help=f"candidates ({' and '.join(always_for(spec.task))} always added; default "
                        f"{','.join(default_models_for(spec.task))}); choose from {','.join(models_for(spec.task))}")
    p.add_argument("--n-iter", type=options.whole(*N_ITER), default=DEFAULT_N_ITER, metavar="N",
                   help=f"tuning iterations per candidate, {N_ITER[0]}-{N_ITER[1]} (default {DEFAULT_N_ITER})")
    p.add_argument("--folds", type=options.whole(*FOLDS), default=DEFAULT_FOLDS, metavar="K",
                   help=f"CV folds (stratified for a classifier), {FOLDS[0]}-{FOLDS[1]} (default {DEFAULT_FOLDS})")
    kind = task_kind(spec.task)
    p.add_argument("--criterion", default=None, choices=list(kind.criteria),
                   help="metric that picks the best candidate (cross-validated) and gates it against the "
                        f"champion (on the test split); a {kind.name} target takes {', '.join(kind.criteria)} "
                        f"(default {kind.criterion})")
    p.add_argument("--interval", type=options.fraction, default=None, metavar="LEVEL",
                   help="a regression's prediction interval: the share of rows it should cover, strictly between "
                        "0 and 1 (default 0.9; conformal, from cross-validated residuals)")
    p.add_argument("--promote", default="gate", choices=list(PROMOTE_MODES),
                   help="gate: the best candidate becomes champion only when it beats the current one on the "
                        "test split (default); always: it becomes champion whatever the gate says")
    p.add_argument("--feature-set", default=None, choices=list(spec.feature_set_names),
                   help="the dataset's feature set to train on (default: default)")
    p.add_argument("--threshold-rule", default=None, choices=["accuracy", "f1", "cost"],
                   help="a binary target only: how each version's decision threshold is chosen on "
                        "cross-validated predictions: "
                        "accuracy (the fewest errors, never below always answering the majority class there; "
                        "the default), f1 (maximise F1: with common positives and a weak model it calls every "
                        "row positive) or cost (minimise cost-ratio x false positives + false negatives); "
                        "each candidate's below_majority in the JSON says whether its test accuracy is below "
                        "the majority class's, and why")
    p.add_argument("--cost-ratio", type=options.ratio, default=None, metavar="R",
                   help="with --threshold-rule cost: what a false positive costs relative to a false negative "
                        "(default 1: every error counts the same, i.e. the most accurate threshold)")
    p.set_defaults(func=cmd_train)


# --------------------------------------------------------------------------- datasets
def cmd_dataset(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> Any:
    """`dataset list`: every known dataset, built-in and added (`builtin` false), with its state
    (the active one marked); a definition that does not read is skipped with a note."""
    from core.data import preparation
    from core.dataset import DatasetError
    from core.modeling import registry

    builtin = catalog.available()
    rows = []
    for name, path in sorted(catalog.available([catalog.user_dir(settings.home)]).items()):
        try:
            spec = catalog.load(path)
        except DatasetError as err:
            output.note(f"dataset {name!r} left out of the list: {err}")
            continue
        s = settings.replace(dataset=spec)
        champ = registry.champion(s) if preparation.is_prepared(s) else None
        rows.append({"name": spec.name, "title": spec.title, "active": spec.name == settings.dataset.name,
                     "target": spec.target.column, "task": spec.task, "classes": list(spec.target.names),
                     "features": list(spec.features),
                     "prepared": preparation.is_prepared(s), "champion": champ.version if champ else None,
                     "model_name": spec.model_name, "definition": str(path), "builtin": builtin.get(name) == path})
    return rows


def add_dataset(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    from core.cli import datasets

    p = sub.add_parser("dataset", help="the known datasets (definitions under datasets/NAME/dataset.toml and "
                                       "<home>/data/datasets/NAME/dataset.toml): list, add, use")
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list the datasets, their state and which one is active")
    listing.add_argument("--json", action="store_true", help="print exactly one JSON value on stdout")
    listing.set_defaults(func=cmd_dataset)
    datasets.add_actions(actions)  # `dataset add FILE ...`, `dataset use NAME`
