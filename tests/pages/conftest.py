"""Page tests: run a page with AppTest against a chosen workbench home."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.conftest import ROOT


@pytest.fixture
def run_page(monkeypatch: pytest.MonkeyPatch):
    """run_page(path, settings, state=None) -> AppTest after one run with WORKBENCH_HOME set."""

    def run(page: str, settings: Settings, state: dict | None = None, timeout: float = 120) -> AppTest:
        monkeypatch.setenv("WORKBENCH_HOME", str(settings.home))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        at = AppTest.from_file(str(Path(ROOT) / page), default_timeout=timeout)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        return at.run()

    return run


@pytest.fixture
def run_home(monkeypatch: pytest.MonkeyPatch):
    """run_home(page, home, state=None) -> AppTest after one run with WORKBENCH_HOME=home (and no
    WORKBENCH_DATASET or MLFLOW_TRACKING_URI from the environment: the home decides)."""

    def go(page: str, home: Path, state: dict | None = None) -> AppTest:
        monkeypatch.setenv("WORKBENCH_HOME", str(home))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.delenv("WORKBENCH_DATASET", raising=False)
        at = AppTest.from_file(str(Path(ROOT) / page), default_timeout=120)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        return at.run()

    return go
