"""Charts (`core/charts/`) render from data and results in the tiny dataset's words, never Kobe's."""
from __future__ import annotations

from core.modeling import registry

import re
from typing import Any, Iterator

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.charts import data, drift, evaluation, scoring
from core.charts.words import Words
from core.data import batches, preparation
from core.dataset import DatasetSpec
from core.modeling import model_io
from core.monitoring import check
from core.monitoring.drift_report import most_drifted
from tests.unit.conftest import FEATURES, TARGET, Lab

KOBE_WORDS = re.compile(r"\b(shots?|made|missed|kobe)\b", re.IGNORECASE)


def texts(fig: go.Figure) -> list[str]:
    """Every string of a figure (titles, labels, names, hover templates), its template left out."""
    found: list[str] = []

    def walk(x: Any) -> Iterator[None]:
        if isinstance(x, str):
            found.append(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                if k != "template":
                    walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, np.ndarray) and x.dtype.kind in "OU":
            for v in x.tolist():
                walk(v)

    walk(fig.to_plotly_json())
    return found


def assert_not_kobe(fig: go.Figure) -> None:
    bad = [t for t in texts(fig) if KOBE_WORDS.search(t)]
    assert bad == [], bad


@pytest.fixture(scope="module")
def words(spec: DatasetSpec) -> Words:
    return Words.of(spec)


@pytest.fixture(scope="module")
def scored_test(lab: Lab) -> tuple[np.ndarray, np.ndarray]:
    test = preparation.load_split(lab.settings, "test")
    return test[TARGET].to_numpy(), model_io.predict_proba(lab.model, test, FEATURES)


def test_words_come_from_the_definition(words: Words) -> None:
    assert words == Words(positive="churned", negative="stayed", rows="customers", proba="P(churned)")
    assert Words() == Words(positive="positive", negative="negative", rows="rows", proba="P(positive)")


def test_the_confusion_matrix_names_the_classes(words: Words, scored_test) -> None:
    y, p = scored_test
    fig = evaluation.confusion(y, p, 0.5, words=words)
    heat = fig.data[0]
    assert list(heat.x) == list(heat.y) == ["stayed (0)", "churned (1)"]
    counts = evaluation.confusion_counts(y, p, 0.5)
    assert np.asarray(heat.z).tolist() == counts.tolist() and counts.sum() == len(y)
    assert counts[1, 1] == int(((p >= 0.5) & (y == 1)).sum())
    assert "customers" in heat.hovertemplate and fig.layout.title.text == "Confusion matrix at threshold 0.50"
    assert_not_kobe(fig)


def test_curves_name_the_classes_and_rows_in_their_axes(words: Words, scored_test) -> None:
    y, p = scored_test
    series = {"test": (y, p), "one class": (np.ones(5), np.full(5, 0.5))}
    roc = evaluation.roc(series, words=words)
    assert roc.layout.xaxis.title.text == "False positive rate (stayed called churned)"
    assert roc.layout.yaxis.title.text == "True positive rate (recall of churned customers)"
    assert [t.name.split(" (")[0] for t in roc.data] == ["test", "chance"]  # one class: no curve
    pr = evaluation.pr({"test": (y, p)}, words=words)
    assert pr.layout.xaxis.title.text == "Recall (share of churned customers found)"
    assert pr.data[-1].name == f"test: base rate {y.mean():.3f}"
    cal = evaluation.calibration({"test": (y, p)}, n_bins=5, words=words)
    assert cal.layout.xaxis.title.text == "Mean predicted P(churned) in bin"
    assert cal.layout.yaxis.title.text == "Observed share of churned customers in bin"
    curve = evaluation.learning_curve([50, 100, 200], [0.5, 0.55, 0.56], [0.7, 0.65, 0.6], words=words)
    assert curve.layout.xaxis.title.text == "Training customers"
    for fig in (roc, pr, cal, curve):
        assert_not_kobe(fig)


def test_pr_chart_draws_each_series_own_base_rate_in_its_colour() -> None:
    """Two series with different base rates: one chance line each, at its own rate (a pooled
    line would put the rarer series below chance)."""
    rng = np.random.default_rng(3)
    y_a, y_b = (rng.random(400) < 0.5).astype(int), (rng.random(400) < 0.2).astype(int)
    fig = evaluation.pr({"test": (y_a, rng.random(400)), "production": (y_b, rng.random(400))})
    lines = {t.name: t for t in fig.data if "base rate" in t.name}
    assert sorted(lines) == [f"production: base rate {y_b.mean():.3f}", f"test: base rate {y_a.mean():.3f}"]
    assert list(lines[f"production: base rate {y_b.mean():.3f}"].y) == [y_b.mean()] * 2
    curves = {t.name.split(" (")[0]: t.line.color for t in fig.data if "base rate" not in t.name}
    assert lines[f"test: base rate {y_a.mean():.3f}"].line.color == curves["test"]
    assert curves["test"] != curves["production"]


def test_curves_refuse_series_of_different_lengths(words: Words) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        evaluation.roc({"bad": (np.array([0, 1, 1]), np.array([0.1, 0.9]))}, words=words)


def test_importance_puts_the_largest_magnitude_on_top() -> None:
    fig = evaluation.importance(list(FEATURES), [-0.9, 0.2, 0.5], kind="coefficient")
    assert list(fig.data[0].y) == ["support_calls", "premium", "usage_hours"]
    assert fig.layout.xaxis.title.text.startswith("Coefficient")


def test_class_balance_speaks_of_churned_customers(words: Words, lab: Lab) -> None:
    prep = lab.prep
    rates = {k: prep.positive_rate[k] for k in ("train", "test", "prod")}
    rows = {"train": prep.train_rows, "test": prep.test_rows, "prod": prep.prod_rows}
    fig = data.class_balance(rates, rows, words)
    assert fig.layout.title.text == "Class balance: share of churned customers per split"
    assert fig.layout.yaxis.title.text == "churned customers (%)"
    assert list(fig.data[0].x) == ["train", "test", "prod"]
    assert fig.data[0].y[2] == pytest.approx(100 * rates["prod"])
    assert f"{prep.prod_rows:,} rows" in fig.data[0].text[2]
    assert_not_kobe(fig)


def test_data_distributions_and_the_row_funnel(lab: Lab) -> None:
    s = lab.settings
    frames = {"Dev": preparation.load_split(s, "train"), "Prod": preparation.load_split(s, "prod")}
    fig = data.distributions(frames, FEATURES)
    assert len(fig.data) == 2 * len(FEATURES)
    assert [a.text for a in fig.layout.annotations] == list(FEATURES)
    funnel = data.row_funnel(preparation.overview(s).steps)
    assert list(funnel.data[0].x)[-1] == lab.prep.raw_rows  # bars run bottom-up: the first step comes last
    assert_not_kobe(fig)
    assert_not_kobe(funnel)


def test_the_probability_histogram_uses_the_probability_label(words: Words, scored_test) -> None:
    _, p = scored_test
    fig = scoring.proba_histogram({"test": p, "production": p[:50]}, 0.4, words=words)
    assert fig.layout.xaxis.title.text == "P(churned)"
    assert fig.layout.title.text == "P(churned) on test vs production"
    assert [t.name for t in fig.data] == [f"test ({len(p):,} customers)", "production (50 customers)"]
    assert fig.layout.shapes[0].x0 == 0.4
    assert_not_kobe(fig)


@pytest.fixture(scope="module")
def report(lab: Lab):
    """A drift check of the production split (neither stored nor logged)."""
    prod = preparation.load_split(lab.settings, "prod")
    return check.check(batches.from_frame(prod, lab.settings, "prod"), lab.settings, store=False, log=False, model=registry.champion(lab.settings))


def test_drift_figures_render_from_the_report(report, words: Words) -> None:
    bars = drift.effect_bars(report)
    assert sorted(bars.data[0].y) == sorted(FEATURES)  # worst first (test_drift_bars_name_every_feature...)
    assert all(ratio >= 1 for ratio in bars.data[0].x)  # every feature drifted: at or past its line
    usage = drift.distribution(report.stats.features["usage_hours"])
    assert usage.layout.title.text.startswith("usage_hours: drift; batch outside the training range")
    premium = drift.distribution(report.stats.features["premium"])
    assert list(premium.data[0].x) == ["0", "1"] and premium.layout.barmode == "group"
    perf = drift.performance(report)
    assert [t.name for t in perf.data] == ["test split", "estimated (no labels) – NOT trustworthy",
                                           "realised (labels)"]
    rel = drift.reliability({"test": report.reliability_test, "batch": report.reliability_batch},
                            min_rows=1, words=words)
    assert rel.layout.title.text.startswith("Reliability of P(churned)")
    assert rel.layout.yaxis.title.text == "observed share churned"
    for fig in (bars, usage, premium, perf, rel):
        assert_not_kobe(fig)


def test_history_figures() -> None:
    h = pd.DataFrame({"time": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True), "batch": ["a", "b"],
                      "est_f1": [0.7, 0.6], "real_f1": [np.nan, 0.55], "trustworthy": [True, None],
                      "effect_usage_hours": [0.05, 0.3], "effect_premium": [0.01, 0.2]})
    effects = drift.history_effects(h)
    assert [t.name for t in effects.data] == ["usage_hours", "premium"]
    f1 = drift.history_f1(h)
    assert [t.name for t in f1.data] == ["estimated F1", "realised F1"]
    assert list(f1.data[0].marker.symbol) == ["circle", "circle-open"]
    assert [t.name for t in drift.history_f1(h.assign(real_f1=np.nan)).data] == ["estimated F1"]


def test_default_words_are_neutral(scored_test) -> None:
    y, p = scored_test
    fig = evaluation.confusion(y, p)
    assert list(fig.data[0].x) == ["negative (0)", "positive (1)"]
    assert_not_kobe(fig)
    assert_not_kobe(data.class_balance({"train": 0.4}, {"train": 10}))


def test_the_categories_of_a_discrete_feature_keep_their_values() -> None:
    from core.config import DriftThresholds
    from core.monitoring import reference, statistics

    ref = reference.column_reference(np.array([0.5, 1.5, 1.5, 2.0]), "discrete")
    f = statistics.column_drift("dose", ref, np.array([0.5, 1.5, 2.0]), DriftThresholds())
    assert list(drift.distribution(f).data[0].x) == ["0.5", "1.5", "2"]


def test_categorical_distributions_are_bars_of_the_top_values() -> None:
    from core.dataset import Feature

    dev = pd.DataFrame({"plan": ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5, "usage": np.arange(100.0)})
    prod = pd.DataFrame({"plan": ["b"] * 60 + ["e"] * 30 + [None] * 10, "usage": np.arange(100.0) + 50})
    plan = Feature(name="plan", kind="categorical", values=("a", "b", "c", "d"))
    fig = data.distributions({"Dev": dev, "Prod": prod}, [plan, "usage"], top=2)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["Dev", "Prod"]
    assert list(bars[0].x) == ["b", "a", "(other)", "(missing)"]  # top 2 by mean share, then the rest
    assert list(bars[0].y) == pytest.approx([30.0, 50.0, 20.0, 0.0])
    assert list(bars[1].y) == pytest.approx([60.0, 0.0, 30.0, 10.0])
    assert [t.type for t in fig.data if t.type != "bar"] == ["histogram", "histogram"]
    assert sum(bool(t.showlegend) for t in fig.data) == 2  # one legend entry per set
    assert bars[0].offset < bars[1].offset  # side by side, not on top of each other
    # listed numbers (a binary feature) are bars of their labels, in the definition's order
    flag = Feature(name="premium", kind="binary", values=(0.0, 1.0), value_labels={"0": "Basic", "1": "Premium"})
    frames = {"Dev": pd.DataFrame({"premium": [1.0, 0.0, 0.0, 0.0]}), "Prod": pd.DataFrame({"premium": [1.0, 1.0]})}
    binary = data.distributions(frames, [flag])
    assert [list(t.x) for t in binary.data] == [["Basic", "Premium"], ["Basic", "Premium"]]
    assert list(binary.data[1].y) == pytest.approx([0.0, 100.0])
    # a text column given by name is drawn as bars too; a set lacking the column is skipped
    by_name = data.distributions({"Dev": dev, "Prod": prod.drop(columns="plan")}, ["plan"])
    assert [t.type for t in by_name.data] == ["bar"]
    assert_not_kobe(fig)


def test_same_axes_gives_side_by_side_charts_one_scale() -> None:
    import plotly.graph_objects as go

    from core.charts.data import same_axes

    a = go.Figure(layout=dict(xaxis=dict(range=[-26, 26]), yaxis=dict(range=[-6, 30])))
    b = go.Figure(layout=dict(xaxis=dict(range=[-26, 26]), yaxis=dict(range=[-6, 60])))
    auto = go.Figure()
    same_axes(a, b)
    assert list(a.layout.yaxis.range) == list(b.layout.yaxis.range) == [-6, 60]
    assert list(a.layout.xaxis.range) == [-26, 26]
    same_axes(a, auto)  # one left to autorange: nothing forced on either
    assert auto.layout.yaxis.range is None and list(a.layout.yaxis.range) == [-6, 60]


def many_features_report(report):
    """`report` with 14 features of every kind (names as a housing dataset's): four drifted
    continuous ones, stable ones, and two categorical features identical to training (zero drift)."""
    import dataclasses

    from core.config import DriftThresholds
    from core.monitoring.drift_report import DriftStats
    from core.monitoring.reference import categorical_reference, column_reference
    from core.monitoring.statistics import column_drift

    rng = np.random.default_rng(5)
    t = DriftThresholds()
    feats = {}
    shifts = {"price": 0.0, "condomin": 1.5, "single": 0.8, "area": 0.02, "rooms": 0.0, "age": 0.3,
              "floor": 0.01, "lat": 0.0, "lon": 2.5, "income": 0.05, "tax": 0.0, "views": 0.0}
    for name, shift in shifts.items():
        ref = column_reference(rng.normal(0, 1, 4000), "continuous")
        feats[name] = column_drift(name, ref, rng.normal(shift, 1, 3000), t)
    cats = pd.Series(["a", "b", "c"] * 400)
    for name in ("district", "heating"):
        feats[name] = column_drift(name, categorical_reference(cats), cats.copy(), t)
    share = sum(f.drift for f in feats.values()) / len(feats)
    return dataclasses.replace(report, stats=DriftStats(features=feats, n_rows=3000, share_drifted=share,
                                                        dataset_drift=share >= t.dataset_share, thresholds=t))


def test_drift_bars_name_every_feature_worst_first(report) -> None:
    """The report: 13 features, every other one named, tiny text, no bar for a zero-drift
    categorical feature. Every feature is a named category, ordered by severity, each with a bar."""
    many = many_features_report(report)
    bars = drift.effect_bars(many)
    names = list(bars.data[0].y)
    assert sorted(names) == sorted(many.stats.features) and len(names) == 14
    ratios = list(bars.data[0].customdata)
    drifted = [many.stats.features[n].drift for n in names]
    assert names[:4] == ["lon", "condomin", "single", "age"] and all(drifted[:4]) and not any(drifted[4:])
    assert ratios[:4] == sorted(ratios[:4], reverse=True) and ratios[4:] == sorted(ratios[4:], reverse=True)
    assert most_drifted(many) == "lon"
    y = bars.layout.yaxis
    assert y.tickmode == "array" and list(y.tickvals) == names and list(y.ticktext) == names  # every tick
    assert list(y.categoryarray) == names and y.autorange == "reversed"  # worst at the top
    assert y.automargin and y.tickfont.size >= 12 and bars.layout.font.size >= 13
    assert bars.layout.height >= 14 * 25  # grows with the features
    assert bars.layout.height > drift.effect_bars(report).layout.height
    # zero drift (district, heating: the training categories exactly) still gets a bar and a marker
    assert many.stats.features["district"].js_excess == 0.0
    zero = [n for n, r in zip(names, ratios) if r == 0.0]
    assert {"district", "heating"} <= set(zero)
    drawn = dict(zip(names, bars.data[0].x))
    low = 10 ** bars.layout.xaxis.range[0]
    assert all(drawn[n] > low for n in zero)  # a bar reaching into the visible range
    assert set(bars.data[1].y) >= set(zero)  # and a marker at the floor


# --------------------------------------------------------------------------- the Serve page's operations
def _ops(minutes_ago: list[float], rows: list[int], latency_ms: list[float], outcome: list[str] | None = None):
    """`OpsStats` of a 60-minute window of requests sent that many minutes before 12:00 UTC."""
    from datetime import datetime, timezone

    from core.monitoring import ops

    until = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    calls = pd.DataFrame({
        "timestamp": [pd.Timestamp(until) - pd.Timedelta(minutes=m) for m in minutes_ago],
        "model_version": "1", "outcome": outcome or ["ok"] * len(rows), "n_rows": rows,
        "latency_ms": latency_ms, "source": "http"})
    return ops.summarise(calls, pd.DataFrame(), 60.0, until)


def test_the_operations_charts_put_time_on_a_date_axis_over_the_window() -> None:
    """Issue 30: the time axis read '.984', one bucket drew an empty latency chart."""
    from core.charts import operations

    one = _ops([5.2, 5.1, 5.05], [1, 1, 40], [2.0, 3.0, 9.0], ["ok", "ok", "invalid_input"])
    traffic = operations.traffic(one)
    axis = traffic.layout.xaxis
    assert axis.type == "date" and [pd.Timestamp(x) for x in axis.range] == [
        pd.Timestamp("2026-12-07 11:00"), pd.Timestamp("2026-12-07 12:00")]  # the whole window, UTC
    answered, refused = traffic.data
    assert list(answered.y) == [2] and list(refused.y) == [1]
    assert pd.Timestamp("2026-12-07 11:54") <= pd.Timestamp(answered.x[0]) <= pd.Timestamp("2026-12-07 11:56")
    assert operations.latency_points(one) == 1 and operations.latency(one) is None  # said in words instead

    spread = _ops([50, 30, 30, 10, 10], [1, 1, 5000, 1, 1], [2.0, 2.5, 190.0, 2.2, 2.4])
    fig = operations.latency(spread)
    assert fig is not None and fig.layout.xaxis.type == "date" and fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext[3:7]) == ["1", "2", "5", "10"]  # each label once, in 1-2-5 steps
    lines = {t.name: list(t.y) for t in fig.data}
    # 50, 30 and 10 minutes ago: each next bucket after a gap, where the line breaks (None)
    assert [v is None for v in lines["1-row p99"]] == [False, True, False, True, False]
    assert lines["1-row p99"][2] == pytest.approx(2.5)  # the batch in that bucket left out
    assert lines["all-sizes p99"][2] > 100.0  # and the every-request line shows it
    assert all(isinstance(x, (pd.Timestamp, np.datetime64)) or "2026-12-07" in str(x) for x in fig.data[0].x)
    assert operations.traffic(one).layout.yaxis.dtick == 1  # whole requests, no 0.5 ticks


def test_a_latency_tile_shows_three_figures_at_most() -> None:
    """The Serve page's answer showed '122.9 …': '122.93 ms' did not fit its quarter-width tile."""
    from ui.ops import metric_ms

    assert [metric_ms(v) for v in (None, 9.434, 55.07, 122.93, 1234.5)] == [
        "—", "9.43 ms", "55.1 ms", "123 ms", "1,234 ms"]
