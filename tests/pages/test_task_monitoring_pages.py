"""The Drift and Production pages on a multiclass and a regression champion (issue 34): the
per-task verdict, figures and charts (binary: test_drift_page.py, test_production_page.py).

The Production page reads the scored rows `apply` writes (contract 6 of issue 34: multiclass
`pred_class` and one `proba_<class>` per class, regression `prediction`, `prediction_lower`,
`prediction_upper`); here they are written from the champion's outputs as `apply` writes them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.data import batches
from core.monitoring import check, outputs
from tests.unit import task_homes
from ui import session_keys

DRIFT, PRODUCTION = "pages/6_Drift.py", "pages/5_Production.py"


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    home = task_homes.multiclass_home(tmp_path_factory.mktemp("tiers"), n=900)
    catalog.set_active(home.settings.home, "tiers")
    return home


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    home = task_homes.regression_home(tmp_path_factory.mktemp("prices"), n=1200)
    catalog.set_active(home.settings.home, "prices")
    return home


def _scored(home: task_homes.TaskHome, frame: pd.DataFrame) -> None:
    """Write `frame` scored by the champion where `apply` writes it (contract 6's columns)."""
    s = home.settings
    spec = s.dataset
    b = batches.from_frame(frame, s, "prod")
    out = outputs.model_outputs(home.model, b.frame, s.features, spec.categorical_features, home.version)
    scored = frame.loc[:, list(s.features)].copy()
    if home.version.kind.classifier:
        for i, column in enumerate(spec.proba_columns.values()):
            scored[column] = out[:, i]
        scored["pred_class"] = np.asarray(spec.target.names, dtype=object)[out.argmax(axis=1)]
    else:
        for i, column in enumerate(spec.prediction_columns):
            scored[column] = out[:, i]
    if s.target in frame:
        scored[s.target] = frame[s.target].to_numpy()
    scored["model_version"] = home.version.version
    s.predictions_path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(s.predictions_path, index=False)


def _report(home: task_homes.TaskHome, frame: pd.DataFrame):
    s = home.settings
    return check.check(batches.from_frame(frame, s, "prod.csv"), s, model=home.version, store=False, log=False)


@pytest.mark.parametrize("which", ["multi", "reg"])
def test_the_drift_page_shows_the_task_verdict_and_charts(run_home, which, request) -> None:
    home = request.getfixturevalue(which)
    report = _report(home, home.prod)
    at = run_home(DRIFT, home.settings.home, state={session_keys.DRIFT_REPORT: report,
                                                     session_keys.DRIFT_CHECKED_ID: "x"})
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prediction drift"] == "yes"
    assert any(report.words in m.value for m in at.markdown)
    assert any("Recommendation" in w.value for w in at.warning)
    shown = {c.value for c in at.caption}
    assert any(c.startswith("Labels: 600 labelled rows") for c in shown)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    titles = " ".join(charts)
    if which == "multi":
        assert "Class shares, test split vs batch: prediction drift" in titles and "P(high)" in titles
        assert "Reliability of the predicted class" in titles
    else:
        assert "Interval coverage" in titles and "prediction: drift" in titles
    assert any("estimated without labels by" in m.value for m in at.markdown)


@pytest.mark.parametrize("which", ["multi", "reg"])
def test_the_production_page_answers_per_task(run_home, which, request) -> None:
    home = request.getfixturevalue(which)
    _scored(home, home.prod)
    at = run_home(PRODUCTION, home.settings.home)
    assert not at.exception, at.exception
    answer = at.error[0].value  # the shifted batch: not adherent
    assert "not adherent" in answer
    if which == "multi":
        assert "Accuracy " in answer and "macro F1" in answer and "predicted class shares" in answer
    else:
        assert "RMSE rose from" in answer and "fall outside their 90% interval" in answer
    table = at.dataframe[0].value
    assert {"test", "production", "change"} <= set(table.columns)
    charts = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    if which == "multi":
        assert "Production confusion matrix" in charts and "F1 per class" in charts
    else:
        assert "Predicted vs actual price" in charts and "Interval coverage" in charts
    assert not [s for s in at.slider if s.key and s.key.startswith("production_threshold")]  # no threshold
    # without labels: the answer rests on the outputs alone
    _scored(home, home.prod.drop(columns=[home.settings.target]))
    at = run_home(PRODUCTION, home.settings.home)
    assert not at.exception, at.exception
    assert any("no labels" in w.value for w in [*at.warning, *at.info])
