"""Home page and Data page in AppTest."""
from __future__ import annotations

from core.config import Settings


def test_home_empty_says_prepare_first(run_page, settings: Settings) -> None:
    at = run_page("app.py", settings)
    assert not at.exception
    assert at.title[0].value == "Kobe Workbench"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Data"] == "not ready" and metrics["Champion model"] == "none"
    assert metrics["Model server"] == "down" and metrics["Last drift check"] == "none"
    assert "Prepare the data" in at.info[0].value


def test_home_with_prepared_data_points_to_training(run_page, prepared_settings: Settings) -> None:
    at = run_page("app.py", prepared_settings)
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Data"] == "ready"
    assert "Train" in at.info[0].value


def test_data_page_empty_state(run_page, settings: Settings) -> None:
    at = run_page("pages/1_Data.py", settings)
    assert not at.exception
    assert "No prepared data yet" in at.info[0].value
    assert at.button[0].label == "Prepare data"


def test_data_page_prepare_button_runs_preparation(run_page, settings: Settings) -> None:
    at = run_page("pages/1_Data.py", settings)
    at.button[0].click().run()
    assert not at.exception
    assert ("Prepared 20,285 labelled rows (16,228 train, 4,057 test: share 0.2, seed 42) and 5,412 prod rows"
            in at.success[0].value)
    assert settings.train_path.exists()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Train rows"] == "16,228" and metrics["Test rows"] == "4,057"


def test_data_page_prepares_with_the_test_share_and_seed_given(run_page, settings: Settings) -> None:
    at = run_page("pages/1_Data.py", settings)
    at.number_input(key="prep_test_size").set_value(0.3)
    at.number_input(key="prep_seed").set_value(7)
    at.button[0].click().run()
    assert not at.exception
    assert "share 0.3, seed 7" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test rows"] == f"{round(20_285 * 0.3):,}" or abs(
        int(metrics["Test rows"].replace(",", "")) - 20_285 * 0.3) <= 1
    assert any("Duplicate feature rows:" in c.value for c in at.caption)  # each tile explained on the page


def test_data_page_overview_with_prepared_data(run_page, prepared_settings: Settings) -> None:
    at = run_page("pages/1_Data.py", prepared_settings)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Labelled dev rows"] == "20,285" and metrics["Prod rows (labelled)"] == "5,412"

