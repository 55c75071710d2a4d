"""The served model explains on request (issue 31): with MLflow's `params` `{"explain": true}` each
row's usual answer comes with its explanation, which adds up to the model's output on its scale;
without the parameter nothing changes. Through a logged model loaded by MLflow's pyfunc (binary
with categories, calibrated), and through the workbench's real server and `predict --explain
--json` on the command line (multiclass)."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy.special import logit, softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from core import tracking
from core.modeling import model_io, preprocess
from core.serving import client, server
from tests.conftest import make_settings
from tests.core.test_explanations import FEATURES, shop, spec
from tests.core.test_task_serving import ROWS, cli
from tests.task_homes import make_task_home


def test_a_logged_model_explains_on_request_and_answers_as_before_without(tmp_path: Path) -> None:
    definition = spec("binary")
    train = shop("binary")
    pipeline = Pipeline([*preprocess.preprocessor(definition, 0), ("model", DecisionTreeClassifier(max_depth=4))])
    model = CalibratedClassifierCV(pipeline, method="sigmoid", ensemble=False, cv=3).fit(train[FEATURES], train["y"])
    s = make_settings(tmp_path)
    with mlflow.start_run(experiment_id=tracking.use(s)):
        info = model_io.log_model(model, tuple(FEATURES), train, rules=definition.rules,
                                  categorical=definition.categorical_features)
    served = mlflow.pyfunc.load_model(info.model_uri)
    x = shop("binary", n=6, seed=8)[FEATURES]
    plain = served.predict(x)
    assert isinstance(plain, np.ndarray)
    np.testing.assert_allclose(plain, model.predict_proba(x), atol=1e-12)
    explained = served.predict(x, params={"explain": True})
    assert len(explained) == len(x)
    np.testing.assert_allclose(np.asarray(explained), plain, atol=0)  # numbers as always for the log
    for row, p in zip(explained, plain):
        assert row["prediction"] == p.tolist()
        e = row["explanation"]
        assert e["scale"] == "log_odds" and set(e["contributions"]) == set(FEATURES)
        assert abs(e["base_value"] + sum(e["contributions"].values()) - logit(p[1])) < 1e-6
    # the answer is JSON as MLflow writes it
    assert json.loads(json.dumps(list(explained)))[0]["explanation"]["scale"] == "log_odds"


@pytest.mark.slow
def test_the_server_and_predict_explain_a_multiclass_row(tmp_path: Path) -> None:
    home = make_task_home(tmp_path / "home", "multiclass")
    s = home.settings.replace(serve_port=server.free_port())
    row = ROWS["multiclass"]
    server.start(s)
    try:
        with client.Client(server.status(s).url, 30.0, s.features) as c:
            rows = [[row[f] for f in s.features]]
            plain = c.answer_rows(rows)
            answer, explained = c.explain_rows(rows)
        np.testing.assert_allclose(answer, plain, atol=1e-12)
        e = explained[0]
        names = list(s.dataset.target.names)
        assert e["scale"] == "logit" and list(e["contributions"]) == names
        logits = np.array([e["base_value"][k] + sum(e["contributions"][k].values()) for k in names])
        np.testing.assert_allclose(softmax(logits), plain[0], atol=1e-6)
        out = cli(home, "predict", "--input", json.dumps(row), "--explain", "--json")
        assert out.returncode == 0, out.stderr
        printed = json.loads(out.stdout)
        assert printed["explanation"] == e and list(printed["probabilities"]) == names
        without = json.loads(cli(home, "predict", "--input", json.dumps(row), "--json").stdout)
        assert "explanation" not in without
        assert without["probabilities"] == printed["probabilities"]
    finally:
        server.stop(s)


def test_a_plain_answer_to_explain_stands_without_an_explanation() -> None:
    """A version logged before explanations ignores the parameter (its signature lacks it): its
    answer stands, without an explanation (predict_one and the CLI then warn, naming why)."""
    plain, none = client.parse_explained('{"predictions": [[0.4, 0.6]]}')
    assert plain.tolist() == [[0.4, 0.6]] and none is None and "logged before explanations" in client.NO_EXPLANATIONS
    answer, explained = client.parse_explained(
        '{"predictions": [{"prediction": [0.4, 0.6], "explanation": {"base_value": 0.1, "scale": "log_odds"}}]}')
    assert answer.tolist() == [[0.4, 0.6]] and explained[0]["scale"] == "log_odds"
