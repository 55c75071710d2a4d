"""One tiny real training (`core/modeling/training.py`, PyCaret) on the tiny dataset: lr and dt,
2 folds, 1 iteration, in a home of its own."""
from __future__ import annotations

import numpy as np
import pytest

from core import tracking
from core.config import Settings
from core.data import preparation
from core.errors import TrainingError
from core.modeling import candidates, comparison, metrics, model_io, registry, training
from tests.unit.conftest import FEATURES, TARGET


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, lab) -> tuple[Settings, training.TrainResult]:
    import shutil

    from tests.unit.conftest import make_settings

    s = make_settings(tmp_path_factory.mktemp("tiny_trained"), lab.settings.dataset, lab.settings.source_dir)
    shutil.copytree(lab.settings.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run", "0[6-9]_*", "inference_log*"))
    return s, training.train(s, models=["lr", "dt"], folds=2, n_iter=1)


def test_training_refuses_a_bad_budget_before_loading_pycaret(tiny: Settings) -> None:
    with pytest.raises(TrainingError, match="folds must be between 2 and 20"):
        training.train(tiny, models=["lr"], folds=1)
    with pytest.raises(TrainingError, match="Unknown model id"):
        training.train(tiny, models=["nope"])


def test_a_tiny_training_registers_the_best_candidate_as_champion(trained) -> None:
    s, result = trained
    assert [c.name for c in result.candidates] == ["lr", "dt"]
    assert result.champion.name == training.best(result.candidates, "log_loss").name
    assert registry.champion(s).version == result.champion.version and result.previous_version is None
    version, model = registry.load_model(s)
    test = preparation.load_split(s, "test")
    p = model_io.predict_proba(model, test, FEATURES)
    assert result.champion.test["log_loss"] == pytest.approx(metrics.from_proba(test[TARGET], p)["log_loss"], rel=1e-6)
    assert list(getattr(model, "feature_names_in_", FEATURES)) == list(FEATURES)


def test_the_candidates_are_logged_for_the_compare_page(trained) -> None:
    s, result = trained
    runs = comparison.training_runs(s)
    assert sorted(runs["model_id"]) == ["dt", "lr"] and set(runs["folds"]) == {2}
    champ = runs[runs["version"] == result.champion.version]
    assert len(champ) == 1 and "champion" in champ.iloc[0]["aliases"]
    cand = comparison.load_candidate(s, result.candidates[0].run_id)
    assert cand.name == "lr" and len(cand.y_true) == len(cand.proba) == len(preparation.load_split(s, "test"))
    assert np.isin(cand.y_true, [0, 1]).all() and cand.figures == {}  # figures are drawn from data, not stored
    assert cand.diagnostics is not None and cand.diagnostics.features == FEATURES
    assert len(cand.diagnostics.values) == len(FEATURES) and cand.diagnostics.learning_curve.sizes[-1] == len(
        preparation.load_split(s, "train"))
    parent = tracking.client(s).get_run(result.parent_run_id)
    assert parent.info.run_name == training.TRAIN_RUN and parent.data.tags[candidates.ROLE_TAG] == "training"
    assert parent.data.params["train_rows"] == str(len(preparation.load_split(s, "train")))


def test_a_training_stores_data_not_pages(trained) -> None:
    """The store stays lean: no per-run HTML page (plotly.js inlined, ~5 MB each before) and no
    plotly figure; every candidate's files are small JSON data and its model."""
    s, result = trained
    artifacts = s.mlruns_dir / "artifacts"
    files = [f for f in artifacts.rglob("*") if f.is_file()]
    assert files and not [f for f in files if f.suffix == ".html" or "figures" in f.parts]
    too_big = {str(f.relative_to(artifacts)): f.stat().st_size for f in files if f.stat().st_size > 300_000}
    assert too_big == {}
    client = tracking.client(s)
    for c in result.candidates:
        assert {a.path for a in client.list_artifacts(c.run_id, "eval")} == {
            "eval/test_predictions.json", "eval/diagnostics.json", "eval/explanations.json"}  # issue 31
    assert sum(f.stat().st_size for f in files) < 1_000_000  # two candidates with their models
