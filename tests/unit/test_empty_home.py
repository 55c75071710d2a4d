"""Commands refused (or with nothing to do) on an empty home leave it empty: no store, no lock."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main


@pytest.mark.parametrize(("args", "code"), [
    (["retrain", "--json"], 2),            # no champion: refused before the lock is taken
    (["retrain", "--if-needed", "--json"], 0),  # nothing to learn from: decided without any file
    (["drift", "--inference-log", "10", "--json"], 2),
])
def test_an_empty_home_stays_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, args: list[str],
                                   code: int) -> None:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(args) == code
    out = json.loads(capsys.readouterr().out)
    assert ("error" in out) == (code == 2)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == []
