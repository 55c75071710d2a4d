"""Drift statistics on the real Kobe data: production drifts, samples of the dev data don't, a
shift too small to matter is not flagged even where values pile up on one point (23 % of `lat`
is the hoop's latitude, 23 % of `shot_distance` is 0), the effect grows with the shift, and a
categorical feature (the extended set's `action_type`, 52 categories) is judged beyond chance.
The same cases, on the full files and against Evidently, are in `bench/drift.py`."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import DriftThresholds
from core.data import preparation
from core.monitoring import domain, policy, reference, statistics


@pytest.fixture(scope="module")
def frames(prepared_settings):
    s = prepared_settings
    return s, reference.load_reference(s), preparation.load_split(s, "train"), preparation.load_split(s, "test"), preparation.load_split(s, "prod")


def test_reference_is_stored_and_reused_until_the_training_digest_changes(frames):
    s, ref, *_ = frames
    path = reference.reference_path(s)
    stamp = path.stat().st_mtime_ns
    again = reference.load_reference(s)
    assert path.stat().st_mtime_ns == stamp and again.train_digest == ref.train_digest
    assert set(ref.columns) == set(s.features)
    assert ref.columns["period"].kind == "discrete" and ref.columns["lat"].kind == "continuous"


def test_production_flags_dataset_drift_on_the_shifted_features(frames):
    s, ref, train, _, prod = frames
    stats = statistics.feature_drift(prod, ref, s)
    assert stats.dataset_drift
    assert {"shot_distance", "lat", "lon"} <= set(stats.drifted)
    assert not stats.features["playoffs"].drift
    dom = domain.domain_check(train, prod, s.features, s.drift, s.seed)
    assert dom is not None and dom.low > 0.95
    drifted, rules = policy.dataset_drift(len(stats.drifted), len(stats.features), dom, s.drift)
    assert drifted and rules[0].startswith(f"{len(stats.drifted)} of 6 features drifted")
    assert rules[1].startswith("the domain classifier tells batch rows from training rows")


def test_a_shift_of_a_hundredth_of_a_standard_deviation_is_not_flagged(frames):
    s, ref, train, test, _ = frames
    sd = float(train["lat"].std())
    for sign in (1, -1):  # the hoop's 23 % of the rows move together, on neither side of a bin edge
        lat = statistics.feature_drift(test.assign(lat=test["lat"] + sign * 0.01 * sd), ref, s).features["lat"]
        assert not lat.drift and lat.psi < 0.02 and lat.rule == ""


def test_the_effect_size_grows_with_the_shift(frames):
    s, ref, _, test, _ = frames
    found = [statistics.feature_drift(test.assign(shot_distance=test["shot_distance"] + ft), ref, s)
             .features["shot_distance"] for ft in (0, 1, 2, 4)]
    assert not found[0].drift and all(f.drift for f in found[1:])
    psis, ws = [f.psi for f in found], [f.wasserstein for f in found]
    assert psis == sorted(psis) and len(set(psis)) == 4 and ws == sorted(ws) and len(set(ws)) == 4
    # no jump when the 0-ft point mass moves past its bin's edge (it was 0.06 at +1 ft, 2.5 at +2):
    # shared between the bins' middles, its weight moves with it (PSI about quadratic in the shift)
    assert 0.1 < psis[1] < psis[2] < 5 * psis[1] < 1.0
    assert found[1].wasserstein == pytest.approx(1 / float(preparation.load_split(s, "train")["shot_distance"].std()),
                                                 abs=0.05)


def test_a_categorical_feature_is_judged_beyond_chance(frames):
    s, _, train, test, _ = frames
    t = s.drift
    ref = reference.categorical_reference(train["action_type"])
    assert len(ref.categories) > 40
    small = statistics.column_drift("action_type", ref, test["action_type"].sample(300, random_state=1), t)
    # 300 rows over 52 categories differ by chance: the raw JS distance passes 0.1, nothing changed
    assert small.js >= t.js and small.js_excess < t.js and not small.drift
    mid = statistics.column_drift("action_type", ref, test["action_type"].sample(1246, random_state=1), t)
    assert not mid.drift and mid.js_excess < mid.js
    rng = np.random.default_rng(0)
    moved = test["action_type"].where(rng.random(len(test)) >= 0.2, "Driving Layup Shot")
    moved = moved.where(rng.random(len(test)) >= 0.03, "Sky Hook Shot")  # never seen in training
    shifted = statistics.column_drift("action_type", ref, moved, t)
    assert shifted.drift and shifted.rule == "js" and shifted.js_excess >= t.js
    assert shifted.new_categories[0] == "Sky Hook Shot" and shifted.new_share[0] == pytest.approx(0.03, abs=0.01)


@pytest.mark.parametrize("kind", ["half", "resample_1m"])
def test_samples_of_the_dev_test_split_flag_nothing(frames, kind):
    s, ref, train, test, _ = frames
    batch = (test.sample(frac=0.5, random_state=7) if kind == "half"
             else test.sample(1_000_000, replace=True, random_state=7))
    stats = statistics.feature_drift(batch, ref, s)
    assert stats.drifted == [] and not stats.dataset_drift
    if kind == "resample_1m":  # p-values fall while effect sizes stay small: no false alarm
        assert min(f.p_value for f in stats.features.values()) < 1e-3
        assert max(f.psi for f in stats.features.values() if f.psi is not None) < 0.02
    dom = domain.domain_check(train, batch, s.features, s.drift, s.seed)
    assert dom is not None and dom.high < 0.6
    assert domain.domain_check(train, batch, s.features, s.drift, s.seed) == dom  # the same batch, the same AUC


def test_statistics_match_scipy_on_a_continuous_column():
    from scipy import stats as ss

    rng = np.random.default_rng(0)
    ref_v, batch_v = rng.normal(0, 1, 20_000), rng.normal(0.5, 1.2, 50_000)
    ref = reference.column_reference(ref_v, "continuous")
    d = statistics.column_drift("x", ref, batch_v, DriftThresholds())
    exact = ss.wasserstein_distance(ref_v, batch_v) / ref_v.std()
    assert d.wasserstein == pytest.approx(exact, abs=0.005)
    assert d.drift and d.psi > 0.2
    assert d.out_of_range == pytest.approx(np.mean((batch_v < ref_v.min()) | (batch_v > ref_v.max())))


def test_discrete_columns_use_jensen_shannon_and_count_unseen_values():
    ref = reference.column_reference(np.array([1.0, 1, 2, 2, 3, 3]), "discrete")
    same = statistics.column_drift("period", ref, np.array([1.0, 2, 3] * 100), DriftThresholds())
    assert same.js == pytest.approx(0.0, abs=1e-9) and not same.drift
    shifted = statistics.column_drift("period", ref, np.array([5.0] * 50 + [1.0] * 50), DriftThresholds())
    assert shifted.drift and shifted.out_of_range == pytest.approx(0.5)
    assert statistics.js_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(np.sqrt(np.log(2)))


def test_label_drift_and_thresholds_are_configurable(frames):
    s, ref, _, _, prod = frames
    label = statistics.label_drift(prod[s.target].to_numpy(), ref.positive_rate, ref.n_rows, s.drift)
    assert label["drift"] and label["positive_rate_batch"] < label["positive_rate_ref"]
    lax = s.replace(drift=DriftThresholds(psi=100, wasserstein=100, js=1.0))
    assert statistics.feature_drift(prod, ref, lax).drifted == []


def test_domain_auc_needs_enough_rows(frames):
    s, _, train, test, _ = frames
    assert statistics.domain_auc(train, test.head(10), s.features, s.drift) is None
