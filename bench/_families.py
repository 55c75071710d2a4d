"""Kobe homes whose champion is one model family each, fitted with the workbench's own
pipeline (`core.modeling.fitting.plain_pipeline`, calibrated as training calibrates) and logged as
training logs it (`model_io.log_model`), for the serving benchmarks (issue 33).

FAMILIES: (key, PyCaret-like estimator, feature set, calibration). A home is built once under
`root/<key>` and reused when it already has a champion.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402

SEED = 42


def estimator(name: str) -> Any:
    """The family's estimator with the budget's kind of settings (what `train` tunes lands near these)."""
    if name == "lr":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(C=1.0, max_iter=1000, random_state=SEED)
    if name == "dt":
        from sklearn.tree import DecisionTreeClassifier
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=100, random_state=SEED)
    if name == "lightgbm":
        from lightgbm import LGBMClassifier
        return LGBMClassifier(n_estimators=120, learning_rate=0.06, num_leaves=8, min_child_samples=100,
                              reg_lambda=5.0, random_state=SEED, n_jobs=-1, verbose=-1)
    raise ValueError(name)


# (key, family, feature set, calibration)
FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("lr-default", "lr", "default", "none"),
    ("dt-default-isotonic", "dt", "default", "isotonic"),
    ("lightgbm-extended-sigmoid", "lightgbm", "extended", "sigmoid"),
    ("lr-extended", "lr", "extended", "none"),
    ("dt-extended", "dt", "extended", "none"),
)


def family_settings(root: Path, key: str, feature_set: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["WORKBENCH_HOME"] = str(root / key)
    s = Settings.from_env(env)
    return s.replace(dataset=s.dataset.with_feature_set(feature_set))


def fitted(settings: Settings, family: str, calibration: str) -> Any:
    from core.data import preparation
    from core.modeling import fitting, model_io

    train = preparation.load_split(settings, "train")
    x = model_io.feature_frame(train, settings.features, settings.dataset.categorical_features)
    model = fitting.calibrated(fitting.plain_pipeline(settings.dataset, estimator(family), SEED),
                               calibration, 3, SEED)
    return model.fit(x, train[settings.target])


def family_home(root: Path, key: str, family: str, feature_set: str, calibration: str) -> Settings:
    """The settings of a home whose champion is this family (built when missing)."""
    import mlflow

    from core import tracking
    from core.data import preparation
    from core.modeling import model_io, promotion, registry

    settings = family_settings(root, key, feature_set)
    if preparation.is_prepared(settings) and registry.champion(settings):
        tracking.use(settings)  # MLflow's URIs: this home's (its store exists: no creation race)
        return settings
    preparation.prepare(settings)  # creates the home's MLflow store first
    model = fitted(settings, family, calibration)
    train = preparation.load_split(settings, "train")
    with mlflow.start_run(run_name=f"bench-{key}", experiment_id=tracking.use(settings)):
        info = model_io.log_model(model, settings.features, train, rules=settings.dataset.rules,
                                  categorical=settings.dataset.categorical_features)
    promotion.promote(settings, registry.register(settings, info.model_uri))
    return settings


# --------------------------------------------------------------------------- the measurement
def measure(root: Path, keys: list[str] | None = None, sequential_n: int = 600, seconds: float = 6.0,
            batch_rows: int = 200_000) -> list[dict]:
    """Each family's champion served by the workbench (`server.start`, the settings' workers,
    capture on) beside stock `mlflow models serve` + `requests` for the same fitted model, in
    one run: start to /ping, single-row p50/p99 over a kept-alive `http.client` connection
    (alternating rounds with stock), 8 clients' requests/s, one `batch_rows`-row batch through
    `local.predict_http` (parquet chunks) and stock's 50,000-row `dataframe_split` chunks;
    the 1-minute load at each step."""
    import tempfile
    import time

    import numpy as np

    from core.data import preparation
    from core.modeling import registry
    from core.scoring import local
    from core.serving import server
    import serve as bench  # bench/serve.py's callers and timers
    from _stock import stock_model_uri, stock_server

    results = []
    chosen = [f for f in FAMILIES if not keys or f[0] in keys]
    for key, family, feature_set, calibration in chosen:  # every home built before anything is measured
        family_home(root, key, family, feature_set, calibration)
    for key, family, feature_set, calibration in chosen:
        settings = family_home(root, key, family, feature_set, calibration)
        version = registry.champion(settings).version
        _, model = registry.load_model(settings, version)
        prod = preparation.load_split(settings, "prod")
        columns = list(settings.features)
        rows = prod.loc[:, columns].astype(object).where(prod.loc[:, columns].notna(), None).to_numpy().tolist()
        batch = prod.loc[:, columns].sample(batch_rows, replace=True, random_state=0).reset_index(drop=True)
        stock_uri = stock_model_uri(settings, model)
        s = settings.replace(serve_port=server.free_port(), home=Path(tempfile.mkdtemp(prefix="kobe-serve-")),
                             tracking_uri_override=settings.tracking_uri)
        row: dict = {"family": key, "load": [bench.load()]}
        with stock_server(settings, stock_uri) as stock_url:
            t0 = time.perf_counter()
            status = server.start(s, workers=settings.serve_workers)
            row["start_s"] = time.perf_counter() - t0
            try:
                impl = {"ours": bench.raw_caller(status.url, columns), "stock": bench.requests_caller(stock_url, columns)}
                calls = {k: make() for k, make in impl.items()}
                lat = {k: [] for k in impl}
                errors = {k: 0 for k in impl}
                rps = {k: [] for k in impl}
                for k in impl:
                    bench.sequential(calls[k], rows, 100)  # warm-up
                for r in range(2):
                    for k in impl:
                        got, err = bench.sequential(calls[k], rows, sequential_n // 2, start=r * sequential_n)
                        lat[k] += got
                        errors[k] += err
                        row["load"].append(bench.load())
                        value, _, cerr = bench.throughput(impl[k], rows, seconds / 2)
                        rps[k].append(value)
                        errors[k] += cerr
                        row["load"].append(bench.load())
                for k in impl:
                    q = bench.percentiles(lat[k])
                    row[k] = {"p50": q["p50"], "p99": q["p99"], "rps": float(np.median(rps[k])), "errors": errors[k]}
                local.answers_http(batch.head(5000), status.url, settings.features)  # warm-up
                t = time.perf_counter()
                local.answers_http(batch, status.url, settings.features)
                row["ours"]["rows_s"] = batch_rows / (time.perf_counter() - t)
                row["load"].append(bench.load())
                t = time.perf_counter()
                bench.stock_batch(stock_url, batch, columns)
                row["stock"]["rows_s"] = batch_rows / (time.perf_counter() - t)
                row["load"].append(bench.load())
            finally:
                server.stop(s)
        served = status.model_version if hasattr(status, "model_version") else version
        row["engine"] = _engine(settings, version)
        row["version"] = served
        results.append(row)
        print_row(row)
    return results


def _engine(settings: Settings, version: str) -> str:
    """The engine the version's MLmodel names (onnxruntime, fast-path or scikit-learn)."""
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{settings.model_name}/{version}")
    return str(info.flavors.get("python_function", {}).get("engine", "scikit-learn"))


def print_row(r: dict) -> None:
    o, s = r["ours"], r["stock"]
    ok = (o["p50"] <= 3 and o["p99"] <= 6 and o["rps"] >= 800 and o["errors"] == 0 and o["rows_s"] >= 200_000
          and r["start_s"] <= 5)
    print(f"{r['family']:28s} {r['engine']:12s} start {r['start_s']:4.1f} s | p50 {o['p50']:5.2f} (stock {s['p50']:5.2f}) "
          f"p99 {o['p99']:5.2f} (stock {s['p99']:5.2f}) ms | {o['rps']:5,.0f} req/s (stock {s['rps']:4,.0f}), "
          f"errors {o['errors']}/{s['errors']} | {o['rows_s']:9,.0f} rows/s (stock {s['rows_s']:7,.0f}) | "
          f"load {min(r['load']):.2f}-{max(r['load']):.2f} | targets {'met' if ok else 'NOT met'}"
          f"{' (loaded)' if max(r['load']) > 1.5 else ''}", flush=True)
