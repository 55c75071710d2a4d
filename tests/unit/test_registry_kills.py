"""A process killed at any moment of a registry change leaves nothing the next command cannot
repair (issue 28 item 7).

Every registry write MLflow makes (`ModelRegistryClient`: creating the model and its version,
moving and dropping aliases, deleting a version, tagging) is wrapped; a kill is injected right
before and right after each one of those a training (`selection.record`), a retraining
(`retraining.register_challenger`), a promotion and a rollback make. "Killed" means that nothing
runs afterwards: the wrapped writes and the journal's writes raise `Killed`, a BaseException
that no cleanup can swallow. Then the next command's `promotion.repair` runs (itself killed at
each of its writes in turn, until one finishes) and the registry must be one of the two states
of an all-or-nothing change, with no orphan version, and the champion it shows must be the one
that the model server, `apply` and `predict` read between the kill and the repair.

A few kills are real: a child process ends with `os._exit` at the chosen registry call.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import mlflow
import pytest

from core import tracking
from core.config import Settings
from core.modeling import promotion, registry, selection
from core.modeling.candidates import ROLE_TAG
from core.modeling.results import CandidateResult
from core.monitoring import retraining
from tests.unit.conftest import Lab, make_settings, with_spec

ROOT = Path(__file__).resolve().parents[2]
# every write of MLflow's registry client (what `registry` and `mlflow.register_model` call)
WRITES = ("create_registered_model", "create_model_version", "set_registered_model_alias",
          "delete_registered_model_alias", "delete_model_version", "set_model_version_tag",
          "delete_model_version_tag", "update_model_version", "delete_registered_model")
RUN_TAGS = (selection.RUN_TAG, retraining.RUN_TAG)


class Killed(BaseException):
    """The process died here (kill -9): nothing after it runs."""


@dataclasses.dataclass
class KillSwitch:
    """Counts the registry writes; kills before write `at // 2` (even `at`) or after it (odd)."""

    at: int | None = None
    calls: list[str] = dataclasses.field(default_factory=list)
    dead: bool = False

    def wrap(self, name: str, fn: Callable) -> Callable:
        def write(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise Killed(name)
            i = len(self.calls)
            self.calls.append(name)
            if self.at == 2 * i:
                self.dead = True
                raise Killed(f"before {name}")
            try:
                return fn(*args, **kwargs)
            finally:  # after the write, whether it succeeded or raised (e.g. the model exists)
                if self.at == 2 * i + 1:
                    self.dead = True
                    raise Killed(f"after {name}")  # noqa: B012 (a kill ends whatever was under way)
        return write

    def guard(self, fn: Callable) -> Callable:
        """`fn` (a journal write) that does nothing once dead: a dead process writes no file."""
        def write(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise Killed(fn.__name__)
            return fn(*args, **kwargs)
        return write


def install(monkeypatch: pytest.MonkeyPatch, switch: KillSwitch) -> None:
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    for name in WRITES:
        monkeypatch.setattr(ModelRegistryClient, name, switch.wrap(name, getattr(ModelRegistryClient, name)))
    for name in ("_write_journal", "_close_journal"):
        monkeypatch.setattr(promotion, name, switch.guard(getattr(promotion, name)))


# --------------------------------------------------------------------------- a home and its runs
@dataclasses.dataclass(frozen=True)
class Home:
    settings: Settings
    model_uri: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Home:
    """A home of its own (the lab's prepared data, no runs) and one logged model to register."""
    from core.data import preparation
    from core.modeling import model_io
    from sklearn.linear_model import LogisticRegression

    s = make_settings(tmp_path_factory.mktemp("kills"), lab.settings.dataset, lab.settings.source_dir)
    shutil.copytree(lab.settings.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run", "inference_log*"))
    train = preparation.load_split(s, "train")
    model = LogisticRegression(max_iter=500).fit(model_io.feature_frame(train, s.features), train[s.target])
    with mlflow.start_run(run_name="fixture", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules)
    return Home(settings=s, model_uri=str(info.model_uri))


def _run(s: Settings, name: str) -> str:
    """A lifecycle run left RUNNING, as a killed training or retraining leaves it."""
    c = tracking.client(s)
    exp = c.get_experiment_by_name(s.experiment_name)
    return c.create_run(exp.experiment_id, run_name=name, tags={ROLE_TAG: "training"}).info.run_id


def _version(h: Home, s: Settings) -> str:
    """A version registered before the change, with its run."""
    return registry.register(s, h.model_uri, tags={selection.RUN_TAG: _run(s, "Treinamento")})


def _aliases(s: Settings) -> dict[str, str | None]:
    return {a: (v.version if (v := registry.alias_version(s, a)) else None) for a in registry.ALIASES}


def _versions(s: Settings) -> set[str]:
    return {v.version for v in registry.versions(s)}


def _winner(h: Home) -> CandidateResult:
    return CandidateResult(name="lr", label="LR", test={"log_loss": 0.5}, cv={"log_loss": 0.5}, params={},
                           run_id="candidate", model_uri=h.model_uri, seconds=1.0, threshold=0.4)


# --------------------------------------------------------------------------- the changes
def _train(promoted: bool, with_champion: bool = True):
    def setup(h: Home, s: Settings) -> dict:
        if with_champion:
            promotion.promote(s, _version(h, s))
            registry.set_challenger(s, _version(h, s))
        return {"run": _run(s, "Treinamento")}

    def op(h: Home, s: Settings, ctx: dict) -> None:
        selection.record(s, _winner(h), promoted, ctx["run"])

    def after(before: dict, new: str) -> dict:
        if promoted:
            return {"champion": new, "previous": before["champion"], "challenger": None}
        return {**before, "challenger": new}
    return setup, op, after


def _retrain(promoted: bool):
    def setup(h: Home, s: Settings) -> dict:
        promotion.promote(s, _version(h, s))
        return {"run": _run(s, "Retreinamento")}

    def op(h: Home, s: Settings, ctx: dict) -> None:
        retraining.register_challenger(s, h.model_uri, {retraining.RUN_TAG: ctx["run"]}, promoted)

    def after(before: dict, new: str) -> dict:
        if promoted:
            return {**before, "champion": new, "previous": before["champion"]}
        return {**before, "challenger": new}
    return setup, op, after


def _promote():
    def setup(h: Home, s: Settings) -> dict:
        promotion.promote(s, _version(h, s))
        second = _version(h, s)
        registry.set_challenger(s, second)
        return {"version": second}

    def op(h: Home, s: Settings, ctx: dict) -> None:
        promotion.promote(s, ctx["version"])

    def after(before: dict, new: str | None) -> dict:
        return {"champion": before["challenger"], "previous": before["champion"], "challenger": None}
    return setup, op, after


def _rollback():
    def setup(h: Home, s: Settings) -> dict:
        promotion.promote(s, _version(h, s))
        promotion.promote(s, _version(h, s))
        return {}

    def op(h: Home, s: Settings, ctx: dict) -> None:
        promotion.rollback(s)

    def after(before: dict, new: str | None) -> dict:
        return {**before, "champion": before["previous"], "previous": before["champion"]}
    return setup, op, after


CHANGES = {
    "training promoted": (_train(True), True),
    "training kept the champion": (_train(False), True),
    "first training": (_train(True, with_champion=False), True),
    "retraining promoted": (_retrain(True), True),
    "retraining rejected": (_retrain(False), True),
    "promotion": (_promote(), False),
    "rollback": (_rollback(), False),
}


def _check(s: Settings, before: dict, versions_before: set[str], expected: dict, new: str | None,
           seen: str | None, what: str) -> None:
    """The registry after the repair: all or nothing, no orphan version, the champion that was
    read between the kill and the repair kept, loadable."""
    assert not (s.runtime_dir / promotion.JOURNAL).exists(), what
    now = _aliases(s)
    assert now in (before, expected), f"{what}: aliases {now}, not {before} (undone) or {expected} (done)"
    done = now == expected and now != before
    want = versions_before | ({new} if done and new else set())
    assert _versions(s) == want, f"{what}: versions {sorted(_versions(s))}, expected {sorted(want)} (aliases {now})"
    assert now["champion"] == seen, f"{what}: the champion read before the repair was {seen}, now {now['champion']}"
    runs = {r.info.run_id: r for r in tracking.client(s).search_runs(
        [tracking.client(s).get_experiment_by_name(s.experiment_name).experiment_id], max_results=5000)}
    for v in registry.versions(s):
        mv = tracking.client(s).get_model_version(s.model_name, v.version)
        assert any(mv.tags.get(t) in runs for t in RUN_TAGS), f"{what}: version {v.version} names no run"
    assert not [r for r in runs.values() if r.info.status == "RUNNING"], what
    if seen is not None:
        assert registry.load_model(s)[0] == seen
    assert promotion.repair(s) == [], what


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_kill_before_or_after_any_registry_write_is_repaired(home: Home, name: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (setup, op, after), creates = CHANGES[name]
    slug = name.replace(" ", "-")
    dry = with_spec(home.settings, model_name=f"{slug}-dry")
    ctx = setup(home, dry)
    switch = KillSwitch()
    with monkeypatch.context() as m:
        install(m, switch)
        op(home, dry, ctx)
    writes = list(switch.calls)
    assert writes, name
    for at in range(2 * len(writes)):
        s = with_spec(home.settings, model_name=f"{slug}-{at}")
        ctx = setup(home, s)
        before, versions_before = _aliases(s), _versions(s)
        new = str(max((int(v) for v in versions_before), default=0) + 1) if creates else None
        what = f"{name}, killed {'before' if at % 2 == 0 else 'after'} write {at // 2} ({writes[at // 2]}) of {writes}"
        with monkeypatch.context() as m:
            install(m, KillSwitch(at=at))
            with pytest.raises(Killed):
                op(home, s, ctx)
        seen = registry.champion_version(s)  # what `serve`, `apply` and `predict` use until a repair
        for again in range(20):  # the repair itself killed at each of its writes, until one finishes
            with monkeypatch.context() as m:
                install(m, KillSwitch(at=again))
                try:
                    promotion.repair(s)
                    break
                except Killed:
                    pass
            assert registry.champion_version(s) == seen, f"{what}: a killed repair moved the champion"
        _check(s, before, versions_before, after(before, new), new, seen, what)


# --------------------------------------------------------------------------- real kills
def _child() -> None:
    """A training's last step in a child process that ends with `os._exit(9)` at registry write
    KILL_AT (as KillSwitch numbers them)."""
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    from core import catalog

    spec = catalog.load(Path(os.environ["KILL_SPEC"]))
    s = with_spec(make_settings(Path(os.environ["KILL_HOME"]), spec), model_name=os.environ["KILL_MODEL"])
    at, calls = int(os.environ["KILL_AT"]), []

    def wrap(name: str, fn: Callable) -> Callable:
        def write(*args: Any, **kwargs: Any) -> Any:
            i = len(calls)
            calls.append(name)
            if at == 2 * i:
                os._exit(9)
            try:
                return fn(*args, **kwargs)
            finally:
                if at == 2 * i + 1:
                    os._exit(9)  # noqa: B012
        return write

    for name in WRITES:
        setattr(ModelRegistryClient, name, wrap(name, getattr(ModelRegistryClient, name)))
    selection.record(s, _winner(Home(s, os.environ["KILL_URI"])), True, os.environ["KILL_RUN"])


# writes of a promoting training over a champion and a challenger: create the registered model
# (it exists: refused), create the version, set previous, set champion, drop challenger
@pytest.mark.parametrize("at, window", [(3, "after the version is created, before the journal has its number"),
                                        (5, "between moving previous and moving champion"),
                                        (7, "after champion moved, before the challenger is dropped")])
def test_a_real_kill_of_a_training_is_repaired(home: Home, at: int, window: str) -> None:
    s = with_spec(home.settings, model_name=f"real-kill-{at}")
    (setup, _, after), _ = CHANGES["training promoted"]
    ctx = setup(home, s)
    before, versions_before = _aliases(s), _versions(s)
    new = str(max(int(v) for v in versions_before) + 1)
    env = {**os.environ, "KILL_SPEC": str(s.dataset.folder / "dataset.toml"), "KILL_HOME": str(s.home),
           "KILL_MODEL": s.model_name, "KILL_AT": str(at), "KILL_URI": home.model_uri, "KILL_RUN": ctx["run"],
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", "from tests.unit.test_registry_kills import _child; _child()"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]
    assert (s.runtime_dir / promotion.JOURNAL).exists(), window
    seen = registry.champion_version(s)
    promotion.repair(s)
    _check(s, before, versions_before, after(before, new), new, seen, window)
