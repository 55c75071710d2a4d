"""The registry from the command line, as MLflow users expect: `versions`, `promote VERSION`, `rollback`.

`promote` and `rollback` go through `core.modeling.promotion` (the lifecycle lock and the journal),
the same functions as the Compare page's buttons.
"""
from __future__ import annotations

import argparse
import math
from typing import Any

from core.config import Settings
from core.dataset import DatasetSpec
from core.progress import ProgressFn

# the registry table's columns (`core.modeling.comparison.REGISTRY_COLUMNS`) under their JSON names
_FIGURES = {"CV log loss": "cv_log_loss", "test log loss": "test_log_loss", "test F1": "test_f1",
            "train rows": "train_rows", "parameters": "parameters"}
# a multiclass or regression version's own figures, added beside those (null for them)
_TASK_FIGURES = {"test accuracy": "test_accuracy", "test macro F1": "test_f1_macro", "CV RMSE": "cv_rmse",
                 "test RMSE": "test_rmse", "test R²": "test_r2", "test interval coverage": "test_interval_coverage"}


def _number(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def cmd_versions(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    """Every registered version, newest first: aliases, task, feature set, threshold, CV and test figures."""
    from core.modeling import comparison, registry
    from core.tracking import store_exists

    found = registry.versions(settings) if store_exists(settings) else []
    table = comparison.registry_table(settings) if found else None
    figures = {} if table is None else {str(r["version"]): r for r in table.to_dict("records")}
    rows = []
    for v in found:
        row = v.to_dict()
        row.update({key: _number(figures.get(v.version, {}).get(column)) for column, key in _FIGURES.items()})
        row.update({key: _number(figures.get(v.version, {}).get(column)) for column, key in _TASK_FIGURES.items()
                    if table is not None and column in table.columns})
        rows.append(row)
    champion = next((v.version for v in found if "champion" in v.aliases), None)
    return {"dataset": settings.dataset.name, "model_name": settings.model_name, "champion": champion,
            "versions": rows}


def cmd_promote(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.modeling import promotion, registry

    before = registry.champion_version(settings)
    info = promotion.promote(settings, args.version)
    return {"promoted": info.version, "champion": info.version, "champion_before": before,
            "previous": before if before != info.version else None, "version": info.to_dict()}


def cmd_rollback(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.modeling import promotion, registry

    before = registry.champion_version(settings)
    info = promotion.rollback(settings)
    return {"champion": info.version, "champion_before": before, "previous": before, "version": info.to_dict()}


def _version(text: str) -> str:
    if not text.isascii() or not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise argparse.ArgumentTypeError(f"must be a registered version number such as 3, not {text!r} "
                                         "(`python -m core versions` lists them)")
    return str(int(text))


def add_versions(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("versions", help=f"list the registered versions of {spec.model_name}: aliases, task, "
                                        "feature set, threshold, CV and test figures")
    p.set_defaults(func=cmd_versions)


def add_promote(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("promote", help="make a registered version champion (the champion becomes previous); "
                                       "refused while a training runs")
    p.add_argument("version", type=_version, metavar="VERSION", help="the version number to promote")
    p.set_defaults(func=cmd_promote)


def add_rollback(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    p = sub.add_parser("rollback", help="make the previous champion champion again")
    p.set_defaults(func=cmd_rollback)

