"""One door to the model (issue 29): the `ModelVersion` value, task kinds, the one registry reader,
and the registry from the command line (`versions`, `promote`, `rollback`), on the tiny dataset."""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import subprocess
import sys
import uuid

import numpy as np
import pytest

from core.cli import lifecycle
from core.cli.options import UsageError
from core.cli.run import build_parser
from core.errors import TrackingError
from core.modeling import metrics, promotion, registry
from core.modeling.model_version import (
    FEATURE_SET_TAG,
    TASK_TAG,
    THRESHOLD_RULE_TAG,
    THRESHOLD_TAG,
    ModelVersion,
    parse_threshold,
)
from core.modeling.tasks import BINARY, task_kind
from tests.unit.conftest import Lab, register_lr, with_spec

ROOT = pathlib.Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the value
def test_a_version_is_read_from_its_tags_with_the_datasets_class_names(spec) -> None:
    mv = ModelVersion.from_tags("m", 3, "run", {THRESHOLD_TAG: "0.3700", THRESHOLD_RULE_TAG: "cost",
                                                TASK_TAG: "binary", FEATURE_SET_TAG: "default"},
                                spec, aliases=("previous", "champion"), created_ms=5)
    assert (mv.version, mv.aliases, mv.task, mv.threshold, mv.threshold_rule) == (
        "3", ("champion", "previous"), "binary", 0.37, "cost")
    assert mv.classes == (spec.target.negative_name, spec.target.positive_name) and mv.dataset == spec.name
    assert mv.decision_threshold == 0.37 and mv.uri == "models:/m/3"
    assert mv.inputs(spec).features == spec.with_feature_set("default").features
    assert "tags" not in mv.to_dict() and json.dumps(mv.to_dict())


@pytest.mark.parametrize("text, value", [("0.5", 0.5), ("0", None), ("1", None), ("-0.2", None), ("x", None),
                                         (None, None), ("nan", None), ("0.0001", 0.0001)])
def test_a_threshold_tag_is_a_number_strictly_between_0_and_1(text, value) -> None:
    assert parse_threshold(text) == value


def test_a_version_without_a_threshold_decides_at_its_task_kinds_default(spec) -> None:
    old = ModelVersion.from_tags("m", "1", None, {}, spec)
    assert old.threshold is None and old.task == "binary" and old.decision_threshold == BINARY.default_threshold


def test_the_task_kind_decides_criterion_direction_and_metrics() -> None:
    assert task_kind(None) is BINARY and task_kind("binary") is BINARY
    with pytest.raises(ValueError, match="knows binary"):
        task_kind("ranking")
    assert BINARY.better("log_loss", 0.4, 0.5) and not BINARY.better("roc_auc", 0.4, 0.5)
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.1, 0.9])
    assert BINARY.metrics(y, p, 0.5) == metrics.from_proba(y, p, 0.5)


# --------------------------------------------------------------------------- the one reader
def test_only_the_registry_module_knows_mlflows_tables() -> None:
    tables = ("registered_model_aliases", "model_version_tags", "model_versions", "registered_models")
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py")
                   if any(t in p.read_text() for t in tables))
    assert found == ["core/modeling/registry.py"]
    assert "champion_settings" not in "".join(p.read_text() for p in (ROOT / "core").rglob("*.py"))


def test_no_import_loop_in_core_imports_inside_functions_included() -> None:
    mods = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in (ROOT / "core").rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                names = [f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in mods else n.module for a in n.names]
            else:
                continue
            graph[m] |= {x for x in names if x in mods and x != m}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for x in sorted(graph[m]):
            if state.get(x) == 1:
                pytest.fail("import loop: " + " -> ".join(path[path.index(x):] + [x]))
            if x not in state:
                visit(x, path + [x])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.fixture
def two_versions(lab: Lab):
    """A model name of its own in the lab's home with two registered versions, v1 champion."""
    s = with_spec(lab.settings, model_name=f"tiny-door-{uuid.uuid4().hex[:8]}")
    first, _ = register_lr(s, c=1.0)
    second, _ = register_lr(s, c=0.05)
    promotion.promote(s, first)
    return s, first, second


def test_the_fast_path_and_mlflows_client_read_the_same_versions(two_versions, monkeypatch) -> None:
    s, first, second = two_versions
    fast = (registry.champion(s), registry.versions(s), registry.version_info(s, second))
    monkeypatch.setattr(registry, "_sqlite_file", lambda settings: None)  # as a tracking server is read
    slow = (registry.champion(s), registry.versions(s), registry.version_info(s, second))
    assert fast == slow and fast[0].version == first and [v.version for v in fast[1]] == [second, first]
    assert registry.version_info(s, "99") is None and registry.version_info(s, "x") is None


def test_the_command_line_lists_promotes_and_rolls_back(two_versions) -> None:
    s, first, second = two_versions
    listed = lifecycle.cmd_versions(argparse.Namespace(), s, None)
    assert listed["champion"] == first and [v["version"] for v in listed["versions"]] == [second, first]
    row = listed["versions"][1]
    assert row["aliases"] == ["champion"] or row["aliases"] == ("champion",)
    assert {"task", "feature_set", "threshold", "cv_log_loss", "test_log_loss", "test_f1"} <= set(row)
    assert json.dumps(listed)  # what --json prints
    moved = lifecycle.cmd_promote(argparse.Namespace(version=second), s, None)
    assert (moved["champion"], moved["champion_before"]) == (second, first)
    assert registry.alias_version(s, "previous").version == first
    back = lifecycle.cmd_rollback(argparse.Namespace(), s, None)
    assert back["champion"] == first and registry.champion(s).version == first
    with pytest.raises(TrackingError, match="has no version 42"):
        lifecycle.cmd_promote(argparse.Namespace(version="42"), s, None)
    assert registry.champion(s).version == first  # a refused promotion moves nothing


def test_promote_refuses_a_version_that_is_not_a_number(spec) -> None:
    with pytest.raises(UsageError, match="registered version number"):
        build_parser(spec).parse_args(["promote", "v2"])
    assert build_parser(spec).parse_args(["promote", "007"]).version == "7"


def test_versions_on_an_empty_home_lists_none_and_creates_nothing(tmp_path) -> None:
    env = {"WORKBENCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "core", "versions", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["versions"] == [] and not (tmp_path / "home" / "mlruns").exists()
    rollback = subprocess.run([sys.executable, "-m", "core", "rollback", "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert rollback.returncode == 2 and "no previous champion" in json.loads(rollback.stdout)["error"]["message"]


STAGES = {"data": 1, "modeling": 2, "serving": 3, "scoring": 3, "monitoring": 4, "charts": 5, "cli": 6}


def _stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return STAGES[parts[1]]
    return 7 if module in ("core.pipeline", "core.__main__") else 0  # the base modules: 0


def test_no_stage_imports_a_later_one_imports_inside_functions_included() -> None:
    """data -> modeling -> serving / scoring -> monitoring, with charts and cli on top; the base
    modules (definition, rules, settings, tracking, files, runtime) import no stage at all."""
    upward = []
    for path in (ROOT / "core").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("core.") and _stage(target) > _stage(module) and \
                        {_stage(target), _stage(module)} != {3}:
                    upward.append(f"{module} imports {target} (line {node.lineno})")
    assert not upward, "\n".join(sorted(set(upward)))
