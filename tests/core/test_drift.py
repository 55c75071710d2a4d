"""Drift statistics on the real Kobe data: production drifts, samples of the dev data don't."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import DriftThresholds
from core.data import preparation
from core.monitoring import reference, statistics


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
    auc = statistics.domain_auc(train, prod, s.features, s.drift)
    assert auc is not None and auc > 0.95


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
    auc = statistics.domain_auc(train, batch, s.features, s.drift)
    assert auc is not None and auc < 0.6


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
    assert statistics.js_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)


def test_label_drift_and_thresholds_are_configurable(frames):
    s, ref, _, _, prod = frames
    label = statistics.label_drift(prod[s.target].to_numpy(), ref.positive_rate, ref.n_rows, s.drift)
    assert label["drift"] and label["positive_rate_batch"] < label["positive_rate_ref"]
    lax = s.replace(drift=DriftThresholds(psi=100, wasserstein=100, js=1.0))
    assert statistics.feature_drift(prod, ref, lax).drifted == []


def test_domain_auc_needs_enough_rows(frames):
    s, _, train, test, _ = frames
    assert statistics.domain_auc(train, test.head(10), s.features, s.drift) is None
