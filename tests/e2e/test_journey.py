"""The analyst's journey in headless Chromium, page by page, with a screenshot of each step.

Home → Data (prepare, shot chart) → Train (small budget) → Compare → Serve (start, predict)
→ Production (score, verdict) → Drift (upload the production file; then a corrupt file).
The tests run in order and share one browser page, like one analyst clicking through.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from core.data import preparation
from core.monitoring import history
from tests.conftest import make_settings
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
    # one navigation: the home page is "Home" in the sidebar (not the script's name), then the pages
    nav = [t.split()[-1] for t in journey.page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]
    assert nav == ["Home", "Data", "Train", "Compare", "Serve", "Production", "Drift"]
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


def _set_number(journey: Journey, label: str, value: str) -> None:
    box = journey.page.get_by_label(label)
    box.fill(value)
    box.press("Enter")


def test_train_small_budget(journey: Journey) -> None:
    journey.open("Train")
    _set_number(journey, "CV folds", "2")
    _set_number(journey, "Tuning iterations per candidate", "1")  # each value committed with Enter …
    journey.settle()
    assert journey.page.locator("[data-testid='stProgress']").count() == 0  # … which trains nothing
    journey.page.get_by_role("button", name="Train", exact=True).click()
    journey.page.locator("[data-testid='stProgress']").first.wait_for(timeout=60_000)  # the bar advances
    journey.shot("04-train-running")
    journey.page.get_by_text("Champion:").wait_for(timeout=600_000)
    journey.settle()
    journey.shot("05-train-done")
    assert journey.page.get_by_text("registered as kobe-shot-model version 1").count() == 1
    journey.assert_clean()


def test_train_again_is_gated_against_the_champion(journey: Journey) -> None:
    """The same small training again is not better than the champion: it is kept as challenger,
    and the page says so with both side by side."""
    journey.page.get_by_role("button", name="Train", exact=True).click()
    journey.page.get_by_text("The champion stays version 1").wait_for(timeout=600_000)
    journey.settle()
    assert journey.page.get_by_text("Champion vs challenger on the same test split").count() == 1
    assert journey.page.get_by_text("is registered as version 2", exact=False).count() == 1
    journey.shot("05b-train-gated")
    journey.assert_clean()


def test_compare_overlays_curves(journey: Journey) -> None:
    journey.open("Compare")
    journey.page.get_by_text("Overlay candidates").wait_for(timeout=60_000)
    journey.settle()
    # every tab is drawn with the page (a click is then the browser's alone): ROC shown first …
    assert journey.page.get_by_role("tabpanel").locator(".js-plotly-plot").count() == 1
    journey.page.get_by_role("tab", name="Calibration").click()  # … and a click shows another
    journey.page.get_by_role("tabpanel").locator(".js-plotly-plot", has_text="reliability").wait_for(timeout=30_000)
    journey.settle()
    # the trainings, one expandable row each (newest open), the candidates linked to their MLflow runs
    assert journey.page.get_by_text("3 candidates · best", exact=False).count() >= 1
    assert journey.page.get_by_text("registered v2 (challenger)", exact=False).count() == 1
    newest = journey.page.locator("[data-testid='stExpander'] [data-testid='stDataFrame']").first
    assert newest.inner_html().count("/runs/") >= 3  # each candidate's row links to its MLflow run
    journey.shot("06-compare")
    journey.assert_clean()


def test_serve_start_and_predict(journey: Journey) -> None:
    journey.open("Serve")
    journey.page.get_by_role("button", name="Start server").click()
    journey.page.get_by_role("button", name="Stop server").wait_for(timeout=120_000)
    journey.settle()
    journey.page.get_by_role("button", name="Predict").click()
    journey.page.get_by_text("Latency", exact=True).wait_for(timeout=60_000)
    journey.settle()
    assert journey.page.get_by_text("P(made)", exact=True).count() >= 1
    assert journey.page.get_by_text("logged as request", exact=False).count() == 1
    # the server's capture writes its log within a second: the page shows the request on its next run
    journey.open("Serve")
    journey.page.get_by_text(re.compile(r"^1 row logged from 1 request")).wait_for(timeout=30_000)
    journey.shot("07-serve")
    journey.assert_clean()


def test_production_score_and_verdict(journey: Journey) -> None:
    journey.open("Production")
    journey.page.get_by_role("button", name="Score production").click()
    journey.page.get_by_text("Is the model adherent to the production data?").wait_for(timeout=180_000)
    journey.settle()
    settings = make_settings(journey.home)
    n_prod = len(preparation.load_split(settings, "prod"))  # the prepared production batch the button scores
    assert journey.page.get_by_text(f"Scored {n_prod:,} rows over HTTP").count() == 1
    with journey.page.expect_download(timeout=60_000) as download:
        journey.page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "prod_predictions.csv"
    rows = pd.read_csv(download.value.path())
    assert len(rows) == n_prod  # every scored row of the batch
    assert {settings.dataset.proba_column, settings.dataset.pred_column} <= set(rows.columns)
    # the next steps are links to the pages that take them, not command lines
    assert journey.page.get_by_text("python -m core retrain").count() == 0
    assert journey.page.get_by_role("link", name=re.compile("Retrain with production labels")).count() == 1
    journey.shot("08-production")
    journey.assert_clean()


def test_drift_upload_then_corrupt_file(journey: Journey, tmp_path: Path) -> None:
    journey.open("Drift")
    raw_prod = Path(journey.home) / "data" / "01_raw" / "dataset_kobe_prod.parquet"
    journey.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(raw_prod))
    journey.page.get_by_text("Drifted features", exact=True).wait_for(timeout=180_000)
    journey.settle()
    assert journey.page.get_by_text("4 of 6").count() >= 1
    assert journey.page.get_by_text("Retraining alarm").count() == 1
    journey.page.locator("text=History").first.wait_for()
    journey.shot("09-drift-production")
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    journey.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    message = journey.page.get_by_text("corrupt.parquet was refused")
    message.wait_for(timeout=60_000)
    journey.settle()
    assert journey.page.get_by_text("not a readable parquet file").count() == 1
    # a refused upload keeps the last check and the history in view (and their download buttons alive)
    assert journey.page.get_by_role("heading", name="History").count() == 1
    assert journey.page.get_by_text("4 of 6").count() >= 1
    journey.shot("10-drift-corrupt-file")
    # the same batch again: its check is reused, the history gets no second point
    journey.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(raw_prod))
    journey.page.get_by_text("was checked before by v1").wait_for(timeout=180_000)
    journey.settle()
    assert len(history.history(make_settings(journey.home))) == 1
    assert journey.page.get_by_text("4 of 6").count() >= 1
    journey.shot("11-drift-same-batch-again")
    journey.assert_clean()
