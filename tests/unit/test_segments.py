"""Metrics per segment (issue 31, item 4): `core.monitoring.segments` on tiny inline data for each
task kind, the coverage property of `cut` (Hypothesis), and `python -m core segments` on real homes
(a binary, a multiclass and a regression champion) with a labelled batch in which the labels of
one segment were corrupted: that segment comes first. Unlabelled and unreadable batches exit 2.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from core import catalog, cli
from core.config import Settings
from core.modeling.tasks import BINARY, MULTICLASS, REGRESSION
from core.monitoring import segments as seg
from tests.unit import task_homes
from tests.unit.conftest import prod_frame


# --------------------------------------------------------------------------- cutting
def test_categories_keep_the_most_frequent_pool_the_rest_and_set_missing_apart() -> None:
    values = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 2 + ["d"] + [None] * 3)
    c = seg.cut(values, max_categories=2)
    assert c.names == ("a", "b", seg.OTHER, seg.MISSING)
    assert c.kinds == (seg.CATEGORY, seg.CATEGORY, seg.POOLED, seg.ABSENT)
    assert c.pooled == 2
    assert np.bincount(c.codes).tolist() == [5, 4, 3, 3]


def test_numbers_are_cut_in_quantile_bins_named_as_intervals() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan])
    c = seg.cut(values, bins=2)
    assert c.names == ("[1, 4.5)", "[4.5, 8]", seg.MISSING)
    assert c.codes.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    # edges close together keep as many decimals as tell them apart
    assert seg.interval_names(np.array([0.123401, 0.123409, 0.5])) == ("[0.123401, 0.123409)", "[0.123409, 0.5]")
    assert seg.interval_names(np.array([-118.13, -118.06, -118.0004])) == ("[-118.13, -118.06)", "[-118.06, -118]")
    assert seg.interval_names(np.array([1.5e6, 2.25e6, 4e6])) == ("[1500000, 2250000)", "[2250000, 4000000]")


def test_a_feature_listing_its_values_is_cut_by_value_with_its_labels(spec) -> None:
    c = seg.cut(pd.Series([0, 1, 1, 0, 1]), spec.feature("premium"))
    assert sorted(c.names) == sorted(spec.feature("premium").value_label(v) for v in (0, 1))
    assert set(c.kinds) == {seg.CATEGORY}


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e30, 1e30), st.sampled_from([0.0, 1.0, 2.5])), min_size=1,
                max_size=60),
       st.integers(1, 8))
def test_the_bins_of_a_number_cover_every_row_exactly_once(values: list, bins: int) -> None:
    c = seg.cut(pd.Series(values, dtype="float64"), bins=bins)
    counts = np.bincount(c.codes, minlength=len(c.names))
    assert len(c.codes) == len(values) and counts.sum() == len(values)
    assert len(counts) == len(c.names) and (counts > 0).all()  # no empty segment, none beyond the names
    assert len(set(c.names)) == len(c.names)
    x = np.asarray(values, dtype="float64")
    assert (c.codes[np.isnan(x)] == c.names.index(seg.MISSING)).all() if np.isnan(x).any() else True
    present = ~np.isnan(x)  # the bins follow the values' order: a larger value never in an earlier bin
    codes = c.codes[present][np.argsort(x[present], kind="stable")]
    assert (np.diff(codes) >= 0).all()


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "z", "w", "other", "(other)"])), min_size=1,
                max_size=60), st.integers(1, 4))
def test_the_segments_of_a_category_cover_every_row_exactly_once(values: list, keep: int) -> None:
    c = seg.cut(pd.Series(values, dtype="object"), max_categories=keep)
    counts = np.bincount(c.codes, minlength=len(c.names))
    assert counts.sum() == len(values) and len(counts) == len(c.names) and (counts > 0).all()
    assert sum(k == seg.CATEGORY for k in c.kinds) <= keep


# --------------------------------------------------------------------------- metrics per group
def _groups(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    """Group codes with awkward groups: one row (group 0), empty (group 1), the rest random."""
    codes = rng.integers(2, 6, n)
    codes[0] = 0
    return codes, 6


def _same(grouped: list[dict], expected_of, codes: np.ndarray, k: int) -> None:
    for g in range(k):
        rows = codes == g
        if not rows.any():
            assert grouped[g] == {}
            continue
        want = expected_of(rows)
        assert set(grouped[g]) == set(want), g
        for key, value in want.items():
            assert grouped[g][key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), (g, key)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_per_group_equal_scikit_learns_on_each_groups_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    codes, k = _groups(rng, n)
    # binary: tied scores (rounded), a group with a single class
    p = rng.uniform(0, 1, n).round(1)
    y = (rng.random(n) < p).astype(float)
    y[codes == 5] = 1.0
    _same(BINARY.metrics_by_group(y, p, 0.4, codes, k), lambda r: BINARY.metrics(y[r], p[r], 0.4), codes, k)
    # multiclass: a class nobody predicts in some groups
    proba = rng.dirichlet([1.0, 1.0, 0.2], n)
    yc = rng.integers(0, 3, n).astype(float)
    yc[codes == 4] = np.where(yc[codes == 4] == 2, 1, yc[codes == 4])  # a group without class 2

    def multi(r: np.ndarray) -> dict:
        from sklearn.metrics import f1_score

        # macro F1 over the classes present in the group (scikit-learn's default without labels)
        pred = proba[r].argmax(axis=1)
        return {**MULTICLASS.metrics(yc[r], proba[r], None),
                "f1_macro": f1_score(yc[r].astype(int), pred, average="macro", zero_division=0)}

    _same(MULTICLASS.metrics_by_group(yc, proba, None, codes, k), multi, codes, k)
    # regression: a group holding a 0 (no MAPE), a group with a constant target
    pred = rng.normal(10, 3, n)
    yr = pred + rng.normal(0, 1, n)
    yr[codes == 3] = 7.0
    yr[np.flatnonzero(codes == 4)[0]] = 0.0
    out = np.column_stack([pred, pred - 1, pred + 1])
    _same(REGRESSION.metrics_by_group(yr, out, None, codes, k), lambda r: REGRESSION.metrics(yr[r], out[r], None),
          codes, k)


# --------------------------------------------------------------------------- judging (inline data)
def _frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"city": rng.choice(["north", "south", "east", "west"], n),
                         "size": rng.uniform(0, 100, n)})


def test_binary_the_segment_whose_labels_are_wrong_comes_first() -> None:
    rng = np.random.default_rng(1)
    x = _frame(2000, rng)
    p = rng.uniform(0.05, 0.95, len(x))
    y = (rng.random(len(x)) < p).astype(float)
    y[x["city"] == "east"] = 1 - y[x["city"] == "east"]
    r = seg.segments(x, y, p, BINARY, features=("city", "size"), threshold=0.4)
    first = r.segments[0]
    assert (first.feature, first.segment, first.kind) == ("city", "east", seg.CATEGORY)
    assert first.gap > 0 and first.worse and r.criterion == "log_loss" and r.lower_is_better
    assert first.metrics["log_loss"] == pytest.approx(first.gap + r.overall["log_loss"])
    assert r.threshold == 0.4 and r.worst(1) == [first]
    # every feature's segments add up to the whole
    for f in ("city", "size"):
        assert sum(s.rows for s in r.segments if s.feature == f) == r.rows == 2000


def test_multiclass_a_higher_is_better_criterion_ranks_the_lowest_first() -> None:
    rng = np.random.default_rng(2)
    x = _frame(1500, rng)
    y = rng.integers(0, 3, len(x)).astype(float)
    proba = np.full((len(x), 3), 0.1)
    proba[np.arange(len(x)), y.astype(int)] = 0.8
    y[x["size"] >= np.quantile(x["size"], 0.8)] = (y[x["size"] >= np.quantile(x["size"], 0.8)] + 1) % 3
    r = seg.segments(x, y, proba, MULTICLASS, features=("city", "size"), criterion="accuracy")
    first = r.segments[0]
    assert first.feature == "size" and first.segment.endswith("]") and first.kind == seg.INTERVAL
    assert not r.lower_is_better and first.gap < 0 and first.metrics["accuracy"] < 0.1


def test_regression_unlabelled_rows_are_left_out_and_small_segments_not_ranked() -> None:
    rng = np.random.default_rng(3)
    x = _frame(600, rng)
    x.loc[:9, "city"] = "tiny"  # 10 rows: too small to judge, however bad
    pred = rng.normal(100, 10, len(x))
    y = pred + rng.normal(0, 1, len(x))
    y[:10] += 80.0  # worse than "west", but on too few rows to judge
    y[x["city"] == "west"] += 40.0
    y[-5:] = np.nan
    out = np.column_stack([pred, pred - 2, pred + 2])
    r = seg.segments(x, y, out, REGRESSION, features=("city", "size"), min_rows=20)
    assert r.rows == 595 and r.unlabelled_rows == 5 and r.criterion == "rmse"
    assert (r.segments[0].feature, r.segments[0].segment) == ("city", "west")
    tiny = next(s for s in r.segments if s.segment == "tiny")
    assert tiny.too_small and tiny.rows == 10 and r.segments[-1] is tiny and tiny not in r.worst(50)
    assert "interval_coverage" in r.segments[0].metrics
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))  # strict JSON: NaN written as null
    assert set(d) >= {"overall", "segments"} and d["too_small"] == 1
    assert set(d["segments"][0]) >= {"feature", "segment", "rows", "metrics", "gap", "too_small"}


# --------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    return task_homes.multiclass_home(tmp_path_factory.mktemp("tiers"), n=900)


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> task_homes.TaskHome:
    return task_homes.regression_home(tmp_path_factory.mktemp("prices"), n=1200)


def _run(s: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *words: str) -> tuple[int, dict]:
    home_dirs = (catalog.user_dir(s.home), s.dataset.folder.parent, catalog.BUILTIN_DIR)
    monkeypatch.setattr(catalog, "search_dirs", lambda extra=(): home_dirs)
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(s.home))
    if s.source_dir is not None:
        monkeypatch.setenv("WORKBENCH_DATA_DIR", str(s.source_dir))
    capsys.readouterr()
    code = cli.main(["--dataset", s.dataset.name, "segments", *words, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _corrupted(task: str, home: task_homes.TaskHome | None, folder: Path) -> tuple[Path, str, str]:
    """A labelled batch whose labels are wrong in one segment; (file, feature, segment)."""
    if task == "binary":
        raw = prod_frame()
        raw = raw[raw["segment"] == "online"].reset_index(drop=True)
        wrong = raw["premium"] == 1
        raw.loc[wrong, "churn"] = 1.0 - raw.loc[wrong, "churn"]
        feature, value = "premium", 1
    elif task == "multiclass":
        raw = home.calm.copy()
        wrong = raw["colour"] == "red"
        nxt = dict(zip(task_homes.CLASSES, task_homes.CLASSES[1:] + task_homes.CLASSES[:1]))
        raw.loc[wrong, "tier"] = raw.loc[wrong, "tier"].map(nxt)
        feature, value = "colour", "red"
    else:
        raw = home.calm.copy()
        wrong = raw["zone"] == "b"
        raw.loc[wrong, "price"] += 400.0
        feature, value = "zone", "b"
    path = folder / f"{task}-corrupted.parquet"
    raw.to_parquet(path, index=False)
    return path, feature, value


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_segments_ranks_the_segment_with_corrupted_labels_first(task, lab, tiers, prices, tmp_path, monkeypatch,
                                                                 capsys) -> None:
    home = {"binary": None, "multiclass": tiers, "regression": prices}[task]
    s = lab.settings if home is None else home.settings
    path, feature, value = _corrupted(task, home, tmp_path)
    code, out = _run(s, monkeypatch, capsys, "--batch", str(path))
    assert code == 0, out
    label = s.dataset.feature(feature).value_label(value)
    first = out["segments"][0]
    assert (first["feature"], first["segment"], first["too_small"], first["worse"]) == (feature, label, False, True)
    assert out["task"] == task and out["source"] == path.name and out["criterion"] == ("rmse" if task == "regression"
                                                                                       else "log_loss")
    assert first["metrics"][out["criterion"]] > out["overall"][out["criterion"]]
    for f in s.features:  # each feature's segments cover the batch's labelled rows once
        assert sum(x["rows"] for x in out["segments"] if x["feature"] == f) == out["rows"]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_segments_of_the_test_split_by_default(task, lab, tiers, prices, monkeypatch, capsys) -> None:
    s = {"binary": lab.settings, "multiclass": tiers.settings, "regression": prices.settings}[task]
    code, out = _run(s, monkeypatch, capsys, "--bins", "3", "--max-categories", "2", "--min-rows", "5")
    assert code == 0, out
    assert out["source"] == "test split" and out["bins"] == 3 and out["max_categories"] == 2
    from core.data import preparation

    assert out["rows"] == len(preparation.load_split(s, "test"))
    numeric = [f for f in s.features if not s.dataset.feature(f).discrete]
    assert all(sum(x["feature"] == f for x in out["segments"]) <= 3 for f in numeric)


def test_an_unlabelled_batch_exits_2_saying_what_to_do(tiers, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "unlabelled.csv"
    tiers.calm.drop(columns=["tier"]).to_csv(path, index=False)
    code, out = _run(tiers.settings, monkeypatch, capsys, "--batch", str(path))
    assert code == 2
    assert "has no labels" in out["error"]["message"] and "tier" in out["error"]["message"]


def test_a_batch_that_does_not_read_and_a_wrong_criterion_exit_2(prices, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not a table")
    code, out = _run(prices.settings, monkeypatch, capsys, "--batch", str(path))
    assert code == 2 and out["error"]["kind"] == "BatchError"
    code, out = _run(prices.settings, monkeypatch, capsys, "--criterion", "log_loss")
    assert code == 2 and out["error"]["kind"] == "usage" and "rmse" in out["error"]["message"]
    code, out = _run(prices.settings, monkeypatch, capsys, "--bins", "0")
    assert code == 2 and "--bins" in out["error"]["message"]


def test_a_multiclass_or_regression_batch_stored_from_memory_reads_back_the_same(tiers, prices) -> None:
    """(the Drift page reads a checked batch back from the store) the target's own values are
    written, not a binary target's: class names for a multiclass one, numbers for a regression."""
    from core.data import batch_store, batches

    for home in (tiers, prices):
        s = home.settings
        b = batches.from_frame(home.calm, s, "memory")
        back = batches.read_batch(batch_store.store(b, s).path, s)
        pd.testing.assert_frame_equal(back.frame, b.frame)
        assert back.n_labelled == b.n_labelled == len(home.calm)
