"""Production scoring in-process and adherence (`core/scoring/local.py`, `adherence.py`) on the tiny
champion, in the tiny dataset's words."""
from __future__ import annotations

from core.modeling import registry

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import tracking
from core.data import preparation
from core.data.batches import BatchError
from core.errors import NotPreparedError, TrackingError
from core.modeling import model_io, promotion
from core.monitoring import adherence
from core.scoring import exports, local
from tests.unit.conftest import (FEATURES, TARGET, Lab, definition_text, make_settings, prod_frame, register_lr,
                                 with_spec, write_definition)

KOBE_WORDS = re.compile(r"\b(shots?|made|missed|kobe)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def scored(lab: Lab) -> tuple[local.ScoreResult, local.ScoreResult]:
    """The prepared production batch scored twice in-process (the second keeps the first's output)."""
    first = local.score(lab.settings, in_process=True, model=registry.champion(lab.settings))
    second = local.score(lab.settings, in_process=True, threshold=0.3, model=registry.champion(lab.settings))
    return first, second


def test_score_writes_the_output_with_the_definitions_columns(lab: Lab, scored) -> None:
    first, second = scored
    s = lab.settings
    out = local.load_scored(s)
    assert Path(second.output) == s.predictions_path
    assert list(out.columns) == [*FEATURES, "proba_churned", "pred_churned", "predicted_churn", "class_name", TARGET,
                                 "model_version"]
    assert len(out) == first.rows == lab.prep.prod_rows and first.labelled_rows == first.rows
    prod = preparation.load_split(s, "prod")
    np.testing.assert_allclose(out["proba_churned"], model_io.predict_proba(lab.model, prod, FEATURES))
    assert (out["pred_churned"] == (out["proba_churned"] >= 0.3).astype(int)).all()  # the second's threshold
    assert out[TARGET].tolist() == prod[TARGET].astype(float).tolist()
    assert set(out["model_version"]) == {lab.version} == {first.model_version}
    assert first.path == local.IN_PROCESS and first.url is None and second.threshold == 0.3


def test_score_logs_a_run_with_metrics(lab: Lab, scored) -> None:
    first, second = scored
    ids = [r.info.run_id for r in tracking.runs(lab.settings, local.APPLY_RUN)]
    assert first.mlflow_run_id in ids and second.mlflow_run_id in ids and first.mlflow_run_id != second.mlflow_run_id
    run = tracking.client(lab.settings).get_run(second.mlflow_run_id).data
    assert run.params["model_version"] == lab.version and run.params["path"] == "in-process"
    assert run.params["rows"] == str(second.rows) and float(run.params["threshold"]) == 0.3
    assert run.params["batch_digest"] == second.batch_digest
    assert run.metrics["f1"] == pytest.approx(second.metrics["f1"])
    assert 0 < run.metrics["predicted_positive_share"] < 1
    assert second.metrics is not None and set(second.metrics) >= {"f1", "roc_auc", "log_loss"}
    artifacts = tracking.client(lab.settings).list_artifacts(second.mlflow_run_id, "predictions")
    assert [Path(a.path).name for a in artifacts] == [lab.settings.predictions_path.name]


def test_an_earlier_output_is_kept(lab: Lab, scored) -> None:
    first, second = scored
    assert first.kept_previous is None and second.kept_previous is not None
    kept = pd.read_parquet(second.kept_previous)
    assert Path(second.kept_previous).parent == lab.settings.model_output_dir
    assert (kept["pred_churned"] == (kept["proba_churned"] >= 0.5).astype(int)).all()  # the first's threshold


def test_a_batch_file_without_labels_is_scored_without_metrics(lab: Lab, tmp_path: Path) -> None:
    prod = preparation.load_split(lab.settings, "prod").head(30)
    path = tmp_path / "unlabelled.csv"
    prod.drop(columns=[TARGET]).to_csv(path, index=False)
    s = lab.settings.replace(home=tmp_path / "other")  # its own output folder and store...
    s = s.replace(tracking_uri_override=lab.settings.tracking_uri)  # ... but the lab's registry
    r = local.score(s, batch=path, in_process=True, model=registry.champion(s))
    assert r.rows == 30 and r.labelled_rows == 0 and r.metrics is None
    assert r.batch_source == str(path.resolve())
    out = local.load_scored(s)
    assert TARGET not in out and "proba_churned" in out


def test_an_invalid_batch_file_is_refused_before_scoring(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("usage_hours,support_calls,premium\n120,1,0\n")
    s = lab.settings.replace(home=tmp_path / "other", tracking_uri_override=lab.settings.tracking_uri)
    with pytest.raises(BatchError, match="usage_hours: out-of-domain values in 1 row"):
        local.score(s, batch=path, in_process=True, model=registry.champion(s))
    assert not s.predictions_path.exists()


def test_scoring_needs_prepared_data_and_a_champion(lab: Lab, tiny) -> None:
    with pytest.raises(NotPreparedError, match="prepare the data first"):
        local.score(tiny, in_process=True, model=registry.champion(tiny))
    with pytest.raises(NotPreparedError, match="No scored batch yet"):
        local.load_scored(tiny)
    nobody = with_spec(lab.settings, model_name="tiny-nobody")
    before = lab.settings.predictions_path.stat().st_mtime_ns
    with pytest.raises(TrackingError, match="No champion yet"):
        local.score(nobody, in_process=True, model=registry.champion(nobody))
    assert lab.settings.predictions_path.stat().st_mtime_ns == before  # nothing written


def test_with_outcome_and_scored_version(spec) -> None:
    scored = pd.DataFrame({"proba_churned": [0.9, 0.2, 0.6, 0.4], "churn": [1.0, 1.0, np.nan, 0.0],
                           "model_version": ["3 (assumed)"] * 4})
    out = local.with_outcome(scored, spec, 0.5)
    assert out["outcome"].tolist() == ["Correct", "Incorrect", "Correct"]  # the unlabelled row left out
    empty = local.with_outcome(scored.drop(columns=["churn"]), spec, 0.5)
    assert empty.empty and {"churn", "outcome"} <= set(empty.columns)
    assert local.scored_version(scored) == "3"
    with pytest.raises(local.ScoringError, match="does not say which model version"):
        local.scored_version(scored.drop(columns=["model_version"]))


# --------------------------------------------------------------------------- adherence
@pytest.fixture(scope="module")
def judged(lab: Lab, scored) -> adherence.Adherence:
    s = lab.settings
    test = local.test_predictions(s, lab.version)
    train = preparation.load_split(s, "train")
    return adherence.adherence(local.load_scored(s), test, train, s.dataset, 0.5)


def test_adherence_judges_the_shifted_batch_not_adherent(lab: Lab, judged: adherence.Adherence) -> None:
    # production usage lies above the training range for far more than 5 % of the customers
    assert judged.out_of_range["usage_hours"] > 0.05
    assert judged.verdict == "not adherent"
    assert judged.prod_metrics is not None and judged.prod_actual_positive == pytest.approx(
        lab.prep.positive_rate["prod"], abs=1e-6)
    assert "usage_hours" in judged.shifted  # the median moved by more than half a standard deviation
    assert len(judged.next_steps) == 2 and "retrain" in judged.next_steps[1]
    # the page links each step's stage; the command line reads the same steps as text
    assert [step.stage for step in judged.steps] == ["drift", "drift"]
    assert judged.next_steps == tuple(step.text for step in judged.steps)
    assert "Next step" not in judged.text and "python -m core" not in judged.text  # the answer, not the commands
    assert judged.to_dict()["steps"][1]["label"].startswith("Retrain with production labels")


def test_adherence_speaks_the_datasets_words(judged: adherence.Adherence) -> None:
    text = judged.text
    assert "production customers are predicted churned" in text
    assert "The typical customer moved" in text
    assert not KOBE_WORDS.search(text), KOBE_WORDS.search(text)


def test_adherence_without_labels_is_unknown(lab: Lab, judged: adherence.Adherence) -> None:
    s = lab.settings
    unlabelled = local.load_scored(s).drop(columns=[TARGET])
    test = local.test_predictions(s, lab.version)
    a = adherence.adherence(unlabelled, test, preparation.load_split(s, "train"), s.dataset, 0.5)
    assert a.verdict == "unknown (no labels)" and a.prod_metrics is None and a.prod_actual_positive is None
    assert "of its customers are predicted churned" in a.text and "mean P(churned)" in a.text
    assert not KOBE_WORDS.search(a.text)


def test_adherence_on_a_batch_like_the_test_set_is_adherent(lab: Lab) -> None:
    s = lab.settings
    test = local.test_predictions(s, lab.version)
    like = test.assign(**{s.dataset.pred_column: (test["proba_churned"] >= 0.5).astype(int)})
    a = adherence.adherence(like, test, preparation.load_split(s, "train"), s.dataset, 0.5)
    assert a.verdict == "adherent" and all(share <= 0.05 for share in a.out_of_range.values())
    assert a.text.startswith("Yes, the champion holds up") and len(a.next_steps) == 1
    assert [step.stage for step in a.steps] == ["drift"]  # nothing to retrain
    assert a.prod_metrics == pytest.approx(a.test_metrics)


def test_the_metrics_table_sets_test_and_production_side_by_side(judged: adherence.Adherence) -> None:
    table = adherence.metrics_table(judged)
    labels = [adherence.metrics.METRIC_LABELS[name] for name in adherence.metrics.METRIC_NAMES]
    assert table["metric"].tolist() == labels and "roc_auc" not in labels  # the labels, not the keys
    row = table.set_index("metric").loc["F1"]
    assert row["test"] == judged.test_metrics["f1"] and row["production"] == judged.prod_metrics["f1"]
    assert row["change"] == pytest.approx(row["production"] - row["test"])


# --------------------------------------------------------------------------- positive class 0 (issue 28 item 9)
@pytest.fixture(scope="module")
def flipped(tmp_path_factory: pytest.TempPathFactory, source_dir: Path):
    """The tiny data defined with positive class 0 ("churned" is churn == 0, as with `dataset add
    --positive 0`), prepared, a champion, and its production batch scored in-process."""
    spec = write_definition(tmp_path_factory.mktemp("flipped_def") / "tiny-flipped",
                            definition_text(source_dir, name="tiny-flipped", positive=0, negative=1))
    s = make_settings(tmp_path_factory.mktemp("flipped"), spec, source_dir)
    preparation.prepare(s)
    version, _ = register_lr(s)
    promotion.promote(s, version)
    return s, local.score(s, in_process=True, model=registry.champion(s))


def test_with_positive_class_0_the_scored_rows_and_exports_carry_the_raw_target(flipped) -> None:
    s, result = flipped
    raw = prod_frame().query('segment == "online"')[TARGET].astype(int).tolist()
    out = local.load_scored(s)
    csv = pd.read_csv(io.BytesIO(exports.scored_rows(s, "csv")))
    parquet = pd.read_parquet(io.BytesIO(exports.scored_rows(s, "parquet")))
    for frame in (out, csv, parquet):
        assert frame[TARGET].tolist() == raw  # as in the data, not inverted
        # the predicted class as the data holds it, beside the 1 / 0 flag of the positive class
        assert frame["predicted_churn"].tolist() == [0 if p == 1 else 1 for p in frame["pred_churned"]]
    assert list(out.columns) == [*FEATURES, "proba_churned", "pred_churned", "predicted_churn", "class_name", TARGET,
                                 "model_version"]
    assert out["class_name"].tolist() == ["churned" if p == 1 else "stayed" for p in out["pred_churned"]]
    # the outcome and the metrics still read the labels right: positive = churn 0
    rows = local.with_outcome(out, s.dataset, result.threshold)
    assert rows["actual_churned"].tolist() == [1.0 if v == 0 else 0.0 for v in raw]
    assert ((rows["pred_churned"] == rows["actual_churned"]) == (rows["outcome"] == "Correct")).all()
    judged = adherence.adherence(out, local.test_predictions(s, result.model_version),
                                 preparation.load_split(s, "train"), s.dataset, result.threshold)
    assert judged.prod_actual_positive == pytest.approx(raw.count(0) / len(raw))
    assert judged.prod_metrics["f1"] == pytest.approx(result.metrics["f1"])
