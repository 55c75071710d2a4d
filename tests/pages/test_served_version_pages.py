"""Home, Serve and Production in AppTest when the model server is stale (it serves v1, the
champion is v2): each says "serving v1, champion v2", and one click restarts it on the champion."""
from __future__ import annotations

import pytest

from core.config import Settings
from core.serving import server
from tests.conftest import make_champion_home, register_lr_champion


@pytest.fixture(scope="module")
def stale(tmp_path_factory: pytest.TempPathFactory):
    """A home whose server runs v1 while v2 is the champion (the server is stopped afterwards)."""
    s = make_champion_home(tmp_path_factory.mktemp("stale-pages")).replace(serve_port=server.free_port())
    server.start(s)
    register_lr_champion(s, "second-model")
    try:
        yield s
    finally:
        server.stop(s)


def _stale_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "The model server is stale" in w.value]


def _run(run_page, monkeypatch, page: str, s: Settings):
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(s.serve_port))
    at = run_page(page, s)
    assert not at.exception
    return at


def test_home_and_production_say_which_version_is_served(run_page, monkeypatch, stale: Settings) -> None:
    home = _run(run_page, monkeypatch, "app.py", stale)
    assert {m.label: m.value for m in home.metric}["Model server"] == "stale"
    assert any("serving v1, champion v2" in w for w in _stale_warnings(home))
    assert [b.label for b in home.button if b.label.startswith("Restart on")] == ["Restart on v2"]
    production = _run(run_page, monkeypatch, "pages/5_Production.py", stale)
    assert any("serving v1, champion v2" in w for w in _stale_warnings(production))


def test_serve_page_warns_and_restarts_on_the_champion(run_page, monkeypatch, stale: Settings) -> None:
    at = _run(run_page, monkeypatch, "pages/4_Serve.py", stale)
    assert {m.label: m.value for m in at.metric}["Version served"] == "v1"
    assert any("serving v1, champion v2" in w for w in _stale_warnings(at))
    assert any("started in" in c.value for c in at.caption)  # the start time, shown
    at.button(key="serve_restart_on_champion").click().run()
    assert not at.exception and not at.error, at.error[0].value if at.error else ""
    assert {m.label: m.value for m in at.metric}["Version served"] == "v2"
    assert not _stale_warnings(at)
    now = server.status(stale, with_champion=True)
    assert now.running and now.model_version == "2" and not now.stale and now.port == stale.serve_port
    # the answer shows the latency in two parts
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert any("Latency = server" in c.value and "network round trip and client" in c.value for c in at.caption)
