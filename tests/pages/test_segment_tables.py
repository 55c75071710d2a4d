"""The worst segments' tables on the Production and Drift pages (issue 31, item 4), on a multiclass
and a regression champion (tests/unit/task_homes.py) with a labelled batch whose labels are wrong in
one category: the table's first row is that segment, with its size; unlabelled, no table. Compare's
table needs a training run (its page stops before without one): screenshots cover it
(scripts/screenshots.py --segments), the core and the command line tests/unit/test_segments.py."""
from __future__ import annotations

import pandas as pd
import pytest

from core import catalog
from core.data import batches
from core.monitoring import check
from tests.pages.test_task_monitoring_pages import _scored
from tests.unit import task_homes
from ui import session_keys

DRIFT, PRODUCTION = "pages/6_Drift.py", "pages/5_Production.py"
HEADING = "does worse: segments of this batch"


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    home = task_homes.multiclass_home(tmp_path_factory.mktemp("tiers-seg"), n=900)
    catalog.set_active(home.settings.home, "tiers")
    return home


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    home = task_homes.regression_home(tmp_path_factory.mktemp("prices-seg"), n=1200)
    catalog.set_active(home.settings.home, "prices")
    return home


def corrupted(which: str, home: task_homes.TaskHome) -> tuple[pd.DataFrame, str]:
    """The calm rows with the labels of one category made wrong; (rows, that category)."""
    raw = home.calm.copy()
    if which == "multi":
        wrong = raw["colour"] == "blue"
        shift = dict(zip(task_homes.CLASSES, task_homes.CLASSES[1:] + task_homes.CLASSES[:1]))
        raw.loc[wrong, "tier"] = raw.loc[wrong, "tier"].map(shift)
        return raw, "blue"
    wrong = raw["zone"] == "c"
    raw.loc[wrong, "price"] += 300.0
    return raw, "c"


def first_row(at) -> pd.Series:
    headings = [h.value for h in at.subheader]
    assert any(HEADING in h for h in headings), headings
    tables = [d.value for d in at.dataframe if "segment" in d.value.columns]
    assert tables, ("no segment table", [e.value for e in at.error], [s.value for s in at.success])
    return tables[0].iloc[0]


@pytest.mark.parametrize("which", ["multi", "reg"])
def test_production_shows_the_corrupted_segment_first_with_its_size(run_home, which, request) -> None:
    home = request.getfixturevalue(which)
    rows, category = corrupted(which, home)
    _scored(home, rows)
    at = run_home(PRODUCTION, home.settings.home)
    assert not at.exception, at.exception
    top = first_row(at)
    feature = "colour" if which == "multi" else "zone"
    assert top["segment"] == category and top["feature"] == home.settings.dataset.feature(feature).title
    assert top["rows"] == int((rows[feature] == category).sum())
    # unlabelled: said so, no table
    _scored(home, rows.drop(columns=[home.settings.target]))
    at = run_home(PRODUCTION, home.settings.home)
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if "segment" in d.value.columns]
    assert any("has no labels" in i.value for i in at.info)


@pytest.mark.parametrize("which", ["multi", "reg"])
def test_drift_shows_the_corrupted_segment_of_a_labelled_batch_first(run_home, which, request) -> None:
    home = request.getfixturevalue(which)
    rows, category = corrupted(which, home)
    s = home.settings
    report = check.check(batches.from_frame(rows, s, f"{which}-labelled.csv"), s, model=home.version, log=False,
                         domain=False)
    at = run_home(DRIFT, s.home, state={session_keys.DRIFT_REPORT: report, session_keys.DRIFT_CHECKED_ID: "x"})
    assert not at.exception, at.exception
    top = first_row(at)
    assert top["segment"] == category and top["rows"] == int((rows["colour" if which == "multi" else "zone"]
                                                             == category).sum())
