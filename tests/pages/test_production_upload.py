"""Production page: score an uploaded batch (issue 30, item 3) on a user dataset that sets no
production rows apart, with labels, without labels, and refused."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from core.scoring import exports, local
from tests.pages.test_datasets import NAME, churn_frame, run, trained_user_home, user_settings  # noqa: F401
from ui import session_keys

PAGE = "pages/5_Production.py"


def upload(at, frame: pd.DataFrame, name: str = "march.csv"):
    at.file_uploader[0].set_value((name, frame.to_csv(index=False).encode(), "text/csv")).run()
    return at


def score_button(at):
    return next(b for b in at.button if b.proto.label == "Score upload")


def test_an_uploaded_labelled_batch_is_scored_judged_and_offered(run, trained_user_home: Path) -> None:  # noqa: F811
    s = user_settings(trained_user_home)
    at = run(PAGE, trained_user_home, state={session_keys.DATASET: NAME})
    frame = churn_frame(120, seed=9)
    upload(at, frame)
    assert not at.exception and not at.error
    dest = next(m.value for m in at.markdown if "Score march.csv" in m.value)
    assert "120 rows, 120 labelled" in dest and "uploads/march-" in dest and "left alone" not in dest
    assert "\\_model\\_output" in dest  # the path as text, escaped (a code span would show the backslashes)
    score_button(at).click().run()
    assert not at.exception
    assert "Scored 120 rows in-process" in at.success[0].value
    saved = list(s.uploads_output_dir.glob("march-*.parquet"))
    assert len(saved) == 1 and not s.predictions_path.exists()  # beside, never over, the split's output
    scored = pd.read_parquet(saved[0])
    assert len(scored) == 120 and set(scored["class_name"]) <= {"yes", "no"} | set(s.dataset.class_names.values())
    assert at.subheader[0].value == "Is the model adherent to the production data?"
    assert any(box.value.startswith(("Yes", "No", "Partly", "Maybe")) for box in [*at.success, *at.error, *at.warning])
    assert "This batch has no labels" not in " ".join(i.value for i in at.info)
    assert {"test", "production", "change"} <= set(at.dataframe[0].value.columns)
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV", "Download parquet"]
    csv = pd.read_csv(io.BytesIO(exports.scored_rows(s, "csv", saved[0])))
    assert len(csv) == 120 and "class_name" in csv and exports.file_name(s, "csv", saved[0]) == saved[0].stem + ".csv"


def test_an_unlabelled_upload_says_metrics_need_labels(run, trained_user_home: Path) -> None:  # noqa: F811
    at = run(PAGE, trained_user_home, state={session_keys.DATASET: NAME})
    upload(at, churn_frame(80, seed=5).drop(columns=["churned"]), "unlabelled.csv")
    assert "no labels" in next(m.value for m in at.markdown if "Score unlabelled.csv" in m.value)
    score_button(at).click().run()
    assert not at.exception and "Scored 80 rows" in at.success[0].value
    info = " ".join(i.value for i in at.info)
    assert "This batch has no labels" in info and "metrics" in info and "need labels" in info


def test_a_bad_upload_is_refused_with_every_problem_and_nothing_saved(run, trained_user_home: Path) -> None:  # noqa: F811
    s = user_settings(trained_user_home)
    before = sorted(s.uploads_output_dir.glob("*")) if s.uploads_output_dir.exists() else []
    bad = churn_frame(30).drop(columns=["plan"]).assign(usage="lots")
    at = run(PAGE, trained_user_home, state={session_keys.DATASET: NAME})
    upload(at, bad, "bad.csv")
    assert not at.exception
    text = at.error[0].value
    assert "plan" in text and "usage" in text  # both problems, each named
    assert not [b for b in at.button if b.proto.label == "Score upload"]
    after = sorted(s.uploads_output_dir.glob("*")) if s.uploads_output_dir.exists() else []
    assert after == before
