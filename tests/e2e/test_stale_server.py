"""The stale-server warning in headless Chromium: the model server runs v1, v2 is promoted; the
Serve page says "serving v1, champion v2" and one click restarts the server on the champion.
Screenshots in test-artifacts/e2e/stale-*.png."""
from __future__ import annotations

from typing import Iterator

import pytest

from core.serving import server
from tests.conftest import make_champion_home, register_lr_champion
from tests.e2e.conftest import App, Journey, free_port, running_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stale_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app on a home whose model server serves v1 while v2 is the champion."""
    s = make_champion_home(tmp_path_factory.mktemp("e2e-stale")).replace(serve_port=free_port())
    server.start(s)
    register_lr_champion(s, "second-model")
    try:
        with running_app(s.home, s.serve_port) as url:
            yield url
    finally:
        server.stop(s)


def test_serve_page_warns_of_a_stale_server_and_restarts_it(browser, stale_app: App) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    j = Journey(context.new_page(), stale_app, "stale")
    try:
        j.open()
        j.page.get_by_text("serving v1, champion v2").first.wait_for(timeout=60_000)
        j.shot("01-home")
        j.open("Serve")
        banner = j.page.locator("[data-testid='stAlert']", has_text="The model server is stale")
        banner.first.wait_for(timeout=60_000)
        assert "serving v1, champion v2" in banner.first.inner_text()
        j.shot("02-serve-stale")
        j.page.get_by_role("button", name="Restart on v2").click()
        j.page.locator("[data-testid='stMetricValue']", has_text="v2").first.wait_for(timeout=90_000)
        j.settle()
        assert j.page.locator("[data-testid='stAlert']", has_text="The model server is stale").count() == 0
        assert j.page.locator("[data-testid='stMetricValue']", has_text="v2").count() >= 1
        j.shot("03-serve-restarted")
        j.page.get_by_role("button", name="Predict").click()
        j.page.get_by_text("Latency = server").wait_for(timeout=60_000)
        j.settle()
        j.shot("04-serve-latency")
        j.assert_clean()
    finally:
        context.close()
