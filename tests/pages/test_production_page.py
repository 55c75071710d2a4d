"""Production page in AppTest: empty states, scoring in-process and the adherence verdict."""
from __future__ import annotations

import io

import pandas as pd

from core import tracking
from core.config import Settings
from core.data import preparation
from core.scoring import exports, local
from ui.pages import NAVIGATION


def test_production_page_without_champion_says_train_first(run_page, prepared_settings: Settings) -> None:
    at = run_page("pages/5_Production.py", prepared_settings)
    assert not at.exception
    assert "No champion yet" in at.info[0].value


def test_score_button_scores_and_explains(run_page, champion_settings: Settings) -> None:
    at = run_page("pages/5_Production.py", champion_settings)
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception
    n_prod = len(preparation.load_split(champion_settings, "prod"))  # the batch the button scores
    assert f"Scored {n_prod:,} rows" in at.success[0].value
    run = tracking.last_run(champion_settings, local.APPLY_RUN)
    assert run is not None and run["run_id"] in at.success[0].value
    answer = at.error[0].value
    assert "not adherent" in answer and "F1 falls from" in answer
    assert "python -m core" not in answer  # the next steps are links to pages, not commands
    # through the app's navigation, as a browser opens it, the next steps are links to the Drift page
    app = run_page("app.py", champion_settings).switch_page("pages/5_Production.py").run()
    assert not app.exception and app.title[0].value == "Production: Kobe Bryant shots"
    links = app.get("page_link")
    drift_url = NAVIGATION["drift"][2]  # the Drift page's URL path
    assert [link.proto.page for link in links] == [drift_url, drift_url]
    assert "Retrain" in links[1].proto.label
    next(s for s in at.slider if s.key.startswith("production_threshold")).set_value(0.3).run()
    assert not at.exception
    assert "threshold 0.30" in at.error[0].value
    assert {"test", "production", "change"} <= set(at.dataframe[0].value.columns)
    # the scored rows to download, built by core: every row, as CSV and as parquet
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download parquet"]
    csv = pd.read_csv(io.BytesIO(exports.scored_rows(champion_settings, "csv")))
    parquet = pd.read_parquet(io.BytesIO(exports.scored_rows(champion_settings, "parquet")))
    assert len(csv) == len(parquet) == n_prod
    assert list(parquet.columns) == list(csv.columns) and champion_settings.dataset.proba_column in parquet


def test_spark_engine_offered_when_pyspark_is_installed(run_page, champion_settings: Settings) -> None:
    from core.scoring import spark

    at = run_page("pages/5_Production.py", champion_settings)
    assert not at.exception
    options = list(next(r for r in at.radio if "In-process" in r.options).options)
    assert "In-process" in options
    assert ("Spark" in options) == spark.available()
