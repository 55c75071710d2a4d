"""One policy (`core/monitoring/policy.py`): the drift check (Drift page, `drift`), its retraining
alarm, the adherence verdict (Production page, `apply`) and `retrain --if-needed` answer the same
batches the same way, on the tiny lab's data with a champion of its own."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import DriftThresholds, RetrainPolicy, Settings
from core.data import batches, preparation
from core.modeling import model_io, registry
from core.modeling import promotion
from core.monitoring import check, domain, policy, retrain_policy
from core.monitoring import adherence
from tests.unit.conftest import TARGET, Lab, register_lr, with_spec


@pytest.fixture(scope="module")
def home(lab: Lab) -> tuple[Settings, object]:
    """The lab's data with a champion in an experiment of its own (these checks are logged)."""
    s = with_spec(lab.settings, model_name="tiny-policy-model", experiment="tiny-policy-experiment")
    version, model = register_lr(s, run_name="policy-fixture")
    promotion.promote(s, version)
    return s, model


def _scored(frame: pd.DataFrame, s: Settings, model: object) -> pd.DataFrame:
    p = model_io.predict_proba(model, frame, s.features, s.dataset.categorical_features)
    return frame.assign(**{s.dataset.proba_column: p})


def _cases(s: Settings) -> dict[str, pd.DataFrame]:
    test, prod = preparation.load_split(s, "test"), preparation.load_split(s, "prod")
    rng = np.random.default_rng(3)
    flipped = test.copy()
    flip = rng.random(len(test)) < 0.35  # the same rows, a third of the labels wrong: F1 falls
    flipped[TARGET] = np.where(flip, 1 - flipped[TARGET], flipped[TARGET])
    return {"test": test, "prod": prod, "flipped labels": flipped}


def test_every_caller_gives_the_same_verdict(home) -> None:
    s, model = home
    test_scored = _scored(preparation.load_split(s, "test"), s, model)
    train = preparation.load_split(s, "train")
    seen = {}
    for name, frame in _cases(s).items():
        report = check.check(batches.from_frame(frame, s, name), s, store=False, log=False, model=registry.champion(s))
        alarm = policy.alarm(report, s)
        a = adherence.adherence(_scored(frame, s, model), test_scored, train, s.dataset, registry.require_champion(s).decision_threshold, s.drift)
        seen[name] = a.verdict
        assert a.verdict == report.verdict["adherence"], name  # Production page = Drift page
        assert report.summary()["adherence"] == a.verdict and report.summary()["alarm"] == alarm
        if a.verdict == policy.NOT_ADHERENT:
            assert alarm and not report.recommendation.startswith("No action"), name
        if not alarm:
            assert a.verdict == policy.ADHERENT and report.recommendation.startswith(("No action", "Watch")), name
    assert seen == {"test": "adherent", "prod": "not adherent", "flipped labels": "not adherent"}


def test_retrain_if_needed_follows_the_alarm_of_the_batch_check(home) -> None:
    s, _ = home
    lazy = s.replace(retrain=RetrainPolicy(min_new_rows=10**9, every_days=10**6))
    cases = _cases(s)
    # nothing logged yet for these batches: few rows, no alarm; the policy says no (after a retraining)
    quiet = batches.from_frame(cases["test"], lazy, "test again")
    flipped = batches.from_frame(cases["flipped labels"], lazy, "flipped labels")
    check.check(quiet, lazy, store=False, model=registry.champion(lazy))
    report = check.check(flipped, lazy, store=False, model=registry.champion(lazy))
    assert policy.alarm(report, lazy) and retrain_policy.check_alarms(lazy, [flipped.digest])
    assert retrain_policy.check_alarms(lazy, [quiet.digest]) == {}
    decided = retrain_policy.decide(lazy, [flipped])
    assert decided.needed and "rang the retraining alarm" in decided.reason and "realised F1" in decided.reason


def test_dataset_drift_names_the_rule_that_fired() -> None:
    t = DriftThresholds()
    near = domain.DomainResult(auc=0.81, low=0.79, high=0.83, n_rows=5000, folds=3)
    clear = domain.DomainResult(auc=0.86, low=0.84, high=0.88, n_rows=5000, folds=3)
    assert policy.dataset_drift(1, 6, near, t) == (False, ())  # a coin toss away from 0.8 decides nothing
    drifted, rules = policy.dataset_drift(1, 6, clear, t)
    assert drifted and rules[0].startswith("the domain classifier") and "0.840-0.880" in rules[0]
    drifted, rules = policy.dataset_drift(3, 6, None, t)
    assert drifted and rules == ("3 of 6 features drifted (limit 50% of them)",)


def test_the_auc_interval_narrows_with_rows() -> None:
    small, large = domain.auc_interval(0.8, 100, 100), domain.auc_interval(0.8, 5000, 5000)
    assert small[0] < large[0] < 0.8 < large[1] < small[1]
    assert large[1] - large[0] == pytest.approx(0.0173, abs=0.001)  # Hanley & McNeil at 5,000 a side
