"""`dataset add` and `dataset use`: bring a table in as a dataset, choose the home's active one.

`dataset add FILE --name NAME --target COLUMN` infers a definition from the table (the target's
task kind too: binary, multiclass or regression; `--task` chooses it) and saves both under
`<home>/data/datasets/NAME/` (`core.data.dataset_store.add`); it prints what was inferred and
where it was saved (one JSON object with --json). `dataset use NAME` makes NAME the dataset that
every command and the app work on by default (`core.catalog.set_active`). A refusal exits 2 with
one paragraph and saves nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from core import catalog
from core.cli import options
from core.cli.options import UsageError
from core.config import Settings
from core.dataset import TASKS
from core.progress import ProgressFn


# --------------------------------------------------------------------------- dataset add
def cmd_add(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any] | None:
    """Infer a definition from FILE and save the dataset; the summary as JSON, or as text."""
    from core.data import dataset_store

    features = None
    if args.features is not None:
        features = [f.strip() for f in args.features.split(",") if f.strip()]
        if not features:
            raise UsageError("python -m core dataset add: --features needs column names, e.g. --features a,b,c")
    result = dataset_store.add(settings.home, args.file, args.name, args.target, positive=args.positive,
                               features=features, prod_where=args.prod_where, replace=args.replace,
                               title=args.title, task=args.task)
    if args.json:
        return result.to_dict()
    sys.stdout.write(added_text(result.to_dict()))
    return None


def added_text(result: dict[str, Any]) -> str:
    """What `dataset add` prints without --json: the inference and where it was saved."""
    inference = result["inference"] or {}
    previous = result.get("previous_task")
    changed = f" (it was a {previous} dataset, now {result['task']})" if previous and previous != result["task"] else ""
    lines = [f"{'Replaced' if result['replaced'] else 'Added'} dataset {result['name']!r}{changed}: "
             f"{result['rows']:,} rows ({result['labelled_rows']:,} labelled, {result['unlabelled_rows']:,} "
             "unlabelled)."]
    if inference.get("task_note"):
        lines.append(inference["task_note"][0].upper() + inference["task_note"][1:] + ".")
    if inference.get("positive_note"):
        lines.append(inference["positive_note"][0].upper() + inference["positive_note"][1:] + ".")
    if result["prod_rows"] is not None:
        lines.append(f"Production rows: {result['prod_rows']:,} (dev rows: {result['dev_rows']:,}).")
    else:
        lines.append("No production rows set apart (use --prod-where EXPR to set some apart).")
    lines.append(f"Features ({len(result['features'])}):")
    lines += [f"  {name:<24} {kind}" for name, kind in result["features"].items()]
    excluded = inference.get("excluded", [])
    if excluded:
        lines.append(f"Left out ({len(excluded)}):")
        lines += [f"  {e['column']:<24} {e['reason']}" for e in excluded]
    if result["warnings"]:
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in result["warnings"]]
    if result.get("kept"):
        lines.append(f"Kept in place in {result['folder']} (not replaced): {', '.join(result['kept'])}.")
    lines += [f"Saved the definition to {result['definition_path']}",
              f"  and the table to {result['data_path']} (SHA-256 {result['sha256'][:12]}...).",
              f"Next: python -m core dataset use {result['name']}   (or --dataset {result['name']} on any command)"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- dataset use
def cmd_use(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any] | None:
    """Make NAME the home's active dataset."""
    path = catalog.set_active(settings.home, args.name)
    spec = catalog.find(args.name, [catalog.user_dir(settings.home)])
    overridden = os.environ.get("WORKBENCH_DATASET", "").strip()
    result = {"active": spec.name, "title": spec.title, "file": str(path),
              "overridden_by": "WORKBENCH_DATASET" if overridden and overridden != spec.name else None}
    if args.json:
        return result
    note = (f" Note: WORKBENCH_DATASET={overridden} is set and takes precedence in this environment."
            if result["overridden_by"] else "")
    sys.stdout.write(f"{spec.name!r} ({spec.title}) is now the active dataset (kept in {path}).{note}\n")
    return None


# --------------------------------------------------------------------------- parsers
def add_actions(actions: argparse._SubParsersAction) -> None:
    """Declare `dataset add` and `dataset use` under the `dataset` command."""
    p = actions.add_parser("add", help="infer a definition from a CSV or parquet table and save it as a dataset")
    p.add_argument("file", type=options.path, metavar="FILE", help="the table: a CSV (comma, semicolon, tab or "
                   "pipe separated) or parquet file")
    p.add_argument("--name", required=True, metavar="NAME",
                   help="the dataset's name: lower-case letters, digits, '-' or '_' (e.g. churn-2024)")
    p.add_argument("--target", required=True, metavar="COLUMN",
                   help="the column to predict: two classes (binary), 3 to 50 classes (multiclass) or a number "
                        "(regression)")
    p.add_argument("--task", default=None, choices=list(TASKS),
                   help="the task kind (default: inferred from the target: two values binary; 3 to 50 text values "
                        "or few whole numbers multiclass; other numbers regression); refused when the target does "
                        "not fit it")
    p.add_argument("--positive", default=None, metavar="VALUE",
                   help="binary targets: the target value that is the positive class (default: the minority class)")
    p.add_argument("--features", default=None, metavar="A,B,C",
                   help="exactly these columns as features (default: every column that is not left out)")
    p.add_argument("--prod-where", default=None, metavar="EXPR",
                   help="a row filter setting production rows apart: comparisons (==, !=, <, <=, >, >=, in [...]) joined by and/or/not, e.g. 'year >= 2024' (default: none); nothing in it is run as code")
    p.add_argument("--title", default=None, help="a title for the dataset (default: from its name)")
    p.add_argument("--replace", action="store_true", help="replace an existing dataset of that name: its table, definition and "
                   "prepared data (its inference log, batches and drift history stay); refused while its model "
                   "server runs")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=cmd_add)
    u = actions.add_parser("use", help="make a dataset the active one (what commands and the app use by default)")
    u.add_argument("name", metavar="NAME", help="a dataset listed by `dataset list`")
    u.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    u.set_defaults(func=cmd_use)
