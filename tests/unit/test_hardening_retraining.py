"""Issue 17, retraining: each batch is checked against what retraining needs (used in full, for
fitting only, or skipped, with the reason in `batch_notes`); a stored 1-row labelled batch no
longer breaks `retrain` / `retrain_if_needed`; a refused retraining leaves `mlruns/` as it was.
On the tiny definition (not Kobe)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core import tracking
from core.config import RetrainPolicy, Settings
from core.data import batch_store, batches
from core.errors import NotPreparedError, TrackingError, WorkbenchError
from core.modeling import registry
from core.modeling import promotion
from core.monitoring import retraining
from tests.unit.conftest import FEATURES, TARGET, Lab, make_settings, register_lr

ONE_ROW = b"usage_hours,support_calls,premium,churn\n40.5,3,0,1\n"
OLD_KEYS = {"needed", "reason", "promoted", "challenger", "champion", "mlflow_run_id", "batches", "decision",
            "seconds"}


def labelled(n_stayed: int, n_churned: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_stayed + n_churned
    return pd.DataFrame({"usage_hours": rng.uniform(0, 100, n).round(1), "support_calls": rng.integers(0, 21, n),
                         "premium": rng.integers(0, 2, n), TARGET: [0] * n_stayed + [1] * n_churned})


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its SHA-256 (empty when the folder does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path: Path, lab: Lab) -> Settings:
    """A copy of the lab's prepared data with a champion of its own, no stored batches, no retraining."""
    s = make_settings(tmp_path / "home", lab.settings.dataset, lab.settings.source_dir)
    shutil.copytree(lab.settings.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run", "inference_log*"))
    shutil.rmtree(s.batches_dir, ignore_errors=True)
    version, _ = register_lr(s, run_name="hardening-champion")
    promotion.promote(s, version)
    return s


# --------------------------------------------------------------------------- what each batch is good for
def test_plan_says_how_each_batch_can_be_used(lab: Lab) -> None:
    s = lab.settings
    plan = lambda frame: retraining.plan(batches.from_frame(frame, s, "b"), s)  # noqa: E731
    unlabelled = plan(labelled(3, 3).drop(columns=[TARGET]))
    assert unlabelled["use"] == "skipped" and "no labelled rows" in unlabelled["reason"]
    one = plan(labelled(0, 1))
    assert (one["use"], one["rows_fit"], one["rows_holdout"]) == ("fit_only", 1, 0)
    assert one["reason"] == ("used for fitting only, no held-out slice: its labelled rows are 0 stayed and "
                             "1 churned; a stratified held-out slice needs at least 2 of each class")
    one_class = plan(labelled(30, 0))
    assert one_class["use"] == "fit_only" and "30 stayed and 0 churned" in one_class["reason"]
    small = plan(labelled(10, 10))  # a held-out slice of ceil(0.3 * 20) = 6 rows
    assert small["use"] == "fit_only" and "give a held-out slice of 6 (holdout 0.3)" in small["reason"]
    full = plan(labelled(20, 20))
    assert (full["use"], full["rows_fit"], full["rows_holdout"]) == ("full", 28, 12)
    assert full["reason"].startswith("used in full: 28 rows to fit, 12 held out (stratified")
    no_holdout = retraining.plan(batches.from_frame(labelled(20, 20), s, "b"),
                                 s.replace(retrain=RetrainPolicy(holdout=0.0)))
    assert no_holdout["use"] == "fit_only" and "holds out no slice" in no_holdout["reason"]


def test_assemble_uses_each_batch_as_planned(lab: Lab) -> None:
    s = lab.settings
    full = batches.from_frame(labelled(20, 20), s, "full")
    tiny = batches.from_frame(labelled(0, 1, seed=1), s, "one row")
    rd = retraining.assemble(s, [full, tiny, full])
    assert [n["use"] for n in rd.notes] == ["full", "fit_only", "skipped"]
    assert rd.notes[2]["reason"] == "skipped: the same rows as the batch 'full'"
    assert len(rd.new_holdout) == 12 and set(rd.new_holdout[TARGET]) == {0, 1}
    assert len(rd.train) == lab.prep.train_rows + 28 + 1
    only_small = retraining.assemble(s, [tiny])
    assert only_small.new_holdout.empty and list(only_small.new_holdout.columns) == [*FEATURES, TARGET]
    with pytest.raises(retraining.RetrainInputError, match="labelled rows .* skipped: no labelled rows"):
        retraining.assemble(s, [batches.from_frame(labelled(3, 3).drop(columns=[TARGET]), s, "u")])


def test_the_gate_never_promotes_without_figures_to_compare() -> None:
    policy = RetrainPolicy()
    old = {"log_loss": 0.5, "roc_auc": 0.7}
    no_new = retraining.gate({"old": old, "new": {}}, {"old": {"log_loss": 0.4}, "new": {}}, policy)
    assert not no_new.promote
    assert no_new.reason.startswith("rejected: the challenger cannot be compared with the champion, there is no "
                                    "held-out slice of new data")
    auc = RetrainPolicy(criterion="roc_auc")
    undefined = retraining.gate({"old": old, "new": {"roc_auc": float("nan")}},
                                {"old": old, "new": {"roc_auc": float("nan")}}, auc)
    assert not undefined.promote and "the roc_auc is undefined on a held-out slice" in undefined.reason
    result = retraining.RetrainResult(needed=True, reason="r", promoted=False, mlflow_run_id="x",
                                      champion={"version": "1", "metrics": {"old": old, "new": {}}},
                                      challenger={"version": "2", "metrics": {"old": old, "new": {}}})
    assert {r["held-out set"] for r in retraining.comparison_rows(result)} == {"old data (dev test)"}


# --------------------------------------------------------------------------- the case
def test_a_stored_one_row_batch_no_longer_breaks_retraining(home: Settings) -> None:
    s = home
    champion = registry.champion(s).version
    batch_store.store(batches.read_batch(ONE_ROW, s, name="one.csv"), s)  # what `drift --batch` stored
    stale = s.batches_dir / "20200101T000000000000Z_cccccccccccc.csv"  # a stored file today's reader refuses
    stale.write_bytes(b"usage_hours;support_calls;premium;churn\n10;1;0;1\n10;1\n")
    (stale.parent / (stale.name + ".json")).write_text(json.dumps({
        "path": str(stale), "name": "old.csv", "digest": "c" * 64, "n_rows": 2, "n_labelled": 2,
        "stored_at": "20200101T000000000000Z", "size_bytes": 40}))
    stored, notes = batch_store.read_stored(s)
    assert [b.name for b in stored] == ["one.csv"] and [n["name"] for n in notes] == ["old.csv"]

    result = retraining.retrain_if_needed(s, stored, notes=notes, model=registry.champion(s))
    assert result.needed and not result.promoted and result.batches == ["one.csv"]
    assert result.decision.startswith("rejected: the challenger cannot be compared with the champion, there is "
                                      "no held-out slice of new data")
    by_name = {n["name"]: n for n in result.batch_notes}
    assert by_name["old.csv"]["use"] == "skipped" and "(line 3)" in by_name["old.csv"]["reason"]
    assert by_name["one.csv"]["use"] == "fit_only" and "a stratified held-out slice needs" in (
        by_name["one.csv"]["reason"])
    d = json.loads(json.dumps(result.to_dict()))
    assert OLD_KEYS | {"batch_notes"} == set(d) and d["challenger"]["metrics"]["new"] == {}
    assert registry.champion(s).version == champion  # never promoted blind
    run = tracking.client(s).get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.params["rows_new_holdout"] == "0"
    assert run.data.params["batch_digests"] == stored[0].digest

    again = retraining.retrain_if_needed(s, stored, notes=notes, model=registry.champion(s))  # the row was used: nothing to do
    assert not again.needed and again.mlflow_run_id is None and again.batch_notes == notes
    forced = retraining.retrain(s, stored, notes=notes, model=registry.champion(s))  # asked for explicitly: runs, and says why not promoted
    assert forced.needed and not forced.promoted and forced.batch_notes[-1]["use"] == "fit_only"
    assert registry.champion(s).version == champion


# --------------------------------------------------------------------------- refused: mlruns untouched
def _orphan(s: Settings) -> str:
    """A Retreinamento run left RUNNING (what a killed retraining leaves)."""
    c = MlflowClient(s.tracking_uri)
    return c.create_run(tracking.use(s), run_name=retraining.RUN_NAME).info.run_id


def _break_train(s: Settings) -> None:
    s.train_path.unlink()


def _corrupt_train(s: Settings) -> None:
    s.train_path.write_bytes(b"PAR1 not really")


def _no_champion(s: Settings) -> None:
    tracking.client(s).delete_registered_model_alias(s.model_name, registry.CHAMPION)


@pytest.mark.parametrize("breakage, error", [(_break_train, NotPreparedError), (_corrupt_train, NotPreparedError),
                                             (_no_champion, TrackingError)])
def test_a_refused_retrain_if_needed_leaves_mlruns_as_it_was(home: Settings, breakage, error) -> None:
    s = home
    batch = batches.from_frame(labelled(20, 20), s, "labelled")
    orphan = _orphan(s)
    breakage(s)
    before = snapshot(s.mlruns_dir)
    with pytest.raises(error):
        retraining.retrain_if_needed(s, [batch], model=registry.champion(s))
    with pytest.raises(error):
        retraining.retrain(s, [batch], model=registry.champion(s))
    assert snapshot(s.mlruns_dir) == before
    assert MlflowClient(s.tracking_uri).get_run(orphan).info.status == "RUNNING"  # not marked before the checks


def test_retraining_without_labels_is_refused_before_any_write(home: Settings) -> None:
    s = home
    _orphan(s)
    before = snapshot(s.mlruns_dir)
    unlabelled = batches.from_frame(labelled(5, 5).drop(columns=[TARGET]), s, "unlabelled")
    with pytest.raises(retraining.RetrainInputError, match="labelled rows"):
        retraining.retrain(s, [unlabelled], model=registry.champion(s))
    assert not retraining.retrain_if_needed(s, [unlabelled], model=registry.champion(s)).needed
    assert snapshot(s.mlruns_dir) == before


def test_an_empty_home_is_refused_without_creating_a_tracking_store(tiny: Settings) -> None:
    batch = batches.read_batch(ONE_ROW, tiny, name="one.csv")
    with pytest.raises(TrackingError, match="No champion yet"):
        retraining.retrain_if_needed(tiny, [batch], model=registry.champion(tiny))
    with pytest.raises(TrackingError, match="No champion yet"):
        retraining.retrain(tiny, [batch], model=registry.champion(tiny))
    assert not retraining.retrain_if_needed(tiny, [], model=registry.champion(tiny)).needed
    assert not tiny.mlruns_dir.exists()


def test_retraining_raises_only_workbench_errors_on_odd_stored_states(home: Settings) -> None:
    """Whatever `data/08_batches` holds, reading it back and retraining succeeds or says why."""
    s = home
    s.batches_dir.mkdir(parents=True, exist_ok=True)
    odd = {"empty.csv": b"", "png.csv": b"\x89PNG\r\n\x1a\n", "header.csv": b"usage_hours,support_calls,premium\n",
           "huge.csv": b"usage_hours,support_calls,premium,churn\n1.7e308,1,0,1\n"}
    for i, (name, data) in enumerate(odd.items()):
        path = s.batches_dir / f"2020010{i}T000000000000Z_{i:012d}.csv"
        path.write_bytes(data)
        (path.parent / (path.name + ".json")).write_text(json.dumps({
            "path": str(path), "name": name, "digest": f"{i:064d}", "n_rows": 1, "n_labelled": 1,
            "stored_at": f"2020010{i}T000000000000Z", "size_bytes": len(data)}))
    stored, notes = batch_store.read_stored(s)
    assert stored == [] and sorted(n["name"] for n in notes) == sorted(odd)
    assert not retraining.retrain_if_needed(s, stored, notes=notes, model=registry.champion(s)).needed
    with pytest.raises(WorkbenchError, match="None of the chosen batches") as err:
        retraining.retrain(s, stored, notes=notes, model=registry.champion(s))
    assert "Put aside before: " in str(err.value) and all(name in str(err.value) for name in odd)


def test_a_damaged_tracking_store_is_named_not_a_traceback(tiny: Settings) -> None:
    tiny.mlruns_dir.mkdir(parents=True)
    (tiny.mlruns_dir / "mlflow.db").write_bytes(b"not a database")
    batch = batches.read_batch(ONE_ROW, tiny, name="one.csv")
    for call in (retraining.retrain_if_needed, retraining.retrain):
        with pytest.raises(TrackingError, match=r"tracking store cannot be read \(.*file is not a database"):
            call(tiny, [batch], None)
    assert snapshot(tiny.mlruns_dir) == {"mlflow.db": hashlib.sha256(b"not a database").hexdigest()}
