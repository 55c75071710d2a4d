"""Column names MLflow refuses as keys, and very wide tables (issue 28, item 5).

A feature named `<img src=x onerror=alert(1)>` becomes a metric key MLflow accepts (a
deterministic mapping that keeps names unique, logged with the run), so every drift check of such
a dataset reaches MLflow and its history reads back under the feature's own name. A table with
more features than the inference log can hold is refused at `dataset add`; up to that maximum
the inference log takes every feature."""
from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import catalog, cli, tracking
from core.config import Settings
from core.data import dataset_store
from core.data.infer import MAX_FEATURES
from core.dataset import DatasetError
from core.serving import inference_log
from tests.unit.test_dataset_add_cli import home  # noqa: F401 (fixture)

HOSTILE = "<img src=x onerror=alert(1)>"
NAMES = ("usage", "a b", "a_b", "a/b", "a:b", "a.b", "..", ".", "-x", "ü-ber", "x" * 300, HOSTILE,
         "<img src=x onerror=alert(2)>", "psi_a", "a\nb", "", " ", "名前")


def _mlflow_accepts(key: str) -> bool:
    """MLflow's own rule for a metric or param key (mlflow.utils.validation), and its 250 characters."""
    from mlflow.utils.validation import path_not_unique, validate_param_and_metric_name

    return bool(validate_param_and_metric_name(key)) and not path_not_unique(key) and len(key) <= 250


def test_keys_are_accepted_unique_deterministic_and_plain_names_unchanged() -> None:
    keys = tracking.key_map(NAMES)
    assert list(keys) == list(NAMES) and len(set(keys.values())) == len(NAMES)  # one key each, unique
    for name, key in keys.items():
        for prefix in ("", "psi_", "wasserstein_"):
            assert _mlflow_accepts(prefix + key), (name, key)
    assert keys == tracking.key_map(reversed(NAMES))  # a name's key does not depend on the others
    for plain in ("usage", "a b", "a_b", "a.b", "-x", "ü-ber", "psi_a"):
        assert keys[plain] == plain
    assert re.fullmatch(r"_img src_x onerror_alert_1___[0-9a-f]{8}", keys[HOSTILE])


def _hostile_table(n: int = 240, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    usage = rng.gamma(2.0, 10.0, n).round(1)
    odd = rng.normal(0.0, 1.0, n).round(3)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(usage - 20) / 8)), "yes", "no")
    return pd.DataFrame({"usage": usage, HOSTILE: odd, "year": np.where(np.arange(n) < 160, 2023, 2024),
                         "churn": churn})


def test_a_drift_check_of_a_hostile_column_reaches_mlflow(home: Path, tmp_path: Path,  # noqa: F811
                                                         capsys: pytest.CaptureFixture) -> None:
    from core.data import preparation
    from core.modeling import promotion, registry
    from core.monitoring import history
    from tests.unit.conftest import register_lr

    dataset_store.add(home, _hostile_table(), "odd", "churn", features=["usage", HOSTILE], prod_where="year >= 2024")
    s = Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=catalog.find("odd", [catalog.user_dir(home)]))
    preparation.prepare(s)
    promotion.promote(s, register_lr(s)[0])
    batch = tmp_path / "batch.csv"
    table = _hostile_table()
    table[table["year"] >= 2024].to_csv(batch, index=False)
    capsys.readouterr()
    code = cli.main(["drift", "--dataset", "odd", "--batch", str(batch), "--no-domain", "--wait-for-mlflow", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    run = tracking.client(s).get_run(out["mlflow_run_id"])
    key = tracking.key_map([HOSTILE])[HOSTILE]
    assert run.info.status == "FINISHED" and f"psi_{key}" in run.data.metrics and "psi_usage" in run.data.metrics
    assert json.loads(run.data.tags[tracking.FEATURE_KEYS_TAG]) == {key: HOSTILE}
    logged = Path(tracking.client(s).download_artifacts(run.info.run_id, tracking.FEATURE_KEYS_FILE, str(tmp_path)))
    assert json.loads(logged.read_text()) == {"usage": "usage", HOSTILE: key}
    trend = history.history(s)
    assert f"effect_{HOSTILE}" in trend.columns and "effect_usage" in trend.columns  # read back by its name
    # the command line's own way: queued, then logged by the background drain
    capsys.readouterr()
    assert cli.main(["drift", "--dataset", "odd", "--batch", str(batch), "--no-domain", "--json"]) == 0
    from core.monitoring import run_log

    assert run_log.drain(s)  # what the detached drain does: the queued check is logged
    runs = tracking.runs(s, "Monitoramento", status="FINISHED", max_results=10)
    assert len(runs) == 2 and not run_log.queued(s)
    assert not [r for r in tracking.runs(s, "Monitoramento", status="FAILED", max_results=10)]


# --------------------------------------------------------------------------- wide tables
def _wide(n_features: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, n_features)).round(2), columns=[f"f{i}" for i in range(n_features)])
    return frame.assign(churn=np.where(np.arange(n) % 3 == 0, "yes", "no"))


def test_more_features_than_the_maximum_are_refused_at_add(home: Path, tmp_path: Path,  # noqa: F811
                                                          capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "wide.parquet"
    _wide(MAX_FEATURES + 1).to_parquet(path, index=False)
    with pytest.raises(DatasetError, match=f"{MAX_FEATURES + 1:,} features; a dataset may have at most {MAX_FEATURES:,}"):
        dataset_store.add(home, path, "wide", "churn")
    assert cli.main(["dataset", "add", str(path), "--name", "wide", "--target", "churn"]) == 2
    assert f"at most {MAX_FEATURES:,}" in capsys.readouterr().err
    assert not (catalog.user_dir(home) / "wide").exists()


@pytest.mark.slow
def test_the_inference_log_holds_the_maximum_number_of_features(home: Path) -> None:  # noqa: F811
    result = dataset_store.add(home, _wide(MAX_FEATURES), "wide", "churn")
    assert len(result.features) == MAX_FEATURES
    s = Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=catalog.find("wide", [catalog.user_dir(home)]))
    inference_log.ensure(s)
    row = {f: float(i) for i, f in enumerate(s.features)}
    inference_log.append(s, row, proba=0.25, threshold=0.5, model_version="1", latency_ms=1.0)
    last = inference_log.read_last(s, 5)
    assert len(last) == 1 and last[f"f{MAX_FEATURES - 1}"].iloc[0] == MAX_FEATURES - 1
    assert list(last.columns) == ["id", *inference_log.columns(s.dataset)]
