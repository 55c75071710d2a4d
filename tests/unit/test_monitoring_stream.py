"""The pieces behind a fast check: PSI bins that respect repeated values, counts that add up over
chunks, a parquet file checked record batch by record batch with the same report as at once,
and the realised figures computed with numpy equal to scikit-learn's."""
from __future__ import annotations

from core.modeling import registry

import numpy as np
import pandas as pd
import pytest

from core.config import DriftThresholds
from core.data import batches, preparation
from core.data.batch_files import BatchError
from core.modeling import metrics
from core.monitoring import check, counts, health, reference, statistics, stream
from tests.unit.conftest import FEATURES, TARGET, Lab


# --------------------------------------------------------------------------- PSI bins
def test_a_heavy_value_gets_a_bin_of_its_own_away_from_its_edges() -> None:
    rng = np.random.default_rng(0)
    v = np.r_[np.full(2300, 34.0443), np.round(rng.normal(34.0, 0.06, 7700), 3)]
    edges = reference.psi_edges(v)
    k = np.searchsorted(edges, 34.0443, side="right")
    low, high = edges[k - 1], edges[k]
    assert low < 34.0443 < high and min(34.0443 - low, high - 34.0443) > 0.002  # not on a neighbour's gap
    assert not np.isin(edges, np.unique(v)).any()  # no edge on a value
    ref = reference.column_reference(v, "continuous")
    share = np.asarray(ref.psi_share)
    assert share.sum() == pytest.approx(1.0) and share.max() >= 0.23 and len(share) == len(edges) + 1
    assert 34.0443 in ref.psi_nodes  # the heavy value is its bin's middle: all of it counts there
    tiny = statistics.column_drift("lat", ref, v + 0.01 * v.std(), DriftThresholds())
    assert tiny.psi < 0.01 and not tiny.drift


def test_whole_numbers_are_cut_between_them_and_the_psi_grows_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    v = np.r_[np.zeros(2300), rng.integers(1, 30, 7700)].astype(float)
    edges = reference.psi_edges(v)
    assert np.all(edges % 1 == 0.5)
    ref = reference.column_reference(v, "continuous")
    psis = [statistics.column_drift("d", ref, v + k, DriftThresholds()).psi for k in (0, 1, 2, 4)]
    assert psis[0] == 0.0 and psis == sorted(psis) and len(set(psis)) == 4
    assert psis[2] < 5 * psis[1]  # the point mass at 0 moves gradually out of its bin, no jump at +2
    assert reference.psi_edges(np.ones(10)).size == 0  # a constant column: one bin


def test_a_large_resample_of_the_reference_is_not_flagged() -> None:
    rng = np.random.default_rng(4)
    v = np.r_[np.zeros(2300), rng.integers(1, 30, 7700)].astype(float)
    ref = reference.column_reference(v, "continuous")
    big = statistics.column_drift("d", ref, rng.choice(v, 500_000), DriftThresholds())
    assert not big.drift and big.psi < 0.01 and big.wasserstein < 0.05


# --------------------------------------------------------------------------- counts
def test_counts_of_chunks_add_up_to_the_counts_of_the_whole() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 3000)
    x[::50] = np.nan
    ref = reference.column_reference(rng.normal(0, 1, 5000), "continuous")
    whole = statistics.column_drift("x", ref, x, DriftThresholds(), nullable=True)
    c = counts.ColumnCounts(ref)
    for part in np.array_split(x, 7):
        c.add(part)
    parts = statistics.counted_drift("x", ref, c, DriftThresholds(), nullable=True)
    assert parts.psi == pytest.approx(whole.psi) and parts.wasserstein == pytest.approx(whole.wasserstein)
    assert parts.missing_batch == whole.missing_batch and parts.mean_batch == pytest.approx(whole.mean_batch)
    cats = reference.categorical_reference(pd.Series(["a", "b", "c"] * 100, dtype=object))
    text = pd.Series(["a", "b", None, "z"] * 75, dtype=object)
    c = counts.ColumnCounts(cats).add(text.iloc[:100]).add(text.iloc[100:])
    assert statistics.counted_drift("t", cats, c, DriftThresholds()) == statistics.column_drift(
        "t", cats, text, DriftThresholds())


def test_the_js_distance_beyond_chance() -> None:
    # two samples of one distribution over 51 values differ by chance: about (k - 1) / 8 / n
    assert statistics.js_chance(51, 1246, 10**9) == pytest.approx(50 / 8 / 1246, rel=1e-5)
    assert statistics.js_excess(0.05, 51, 1246, 5000) == 0.0
    assert statistics.js_excess(0.3, 2, 10**6, 10**6) == pytest.approx(0.3, abs=1e-6)


# --------------------------------------------------------------------------- streaming
def test_a_parquet_file_in_record_batches_gives_the_same_report(lab: Lab, tmp_path) -> None:
    s = lab.settings
    prod = preparation.load_split(s, "prod")
    path = tmp_path / "week.parquet"
    prod.to_parquet(path, index=False)
    assert stream.streamable(path, s)
    whole = check.check(batches.read_batch(path, s), s, store=False, log=False, model=registry.champion(s))
    chunked = stream.check_file(path, s, store=False, log=False, chunk_rows=37, model=registry.champion(s))
    assert chunked.batch == whole.batch and chunked.domain == whole.domain
    for name, figures in whole.summary()["features"].items():
        assert chunked.summary()["features"][name] == pytest.approx(figures), name
    assert chunked.realized == pytest.approx(whole.realized) and chunked.recommendation == whole.recommendation
    assert chunked.verdict == whole.verdict


def test_a_bad_record_batch_refuses_the_file_with_every_problem(lab: Lab, tmp_path) -> None:
    s = lab.settings
    bad = preparation.load_split(s, "prod").assign(usage_hours=lambda d: d["usage_hours"].where(d.index != 5, -1.0))
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    with pytest.raises(BatchError, match="usage_hours"):
        stream.check_file(path, s, store=False, log=False, chunk_rows=50, model=registry.champion(s))
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert not stream.streamable(tmp_path / "notes.csv", s) and not stream.streamable(tmp_path / "missing", s)


# --------------------------------------------------------------------------- realised figures
def test_the_realised_figures_equal_scikit_learns() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(2000) < 0.3).astype(float)
    p = np.clip(0.4 * y + 0.6 * rng.random(2000), 0, 1)
    p[:10] = 0.5  # ties at the threshold
    assert health.realized(y, p, 0.5) == pytest.approx(metrics.from_proba(y, p, 0.5))
    one = health.realized(np.ones(5), np.full(5, 0.7), 0.5)
    assert np.isnan(one["roc_auc"]) and one["recall"] == 1.0


def test_frames_without_target_are_not_labelled(lab: Lab, tmp_path) -> None:
    s = lab.settings
    path = tmp_path / "features.parquet"
    preparation.load_split(s, "prod")[list(FEATURES)].to_parquet(path, index=False)
    r = stream.check_file(path, s, store=False, log=False, model=registry.champion(s))
    assert r.realized is None and r.batch["n_labelled"] == 0 and TARGET not in r.summary()["features"]
