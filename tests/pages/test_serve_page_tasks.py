"""The Serve page answers a regression with its value and interval, and a multiclass model with its
class in words and a bar per class (issue 34), against a real model server; no class threshold."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.serving import inference_log, server
from tests.conftest import ROOT
from tests.task_homes import make_task_home


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_the_answer_speaks_the_tasks_language(task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = make_task_home(tmp_path / "home", task)
    s = home.settings.replace(serve_port=server.free_port())
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    monkeypatch.setenv("WORKBENCH_DATASET", s.dataset.name)
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(s.serve_port))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    server.start(s)
    try:
        at = AppTest.from_file(str(Path(ROOT) / "pages/4_Serve.py"), default_timeout=120).run()
        assert not at.exception
        assert not at.slider  # no class threshold: the model decides otherwise
        at.get("form_submit_button")[0].click().run()
        assert not at.exception, at.exception
        metrics = {m.label: m.value for m in at.metric}
        said = " ".join(m.value for m in at.markdown)
        if task == "regression":
            assert metrics["Predicted price"].endswith(" USD") and " – " in metrics["90 % interval"]
            assert "Predicted price: " in said and "(90 % interval " in said
        else:
            names = s.dataset.target.names
            assert metrics["Predicted species"] in names and metrics["Its probability"].endswith("%")
            assert "Predicted species: " in said
            bars = [c for c in at.get("plotly_chart") if "Probability per class" in c.proto.spec]
            assert len(bars) == 1  # (the operations section below draws its own charts)
        assert inference_log.count(s) == 1
        assert not at.error
    finally:
        server.stop(s)
