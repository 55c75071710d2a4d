"""Monitoring with categorical features and missing values, on a tiny "shop" dataset (not Kobe).

"shop" predicts whether a visitor bought from `spend` (numeric, may be missing), `visits`
(whole numbers, never missing) and `channel` (a text category, may be missing). The definition
is built with `catalog.from_dict`; the frames are made inline. Covered: the training reference
(category and missing shares), per-feature drift (a categorical shift is flagged, an unchanged
one is not, new categories are named with their share, missing shares compared), the domain
classifier on a categorical-only shift, the training profile, the charts and the HTML report,
and a whole check against a champion whose pipeline encodes the category.
"""
from __future__ import annotations

from core.modeling import promotion

from core.modeling import registry

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.config import DriftThresholds, Settings
from core.data import batches, preparation, profile
from core.dataset import DatasetSpec
from core.files import sha256_file
from core.monitoring import check, health, html, policy, reference, statistics
from core.monitoring import drift_report
from core.monitoring.drift_report import DriftReport, feature_rows
from tests.unit.conftest import make_settings

DEV_FILE, PROD_FILE = "shop_dev.parquet", "shop_prod.parquet"
CHANNELS = ("web", "store", "phone", "app")  # the definition's values; training never sees "app"
DEV_SHARES = (0.5, 0.3, 0.2, 0.0)


def shop_definition(source_dir: Path | None = None) -> DatasetSpec:
    """The shop definition (with the raw files' checksums when `source_dir` holds them)."""
    def sha(name: str) -> str:
        return sha256_file(source_dir / name) if source_dir is not None else ""

    return catalog.from_dict({
        "name": "shop", "title": "Tiny shop", "row_noun": "visitor", "rows_noun": "visitors",
        "target": {"column": "bought", "positive": 1, "negative": 0, "positive_name": "bought",
                   "negative_name": "left"},
        "features": [
            {"name": "spend", "kind": "numeric", "min": 0.0, "max": 1000.0, "nullable": True},
            {"name": "visits", "kind": "numeric", "integer": True, "min": 0, "max": 50},
            {"name": "channel", "kind": "categorical", "values": list(CHANNELS), "nullable": True},
        ],
        "sources": [{"file": DEV_FILE, "sha256": sha(DEV_FILE)}, {"file": PROD_FILE, "sha256": sha(PROD_FILE)}],
        "dev": {"source": DEV_FILE}, "prod": {"source": PROD_FILE},
    })


def visitors(n: int, seed: int, shares=DEV_SHARES, extra: dict[str, float] | None = None,
             spend_missing: float = 0.05, channel_missing: float = 0.02, spend_mean: float = 100.0) -> pd.DataFrame:
    """`n` visitors: channel drawn with `shares` over CHANNELS plus `extra` categories (text,
    NaN for `channel_missing` of the rows), spend normal (NaN for `spend_missing`), visits Poisson."""
    rng = np.random.default_rng(seed)
    names = [*CHANNELS, *(extra or {})]
    p = np.array([*shares, *(extra or {}).values()], dtype=float)
    channel = rng.choice(np.array(names, dtype=object), size=n, p=p / p.sum())
    channel[rng.random(n) < channel_missing] = np.nan
    spend = np.clip(rng.normal(spend_mean, 30.0, n), 0.0, 1000.0).round(2)
    spend[rng.random(n) < spend_missing] = np.nan
    visits = np.clip(rng.poisson(5.0, n), 0, 50).astype("float64")
    logit = 0.01 * (np.nan_to_num(spend, nan=100.0) - 100.0) + 0.2 * (visits - 5) + np.where(channel == "store", 1.0, 0.0)
    bought = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return pd.DataFrame({"spend": spend, "visits": visits, "channel": channel, "bought": bought})


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on the shop definition in an empty home (nothing prepared)."""
    return make_settings(tmp_path_factory.mktemp("shop_home"), shop_definition())


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return visitors(3000, seed=1)


@pytest.fixture(scope="module")
def ref(shop: Settings, train: pd.DataFrame) -> reference.TrainingReference:
    return reference.build_reference(train, shop, "digest")


# --------------------------------------------------------------------------- the reference
def test_the_reference_keeps_category_and_missing_shares(ref, train) -> None:
    channel = ref.columns["channel"]
    assert channel.kind == "categorical" and channel.categories == ("web", "store", "phone")  # most frequent first
    counts = train["channel"].value_counts()
    assert channel.category_share == pytest.approx(tuple(counts[c] / len(train) for c in channel.categories))
    assert channel.missing_share == pytest.approx(train["channel"].isna().mean())
    assert sum(channel.category_share) + channel.missing_share == pytest.approx(1.0)
    assert channel.mean is None and channel.min is None
    spend = ref.columns["spend"]
    assert spend.kind == "continuous" and spend.n_missing == train["spend"].isna().sum() > 0
    assert spend.mean == pytest.approx(train["spend"].mean()) and spend.max == train["spend"].max()
    assert ref.columns["visits"].n_missing == 0 and ref.columns["visits"].missing_share == 0.0
    # the reference survives its JSON round trip
    assert reference.TrainingReference.from_dict(ref.to_dict()) == ref


def test_an_all_missing_training_column_is_refused_with_its_name(shop, train) -> None:
    from core.errors import NotPreparedError

    with pytest.raises(NotPreparedError, match="spend: every training value is missing"):
        reference.build_reference(train.assign(spend=np.nan), shop, "digest")


# --------------------------------------------------------------------------- per-feature drift
def test_an_unchanged_categorical_feature_is_stable(shop, ref) -> None:
    stats = statistics.feature_drift(visitors(4000, seed=2), ref, shop)
    assert stats.drifted == [] and not stats.dataset_drift
    channel = stats.features["channel"]
    assert channel.kind == "categorical" and channel.js < shop.drift.js / 2 and channel.psi is None
    assert channel.new_categories == () and channel.out_of_range == 0.0 and channel.n_new_categories == 0
    assert channel.missing_ref == pytest.approx(channel.missing_batch, abs=0.01)
    assert channel.bins == ("web", "store", "phone") and len(channel.batch_share) == 3


def test_a_categorical_shift_is_flagged_and_its_new_categories_named(shop, ref) -> None:
    batch = visitors(4000, seed=3, shares=(0.15, 0.25, 0.3, 0.1), extra={"kiosk": 0.2})
    stats = statistics.feature_drift(batch, ref, shop)
    channel = stats.features["channel"]
    assert channel.drift and channel.js >= shop.drift.js
    assert stats.drifted == ["channel"]  # the numbers did not move
    assert channel.new_categories == ("kiosk", "app")  # never seen in training, most frequent first
    present = batch["channel"].dropna()
    expected = tuple(float((batch["channel"] == c).mean()) for c in ("kiosk", "app"))
    assert channel.new_share == pytest.approx(expected, abs=1e-6)
    assert channel.out_of_range == pytest.approx(present.isin(["kiosk", "app"]).sum() / len(batch))
    assert channel.batch_outside[0] == pytest.approx(channel.out_of_range)
    summary = channel.summary()
    assert set(summary) == {"js", "js_excess", "p_value", "out_of_range", "drift", "rule", "missing_training",
                            "missing_batch", "new_categories"}
    assert summary["rule"] == "js" and channel.js_excess <= channel.js
    assert summary["new_categories"] == pytest.approx(dict(zip(("kiosk", "app"), expected)), abs=1e-6)
    assert channel.new_categories_text() == f"kiosk ({expected[0]:.1%}), app ({expected[1]:.1%})"
    # the trust rule reads the unseen share as the categorical's "outside the training range"
    reasons = policy.trust({"channel": channel.out_of_range}, None, shop)
    assert reasons == (f"{channel.out_of_range:.1%} of rows have channel in categories never seen in training "
                       f"(limit {shop.drift.trust_out_of_range:.0%})",)


def test_the_js_distance_counts_missing_values_as_a_category() -> None:
    ref = reference.categorical_reference(pd.Series(["a"] * 50 + ["b"] * 50, dtype=object))
    same = statistics.column_drift("c", ref, pd.Series(["a", "b"] * 100, dtype=object), DriftThresholds())
    assert same.js == pytest.approx(0.0, abs=1e-9) and not same.drift and same.missing_batch == 0.0
    half_missing = pd.Series(["a", "b", None, None] * 50, dtype=object)
    gaps = statistics.column_drift("c", ref, half_missing, DriftThresholds())
    assert gaps.missing_ref == 0.0 and gaps.missing_batch == 0.5 and gaps.drift
    assert gaps.batch_share == (0.25, 0.25) and gaps.new_categories == ()
    # many new categories: all counted, the most frequent named
    many = pd.Series([f"n{i:03d}" for i in range(100)] + ["a"] * 100, dtype=object)
    wide = statistics.column_drift("c", ref, many, DriftThresholds())
    assert wide.n_new_categories == 100 and len(wide.new_categories) == statistics.MAX_NEW_CATEGORIES
    assert wide.out_of_range == pytest.approx(0.5) and wide.new_categories_text(2).endswith("and 98 more")


def test_missing_shares_are_compared_and_values_measured_without_them(shop, ref) -> None:
    t = shop.drift
    spend = ref.columns["spend"]
    calm = statistics.feature_drift(visitors(4000, seed=4), ref, shop).features["spend"]
    assert not calm.drift and calm.missing_js is not None and calm.missing_js < t.js
    assert calm.missing_ref == pytest.approx(spend.missing_share) and calm.nullable
    assert set(calm.summary()) == {"psi", "wasserstein", "p_value", "out_of_range", "drift", "rule",
                                   "missing_training", "missing_batch"}
    gappy = visitors(4000, seed=5, spend_missing=0.4)
    many = statistics.feature_drift(gappy, ref, shop).features["spend"]
    assert many.drift and many.missing_js >= t.js and many.missing_batch == pytest.approx(0.4, abs=0.03)
    assert many.psi < t.psi and many.wasserstein < t.wasserstein  # the values themselves did not move
    # the statistics are those of the non-missing values
    values = gappy["spend"].to_numpy()
    plain = statistics.column_drift("spend", spend, values[~np.isnan(values)], t)
    assert many.psi == pytest.approx(plain.psi) and many.wasserstein == pytest.approx(plain.wasserstein)
    assert many.mean_batch == pytest.approx(np.nanmean(values))
    # a batch without any value: nothing to measure but the missing share
    empty = statistics.feature_drift(gappy.assign(spend=np.nan), ref, shop).features["spend"]
    assert empty.drift and empty.psi is None and empty.wasserstein is None and empty.mean_batch is None
    assert empty.missing_batch == 1.0 and empty.out_of_range == 0.0


def test_numeric_columns_without_missing_values_are_unchanged(ref) -> None:
    rng = np.random.default_rng(6)
    visits = ref.columns["visits"]
    v = rng.poisson(5.0, 2000).astype("float64")
    d = statistics.column_drift("visits", visits, v, DriftThresholds())
    assert d.missing_js is None and d.missing_ref == 0.0 and d.missing_batch == 0.0 and not d.reports_missing
    assert set(d.summary()) == {"psi", "wasserstein", "p_value", "out_of_range", "drift", "rule"}
    discrete = reference.column_reference(np.array([0.0, 1.0, 1.0, 1.0]), "discrete")
    flag = statistics.column_drift("flag", discrete, np.array([0.0, 2.0, 2.0, 1.0]), DriftThresholds())
    assert flag.out_of_range == 0.5 and set(flag.summary()) == {"js", "js_excess", "p_value", "out_of_range",
                                                             "drift", "rule"}


# --------------------------------------------------------------------------- domain classifier
def test_the_domain_classifier_sees_a_categorical_only_shift(shop, train) -> None:
    t, feats, cats = shop.drift, shop.features, shop.dataset.categorical_features
    shifted = visitors(3000, seed=7, shares=(0.1, 0.2, 0.7, 0.0))  # only the channel moved
    auc = statistics.domain_auc(train, shifted, feats, t, shop.seed, cats)
    assert auc is not None and auc > 0.7
    same = statistics.domain_auc(train, visitors(3000, seed=8), feats, t, shop.seed, cats)
    assert same is not None and same < 0.6
    # missing numbers alone are imputed with an indicator, so a missing-share shift shows too
    numbers = ("spend", "visits")
    gaps = statistics.domain_auc(train, visitors(3000, seed=9, spend_missing=0.6), numbers, t, shop.seed)
    assert gaps is not None and gaps > 0.7


# --------------------------------------------------------------------------- the training profile
def test_the_profile_ranges_numbers_and_lists_categories(shop, train) -> None:
    ranges = profile.training_ranges(train, shop.features)
    assert set(ranges) == {"spend", "visits"} and ranges["spend"] == (train["spend"].min(), train["spend"].max())
    seen = profile.training_categories(train, ("channel",))
    assert seen == {"channel": frozenset({"web", "store", "phone"})}
    batch = pd.DataFrame({"spend": [np.nan, 50.0, 5000.0, 60.0], "visits": [1.0, 2.0, 3.0, 4.0],
                          "channel": ["web", "kiosk", np.nan, "app"]})
    shares = profile.share_out_of_range(batch, ranges, seen)
    assert shares == {"spend": 0.25, "visits": 0.0, "channel": 0.5}  # missing values count as inside
    assert profile.share_out_of_range(batch, ranges) == {"spend": 0.25, "visits": 0.0}
    row = {"spend": np.nan, "visits": 2.0, "channel": "kiosk"}
    warnings = profile.out_of_training_range(row, ranges, "visitor", seen)
    assert warnings == ["channel = 'kiosk' is a category never seen in training: the model never saw such a "
                        "visitor, so treat its probability with caution."]
    typical = profile.typical_row(train, shop.dataset)
    assert typical["channel"] == "web" and typical["spend"] == pytest.approx(train["spend"].median(), abs=1e-4)
    assert typical["visits"] == round(train["visits"].median())
    shop.dataset.rules.validate_row(typical)


# --------------------------------------------------------------------------- a whole check
@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A prepared shop home with a logistic regression champion that encodes the channel."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from core import tracking
    from core.modeling import model_io, preprocess, registry

    raw = tmp_path_factory.mktemp("shop_sources")
    visitors(2500, seed=10).to_parquet(raw / DEV_FILE, index=False)
    visitors(800, seed=11, shares=(0.2, 0.2, 0.3, 0.1), extra={"kiosk": 0.2}).to_parquet(raw / PROD_FILE, index=False)
    s = make_settings(tmp_path_factory.mktemp("shop_lab"), shop_definition(raw), raw)
    preparation.prepare(s)
    train = preparation.load_split(s, "train")
    cats = s.dataset.categorical_features
    model = Pipeline([*preprocess.preprocessor(s.dataset, s.seed), ("model", LogisticRegression(max_iter=500))])
    model.fit(model_io.feature_frame(train, s.features, cats), train[s.target])
    with mlflow.start_run(run_name="shop-fixture", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, s.features, train, rules=s.dataset.rules, categorical=cats)
    promotion.promote(s, registry.register(s, info.model_uri))
    return s


@pytest.fixture(scope="module")
def prod_report(champion: Settings) -> DriftReport:
    prod = preparation.load_split(champion, "prod")
    return check.check(batches.from_frame(prod, champion, "shop prod"), champion, store=False, log=True, model=registry.champion(champion))


def test_a_check_with_a_categorical_champion(prod_report: DriftReport, champion: Settings) -> None:
    r = prod_report
    channel = r.stats.features["channel"]
    assert channel.drift and channel.new_categories[0] == "kiosk" and "app" in channel.new_categories
    assert not r.estimate.trustworthy and any("channel in categories never seen" in x for x in r.estimate.reasons)
    assert r.domain_auc is not None and r.domain_auc > 0.6
    assert r.realized is not None and 0.0 <= r.realized["f1"] <= 1.0
    rows = {row["feature"]: row for row in feature_rows(r)}
    assert rows["channel"]["kind"] == "categorical" and rows["channel"]["new categories"].startswith("kiosk (")
    assert rows["spend"]["missing (training)"] > 0 and rows["visits"]["missing (batch)"] == 0.0
    page = html.report_html(r)
    assert "<h2>New categories</h2>" in page and "kiosk (" in page and "<td>categorical</td>" in page
    assert r.mlflow_run_id is not None


def test_a_raw_file_with_categories_checked_in_record_batches(champion: Settings, tmp_path: Path) -> None:
    """The production file as it came (text categories, missing values, the target's own values),
    read in record batches: the report of the file read at once."""
    from core.monitoring import stream

    raw = champion.raw_prod
    assert stream.streamable(raw, champion)
    whole = check.check(batches.read_batch(raw, champion), champion, store=False, log=False, model=registry.champion(champion))
    chunked = stream.check_file(raw, champion, store=False, log=False, chunk_rows=64, model=registry.champion(champion))
    assert chunked.batch == whole.batch and chunked.stats.drifted == whole.stats.drifted
    assert chunked.stats.features["channel"] == whole.stats.features["channel"]
    assert chunked.domain == whole.domain and chunked.verdict == whole.verdict


def test_the_health_reference_scores_the_test_split_with_the_category(champion: Settings) -> None:
    version, model = check.champion_model(champion, registry.require_champion(champion))
    mref = health.load_model_reference(champion, model, version, registry.require_champion(champion).decision_threshold)
    assert mref.n_test == len(preparation.load_split(champion, "test")) and 0.5 < mref.test_metrics["roc_auc"] <= 1.0


def test_drift_charts_draw_the_top_categories(prod_report: DriftReport) -> None:
    from core.charts import drift

    channel = prod_report.stats.features["channel"]
    fig = drift.distribution(channel, top=4)
    labels = list(fig.data[0].x)
    assert fig.layout.barmode == "group" and [t.name for t in fig.data] == ["training", "batch"]
    # the top categories by their larger share (web, the largest in training, first), then the rest
    assert labels[0] == "web" and len(labels) == 6 and labels[-2:] == ["(other)", "(missing)"]
    assert "kiosk (new)" in labels and "app (new)" not in labels  # a new category is marked as such
    assert sum(fig.data[0].y) == pytest.approx(1.0, abs=1e-4) and sum(fig.data[1].y) == pytest.approx(1.0, abs=1e-4)
    assert "categories never seen in training" in fig.layout.title.text
    bars = drift.effect_bars(prod_report)
    labels = dict(zip(bars.data[0].y, bars.data[0].text))
    assert labels["channel"].startswith("JS ") and "new categories" in labels["channel"]
    assert "missing" in labels["spend"] and "missing" not in labels["visits"]
    spend = drift.distribution(prod_report.stats.features["spend"])
    assert "missing" in spend.layout.title.text
    # a numeric column whose batch holds no value still draws
    empty = dataclasses.replace(prod_report.stats.features["spend"], psi=None, wasserstein=None, missing_js=1.0)
    ratio, label = drift_report.effect_ratio(empty, prod_report.thresholds)
    assert ratio == pytest.approx(1.0 / prod_report.thresholds["js"]) and label.startswith("no values")
