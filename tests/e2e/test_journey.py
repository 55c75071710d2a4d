"""The analyst's journey in headless Chromium, page by page, with a screenshot of each step."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import Journey

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def journey(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    j = Journey(context.new_page(), app_url, "journey")
    yield j
    context.close()


def test_home_shows_status(journey: Journey) -> None:
    journey.open()
    journey.page.get_by_text("Prepare the data.").wait_for(timeout=30_000)
    journey.shot("01-home")
    journey.assert_clean()


def test_data_prepare_and_shot_chart(journey: Journey) -> None:
    journey.open("Data")
    journey.page.get_by_text("No prepared data yet").wait_for(timeout=30_000)
    journey.page.get_by_role("button", name="Prepare data").click()
    journey.page.get_by_text("Prepared 20,285 labelled rows").wait_for(timeout=120_000)
    journey.settle()
    journey.shot("02-data-overview")
    menu = journey.page.frame_locator("iframe[title='streamlit_option_menu.option_menu']")
    menu.get_by_text("Shot chart").click()
    journey.settle()
    journey.page.get_by_text("Dev: 2-point shots").wait_for(timeout=30_000)
    assert journey.page.locator(".js-plotly-plot").count() == 2
    journey.shot("03-data-shot-chart")
    journey.assert_clean()
