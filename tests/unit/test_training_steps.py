"""The steps of a training (`core/modeling/{tuning,fitting,run_log,selection}.py`) one by one, on
the tiny dataset and without PyCaret: typed results, what a candidate run stores (small JSON
data, no page, no figure), reading it back for the Compare page (older runs included), the
choice, the registration and the aliases; charts drawn from the results."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import mlflow
import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LogisticRegression

from core import tracking
from core.charts import evaluation
from core.charts.words import Words
from core.config import Settings
from core.errors import TrackingError
from core.modeling import comparison, fitting, promotion, registry, run_log, selection, tuning
from core.modeling.candidates import MODEL_TAG, ROLE_TAG
from core.modeling.results import (
    CandidateResult,
    Diagnostics,
    EvaluatedCandidate,
    HeldOutPredictions,
    LearningCurve,
    TrainingSetup,
    TunedCandidate,
)
from tests.unit.conftest import FEATURES, TARGET, Lab, make_settings

ROOT = Path(__file__).resolve().parents[2]


def candidate(name: str, cv: float, test: float, run_id: str = "r", uri: str = "u") -> CandidateResult:
    return CandidateResult(name=name, label=name.upper(), test={"log_loss": test, "f1": 0.5, "roc_auc": 0.7},
                           cv={"log_loss": cv, "roc_auc": 1 - cv}, params={}, run_id=run_id, model_uri=uri,
                           seconds=1.0, threshold=0.4)


# --------------------------------------------------------------------------- results as data
def test_predictions_and_diagnostics_round_trip_through_json() -> None:
    preds = HeldOutPredictions(y_true=np.array([0, 1, 1]), proba=np.array([0.1, 0.8, 0.35]), threshold=0.3)
    back = HeldOutPredictions.from_dict(json.loads(json.dumps(preds.to_dict())))
    np.testing.assert_array_equal(back.y_true, preds.y_true)
    np.testing.assert_array_equal(back.proba, preds.proba)
    assert back.threshold == 0.3
    assert HeldOutPredictions.from_dict({"y_true": [0], "proba": [0.2]}, default_threshold=0.5).threshold == 0.5
    diag = Diagnostics(kind="coefficient", features=("a", "b"), values=(0.5, -1.0),
                       learning_curve=LearningCurve(sizes=(10, 20), train_loss=(0.4, 0.5), test_loss=(0.7, 0.6)),
                       params={"C": "1.0"})
    assert Diagnostics.from_dict(json.loads(json.dumps(diag.to_dict()))) == diag


def test_malformed_stored_data_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        HeldOutPredictions.from_dict({"y_true": [0, 1], "proba": [0.2]})
    good = {"kind": "importance", "features": ["a", "b"], "values": [0.5, 0.5],
            "learning_curve": {"sizes": [1], "train_loss": [0.1], "test_loss": [0.2]}}
    with pytest.raises(ValueError, match="2 features but 1"):
        Diagnostics.from_dict({**good, "values": [1.0]})
    with pytest.raises(KeyError):
        Diagnostics.from_dict({k: v for k, v in good.items() if k != "learning_curve"})


# --------------------------------------------------------------------------- choose
def test_best_is_chosen_on_cross_validation_never_the_test_split() -> None:
    a, b = candidate("lr", cv=0.50, test=0.60), candidate("dt", cv=0.55, test=0.40)
    assert selection.best([a, b], "log_loss") is a  # b is better on the test split only
    assert selection.best([a, b], "roc_auc") is a  # larger is better: 0.50 vs 0.45
    assert selection.best([a, candidate("tie", cv=0.50, test=0.1)]) is a  # the first on a tie
    with pytest.raises(ValueError, match="No candidate"):
        selection.best([])


def test_choose_without_a_champion_promotes_and_refuses_an_unknown_mode(tiny: Settings) -> None:
    tracking.use(tiny)
    choice = selection.choose(tiny, [candidate("lr", 0.5, 0.5), candidate("dt", 0.6, 0.4)], "log_loss")
    assert choice.winner.name == "lr" and choice.promoted and choice.before is None
    assert "no champion" in choice.reason
    with pytest.raises(ValueError, match="promote must be one of"):
        selection.choose(tiny, [candidate("lr", 0.5, 0.5)], "log_loss", promote="sometimes")


# --------------------------------------------------------------------------- evaluate, log, read back
@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, lab: Lab):
    """(settings, EvaluatedCandidate, run id, model URI): a logistic regression taken through
    `fitting.evaluate` and `run_log.log_candidate` in a SQLite store of its own (no PyCaret)."""
    import shutil

    s = make_settings(tmp_path_factory.mktemp("steps"), lab.settings.dataset, lab.settings.source_dir)
    shutil.copytree(lab.settings.data_dir, s.data_dir, ignore=shutil.ignore_patterns("run", "0[6-9]_*",
                                                                                     "inference_log*"))
    data = tuning.load_data(s)
    setup = TrainingSetup(data=data, experiment=None, folds=2)
    estimator = LogisticRegression(C=0.5, max_iter=500)
    tuned = TunedCandidate(name="lr", label="Logistic Regression", estimator=estimator, params={"C": 0.5},
                           all_params=estimator.get_params(), tuning_cv={"log_loss": 0.5}, n_iter=1)
    steps: list[str] = []
    evaluated = fitting.evaluate(setup, tuned, s, on_progress=lambda f, step: steps.append(step))
    assert steps and all(step.startswith("Logistic Regression: ") for step in steps)
    exp_id = tracking.use(s)
    with mlflow.start_run(experiment_id=exp_id, run_name="lr", tags={ROLE_TAG: "candidate", MODEL_TAG: "lr"}) as run:
        uri = run_log.log_candidate(evaluated, s, folds=2, n_iter=1, example=data.train)
    return s, evaluated, run.info.run_id, uri


def test_evaluate_returns_typed_results_at_the_candidates_threshold(logged) -> None:
    s, evaluated, *_ = logged
    assert isinstance(evaluated, EvaluatedCandidate) and evaluated.name == "lr"
    preds, diag = evaluated.predictions, evaluated.diagnostics
    assert preds.threshold == evaluated.decision.threshold.value and 0 < preds.threshold < 1
    assert len(preds.y_true) == len(preds.proba) and set(np.unique(preds.y_true)) == {0, 1}
    assert evaluated.test["log_loss"] < 1.0 and set(evaluated.decision.cv) == set(evaluated.test)
    assert diag.kind == "coefficient" and diag.features == FEATURES and len(diag.values) == len(FEATURES)
    assert diag.learning_curve.sizes[-1] == len(tuning.load_data(s).train) and diag.params == {"C": "0.5"}
    with pytest.raises(Exception):  # frozen
        evaluated.test = {}  # type: ignore[misc]


def test_a_candidate_run_stores_small_json_data_only(logged) -> None:
    s, evaluated, run_id, _ = logged
    client = tracking.client(s)
    stored = {a.path for a in client.list_artifacts(run_id)}
    assert stored == {"eval"}  # the model is a logged model of its own, beside the run
    assert {a.path for a in client.list_artifacts(run_id, "eval")} == {run_log.PREDICTIONS, run_log.DIAGNOSTICS,
                                                                    run_log.EXPLANATIONS}
    files = [f for f in (s.mlruns_dir / "artifacts").rglob("*") if f.is_file()]
    assert not [f for f in files if f.suffix == ".html"]
    assert max(f.stat().st_size for f in files) < 300_000
    run = client.get_run(run_id)
    assert run.data.params["calibration"] == evaluated.decision.calibration
    assert run.data.metrics["decision_threshold"] == pytest.approx(evaluated.predictions.threshold)


def test_the_compare_reader_gives_back_what_was_evaluated(logged) -> None:
    s, evaluated, run_id, _ = logged
    back = comparison.load_candidate(s, run_id)
    assert back.diagnostics == evaluated.diagnostics and back.figures == {}
    # the global view of its explanations (issue 31): stored with the run, read back as computed
    view = back.explanations
    assert view == evaluated.explanations and view["explainer"] == "linear" and view["scale"] == "log_odds"
    assert set(view["features"]) == set(FEATURES) and view["mean_abs"] == sorted(view["mean_abs"], reverse=True)
    np.testing.assert_allclose(back.proba, evaluated.predictions.proba, atol=1e-12)
    assert back.threshold == pytest.approx(evaluated.predictions.threshold)
    assert json.loads(json.dumps(back.to_dict()))["diagnostics"]["kind"] == "coefficient"


def test_charts_are_drawn_from_the_results(logged) -> None:
    s, evaluated, run_id, _ = logged
    words = Words.of(s.dataset)
    figs = evaluation.candidate_figures("Logistic Regression", evaluated.predictions, evaluated.diagnostics, words)
    assert list(figs) == ["roc", "pr", "calibration", "confusion", "importance", "learning_curve"]
    assert all(isinstance(f, go.Figure) and f.data for f in figs.values())
    assert figs["importance"].layout.title.text == "Logistic Regression: feature coefficient"
    assert figs["confusion"].layout.title.text.endswith(f"{evaluated.predictions.threshold:.2f}")
    back = comparison.load_candidate(s, run_id)
    imp = evaluation.diagnostic(back, "importance", words=words)
    assert imp.to_plotly_json() == figs["importance"].to_plotly_json()
    curve = evaluation.diagnostic(back, "learning_curve", "lr · v1", words=words)
    # as the page drew the logged figure before figures were stored as data
    assert curve.to_plotly_json() == figs["learning_curve"].update_layout(title="lr · v1").to_plotly_json()
    assert list(curve.data[0].x) == list(evaluated.diagnostics.learning_curve.sizes)
    with pytest.raises(ValueError, match="Unknown diagnostic figure"):
        evaluation.diagnostic(back, "roc")


def test_register_and_promote_give_the_aliases(logged) -> None:
    s, evaluated, run_id, uri = logged
    winner = candidate("lr", 0.5, evaluated.test["log_loss"], run_id=run_id, uri=uri)
    first = selection.record(s, winner, True, "parent")
    assert registry.champion(s).version == first and registry.champion(s).model == "lr"
    second = selection.record(s, winner, False, "parent")
    assert registry.champion(s).version == first
    assert registry.alias_version(s, registry.CHALLENGER).version == second
    promotion.promote(s, second)
    assert registry.champion(s).version == second and registry.alias_version(s, registry.CHALLENGER) is None


# --------------------------------------------------------------------------- older runs
def _legacy_run(s: Settings, files: dict[str, str]) -> str:
    """A candidate run as an older workbench logged it: `files` (path -> text) as artifacts."""
    import tempfile

    exp_id = tracking.use(s)
    with mlflow.start_run(experiment_id=exp_id, run_name="dt", tags={ROLE_TAG: "candidate", MODEL_TAG: "dt"}) as run:
        with tempfile.TemporaryDirectory() as tmp:
            for path, text in files.items():
                (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / path).write_text(text)
            mlflow.log_artifacts(tmp)
    return run.info.run_id


def test_an_older_run_with_only_its_html_page_says_where_to_look(tiny: Settings) -> None:
    run_id = _legacy_run(tiny, {"figures/evaluation.html": "<html></html>"})
    with pytest.raises(TrackingError, match="older workbench .* figures/evaluation.html"):
        comparison.load_candidate(tiny, run_id)


def test_an_older_run_with_plotly_figures_still_shows_them(tiny: Settings) -> None:
    logged_fig = evaluation.importance(["a", "b"], [0.2, -0.4], "coefficient", "Decision Tree: feature coefficient")
    preds = {"y_true": [0, 1, 1, 0], "proba": [0.2, 0.7, 0.6, 0.1], "threshold": 0.5}
    run_id = _legacy_run(tiny, {"eval/test_predictions.json": json.dumps(preds),
                                "figures/importance.json": logged_fig.to_json(),
                                "figures/evaluation.html": "<html></html>"})
    back = comparison.load_candidate(tiny, run_id)
    assert back.diagnostics is None and set(back.figures) == {"importance"}
    shown = evaluation.diagnostic(back, "importance")
    assert shown.layout.title.text == "Decision Tree: feature coefficient"
    assert evaluation.diagnostic(back, "learning_curve") is None  # not stored: the page says so


# --------------------------------------------------------------------------- layers
def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "core" / "modeling").glob("*.py")), ids=lambda p: p.name)
def test_modeling_never_draws(path: Path) -> None:
    """core/modeling/ never imports core/charts (not even inside a function), plotly or streamlit."""
    bad = {n for n in _imports(path) if n.startswith(("core.charts", "plotly", "streamlit"))}
    assert bad == set()


def test_training_target_column_is_not_spelled_by_the_steps() -> None:
    for name in ("tuning.py", "fitting.py", "run_log.py", "selection.py", "training.py"):
        assert f'"{TARGET}"' not in (ROOT / "core" / "modeling" / name).read_text()
