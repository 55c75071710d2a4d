"""One figure for "outside the training range" (`core.data.profile.outside_range`): the
Production verdict (`adherence`) and the drift check (`check.check`, its table and chart) give the
same share per feature on the same batch."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import batches, preparation, profile
from core.modeling import model_io, registry
from core.monitoring import adherence, check, drift_report
from tests.unit.conftest import Lab


def test_outside_range_counts_below_and_above_and_leaves_missing_inside() -> None:
    values = pd.Series([0.0, 1.0, 2.0, -0.5, 3.0, np.nan, 2.0000001], dtype="Float64")
    assert profile.outside_range(values, 0.0, 2.0) == (1, 2)  # the bounds are inside; NA is neither
    assert profile.outside_range(np.array([np.nan, 5.0]), 0.0, 2.0) == (0, 1)
    shares = profile.share_out_of_range(pd.DataFrame({"x": values}), {"x": (0.0, 2.0)})
    assert shares == {"x": pytest.approx(3 / 7)}  # of every row, the missing one included


def test_production_verdict_and_drift_check_give_the_same_outside_share(lab: Lab) -> None:
    s = lab.settings
    train = preparation.load_split(s, "train")
    test = preparation.load_split(s, "test")
    prod = preparation.load_split(s, "prod").reset_index(drop=True)
    low, high = float(train["usage_hours"].min()), float(train["usage_hours"].max())
    prod.loc[:9, "usage_hours"] = low  # on the bound: inside for both
    prod.loc[10:16, "usage_hours"] = high + 0.5  # above
    report = check.check(batches.from_frame(prod, s, "outside"), s, store=False, log=False,
                         model=registry.champion(s))

    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        p = model_io.predict_proba(lab.model, frame, s.features, s.dataset.categorical_features)
        return frame.assign(**{s.dataset.proba_column: p})

    verdict = adherence.adherence(scored(prod), scored(test), train, s.dataset,
                                  registry.require_champion(s).decision_threshold, s.drift)
    numeric = [f for f in s.features if f in profile.training_ranges(train, s.features)]
    assert numeric and verdict.out_of_range["usage_hours"] >= 7 / len(prod)
    for f in numeric:
        assert report.stats.features[f].out_of_range == pytest.approx(verdict.out_of_range[f], abs=1e-12), f
    rows = {r["feature"]: r for r in drift_report.feature_rows(report)}
    assert rows["usage_hours"]["outside training range"] == pytest.approx(verdict.out_of_range["usage_hours"])
    # the sentence names the rows its share counts (the scored rows), so a drift check of the whole
    # batch file, unlabelled rows included, can be told apart (issue 30: 13.9 % vs 13.8 %)
    assert f"(the {len(prod):,} scored " in verdict.text and "for " in verdict.text
