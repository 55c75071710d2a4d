"""Two analysts at once: one trains while the other uploads a drift batch; sessions stay apart,
and nobody can start a second training while one runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.data import preparation
from core.modeling import registry
from tests.conftest import make_settings
from tests.e2e.conftest import Journey

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ready_home(app_url) -> Path:
    """The app's home with prepared data and a champion (the journey makes them; alone, core does)."""
    s = make_settings(app_url.home)
    if not preparation.is_prepared(s):
        preparation.prepare(s)
    if registry.champion(s) is None:
        from core.modeling import training

        training.train(s, models=[], n_iter=1, folds=2)
    return app_url.home


def test_one_trains_while_the_other_uploads(browser, app_url, ready_home: Path) -> None:
    ctx_a = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx_b = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        a = Journey(ctx_a.new_page(), app_url, "user-a")
        b = Journey(ctx_b.new_page(), app_url, "user-b")
        a.open()
        b.open()
        a.open("Train")
        a.page.get_by_role("button", name="Train", exact=True).click(timeout=120_000)
        a.page.locator("[data-testid='stProgress']").first.wait_for(timeout=60_000)

        # B, meanwhile: the Train page refuses a second training …
        b.open("Train")
        b.page.get_by_text("A training is already running").wait_for(timeout=30_000)
        assert b.page.get_by_role("button", name="Train", exact=True).is_disabled()
        b.shot("01-train-refused")
        # … and B uploads a production batch on the Drift page while A's training runs
        b.open("Drift")
        raw_prod = ready_home / "data" / "01_raw" / "dataset_kobe_prod.parquet"
        b.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(raw_prod), timeout=120_000)
        b.page.get_by_text("Drifted features", exact=True).wait_for(timeout=180_000)
        b.settle()
        b.shot("02-drift-during-training")

        a.page.get_by_text("Champion:").wait_for(timeout=600_000)
        a.settle()
        a.shot("01-trained")
        # sessions stay apart: B's Train page shows no result of A's training
        b.open("Train")
        b.page.get_by_text("Pick the candidates and budget").wait_for(timeout=30_000)
        assert b.page.get_by_text("Champion:").count() == 0
        # and A's Drift page holds no report of B's upload
        a.open("Drift")
        a.page.get_by_text("Upload a batch").first.wait_for(timeout=30_000)
        assert a.page.get_by_text("Drifted features", exact=True).count() == 0
        a.assert_clean()
        b.assert_clean()
    finally:
        ctx_a.close()
        ctx_b.close()
