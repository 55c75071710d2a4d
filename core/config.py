"""Settings in one place: every path, URI, port and model name (a version's threshold is its own).

`Settings.from_env()` reads the environment overrides:

| variable | meaning | default |
| --- | --- | --- |
| `WORKBENCH_HOME` | folder holding `data/` and `mlruns/` | the project root |
| `WORKBENCH_DATASET` | the active dataset (a definition under `datasets/NAME/` or `<home>/data/datasets/NAME/`) | the home's active dataset (`python -m core dataset use NAME`), else `kobe` |
| `WORKBENCH_DATA_DIR` (or `KOBE_DATA_DIR`) | folder holding the dataset's raw files (copied instead of downloaded) | unset |
| `MLFLOW_TRACKING_URI` | tracking server / store (a team's server) | `sqlite:///<home>/mlruns/mlflow.db` |
| `WORKBENCH_SERVE_PORT` | port of every dataset's model server (1–65535); unset: each dataset's server keeps a port of its own (5001 for the first when free) | 5001 |
| `WORKBENCH_SERVE_WORKERS` | uvicorn worker processes of the model server (1–16) | 2, or 1 on a one-core machine |
| `WORKBENCH_APP_PORT` | port of the Streamlit app (1–65535) | 8501 |
| `WORKBENCH_MLFLOW_UI_PORT` | port of `python -m core mlflow-ui` (1–65535) | 5000 |
| `WORKBENCH_CAPTURE` | the model server records every request it answers in the inference log (`1`/`0`) | 1 |
| `WORKBENCH_CAPTURE_ROWS` | rows of one request logged at most (a random sample of a larger batch; 1–100000) | 100 |
| `WORKBENCH_LOG_MAX_ROWS` | the inference log keeps at most this many rows (and requests; 1000–100000000) | 1000000 |
| `WORKBENCH_LOG_MAX_DAYS` | ... and none older than this many days (a number > 0) | 90 |
| `WORKBENCH_ALERT_URL` | where a drift check that raises dataset drift or the retraining alarm POSTs its alert (JSON; comma-separated http(s) URLs, e.g. a Slack webhook) | none |
| `SPARK_MASTER` | Spark master for `apply --engine spark` (e.g. `spark://host:7077`) | Spark's own configuration, i.e. `local[*]` |
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from core import catalog
from core.dataset import DatasetError, DatasetSpec
from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_SERVE_WORKERS = 16  # uvicorn worker processes of the model server: 1..this
PORT_MIN, PORT_MAX = 1, 65535  # a TCP port a server can listen on (0 would mean "any free port")
PORT_RULE = f"a whole number from {PORT_MIN} to {PORT_MAX}"


def valid_port(value: object) -> bool:
    """True when `value` is a whole number (an int or numpy integer, not a bool) from PORT_MIN to PORT_MAX."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and PORT_MIN <= int(value) <= PORT_MAX


THRESHOLD_RULE = "a number strictly between 0 and 1"


def valid_threshold(value: object) -> bool:
    """True when `value` is a real number (not a bool), finite and strictly between 0 and 1 (at 0
    or 1 every row gets one class; NaN gives none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 0.0 < value < 1.0


def whole_number(text: str) -> int | None:
    """`text` (surrounding spaces allowed) as a non-negative int when it is ASCII digits only, else None.

    `str.isdigit` alone would accept digits such as "²" that `int` refuses."""
    text = text.strip()
    if not text or len(text) > 18 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def home_from_env(env: Mapping[str, str] | None = None) -> Path:
    """The workbench home: WORKBENCH_HOME (expanded, absolute) when set, else the project root."""
    env = os.environ if env is None else env
    return Path(env["WORKBENCH_HOME"]).expanduser().resolve() if env.get("WORKBENCH_HOME") else PROJECT_ROOT


def dataset_from_env(env: Mapping[str, str], home: Path) -> DatasetSpec:
    """The dataset named by WORKBENCH_DATASET, else the home's active one (`catalog.active_name`),
    looked up among the built-in datasets and the home's own (`catalog.user_dir(home)`)."""
    dirs = [catalog.user_dir(home)]
    if env.get("WORKBENCH_DATASET", "").strip():
        return catalog.find(env["WORKBENCH_DATASET"].strip(), dirs)
    name = catalog.active_name(home)
    try:
        return catalog.find(name, dirs)
    except DatasetError as err:
        raise DatasetError(f"{err} The active dataset {name!r} is set in {catalog.active_file(home)}; choose "
                           f"another with `python -m core --dataset {catalog.DEFAULT_DATASET} dataset use NAME`.") \
            from err


def env_port(env: Mapping[str, str], name: str) -> int:
    """The port in the environment variable `name`, or ConfigError saying what is allowed."""
    raw = env[name]
    port = whole_number(raw)
    if port is None or not valid_port(port):
        raise ConfigError(f"{name} must be {PORT_RULE}, not {raw!r}; set it to a free port (e.g. {name}=5002) "
                          f"or unset it for the default.")
    return port


def _env_whole(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    raw = env[name].strip()
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low:,} to {high:,}, not {raw!r}.")
    return value


def _monitoring_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """The capture and retention settings the environment overrides (ConfigError saying what is allowed)."""
    values: dict[str, object] = {}
    if env.get("WORKBENCH_CAPTURE", "").strip():
        raw = env["WORKBENCH_CAPTURE"].strip().lower()
        if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"WORKBENCH_CAPTURE must be 1 or 0, not {env['WORKBENCH_CAPTURE']!r}.")
        values["capture"] = raw in ("1", "true", "yes", "on")
    if env.get("WORKBENCH_CAPTURE_ROWS", "").strip():
        values["capture_rows"] = _env_whole(env, "WORKBENCH_CAPTURE_ROWS", 1, 100_000)
    if env.get("WORKBENCH_LOG_MAX_ROWS", "").strip():
        values["log_max_rows"] = _env_whole(env, "WORKBENCH_LOG_MAX_ROWS", 1000, 100_000_000)
    if env.get("WORKBENCH_LOG_MAX_DAYS", "").strip():
        raw = env["WORKBENCH_LOG_MAX_DAYS"].strip()
        try:
            days = float(raw)
        except ValueError:
            days = float("nan")
        if not (math.isfinite(days) and days > 0):
            raise ConfigError(f"WORKBENCH_LOG_MAX_DAYS must be a number of days above 0, not {raw!r}.")
        values["log_max_days"] = days
    if env.get("WORKBENCH_ALERT_URL", "").strip():
        urls = tuple(u.strip() for u in env["WORKBENCH_ALERT_URL"].split(",") if u.strip())
        bad = [u for u in urls if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", u)]
        if bad:
            raise ConfigError(f"WORKBENCH_ALERT_URL holds comma-separated http:// or https:// addresses; "
                              f"{bad[0]!r} is not one.")
        values["alert_urls"] = urls
    return values


@dataclass(frozen=True)
class PromotionPolicy:
    """How a new version may replace the champion, and how its decision threshold is chosen
    (`core/modeling/promotion.py`, `core/modeling/threshold.py`).

    A training's best candidate (chosen on cross-validation) is registered with alias
    `challenger` and becomes champion only when, on the same test split, it beats the champion on
    the training's criterion (log loss by default) and its `decision_metric` at its own threshold
    is not below the champion's (at the champion's threshold) by more than `metric_tolerance`.
    A retraining's gate (`RetrainPolicy`) checks the same decision metric on the new data.

    - `threshold_rule`: "accuracy" (the default: maximise accuracy on out-of-fold predictions,
      never below always answering the majority class on them), "f1" (maximise F1 on them: it
      calls every row positive when positives are common and the model weak) or "cost"
      (minimise `cost_ratio` x false positives + false negatives on them); evidence in
      bench/RESULTS.md ("Default decision threshold"). `decision_metric` follows the rule.
    - `calibration`: "auto" calibrates (sigmoid or isotonic, scikit-learn's `CalibratedClassifierCV`)
      when that lowers the out-of-fold log loss by at least `calibration_min_gain`; "none" never.
      A multiclass model too (one map per class, then normalised, as scikit-learn does).
    - `interval_level`: a regression version's decision policy, the share of rows its prediction
      interval should cover (conformal, `core/modeling/intervals.py`; `train --interval`).
    """

    decision_metric: str = "accuracy"
    metric_tolerance: float = 0.01
    threshold_rule: str = "accuracy"
    cost_ratio: float = 1.0
    calibration: str = "auto"
    calibration_min_gain: float = 0.002
    interval_level: float = 0.9

    @staticmethod
    def metric_for(rule: str) -> str:
        """The decision metric the gate compares for a threshold rule: F1 for "f1"; accuracy for
        "accuracy" and "cost" (the share of rows right: what a cost ratio of 1 maximises)."""
        return "f1" if rule == "f1" else "accuracy"

    def with_rule(self, rule: str, cost_ratio: float | None = None) -> "PromotionPolicy":
        """This policy with another threshold rule (and cost ratio), the gate's metric to match."""
        return dataclasses.replace(self, threshold_rule=rule, decision_metric=self.metric_for(rule),
                                   cost_ratio=self.cost_ratio if cost_ratio is None else float(cost_ratio))


@dataclass(frozen=True)
class RetrainPolicy:
    """When to retrain and how a challenger must do to replace the champion (`core/retraining.py`).

    A retraining is *needed* when labelled production rows not used by any earlier
    retraining exist and one of these holds: there are at least `min_new_rows` of them; or
    the last retraining is `every_days` days old or more; or the F1 estimated by the drift
    checks is forecast (linear trend over the last `forecast_points` checks) below `f1_floor`.
    Without new labelled rows it is never needed.

    The gate: on the held-out slice of the new data (`holdout` of each batch's labelled rows,
    stratified, seed = Settings.seed) the challenger must beat the champion on `criterion`,
    and on the old test split it must not be worse than the champion by more than `tolerance`.
    A multiclass model is gated by its task's criterion when the policy's is not one of its own,
    a regression model by RMSE (`core.monitoring.retrain_gate.criterion`); for an error in the
    target's unit (RMSE, MAE) `tolerance` is a share of the champion's figure (0.01 = 1 %).
    """

    every_days: float = 30.0
    min_new_rows: int = 1000
    f1_floor: float = 0.25
    forecast_points: int = 5
    criterion: str = "log_loss"
    tolerance: float = 0.01
    holdout: float = 0.3


@dataclass(frozen=True)
class DriftThresholds:
    """The thresholds of every monitoring verdict (`core/monitoring/statistics.py` defines the
    statistics, `core/monitoring/policy.py` applies the rules; the report prints both).

    Verdicts come from effect sizes, never from p-values alone (on a large batch a p-value
    falls below any level for differences too small to matter).

    - `psi`: a continuous feature (or the prediction) drifts when its population stability
      index (natural log) on the reference's PSI bins (deciles cut between distinct values, a
      heavy value its own bin) reaches this (0.1 = moderate, 0.2 = significant).
    - `wasserstein`: ... or when its Wasserstein distance divided by the reference standard
      deviation reaches this (Evidently's default for large samples).
    - `js`: a discrete or categorical feature, a missing-value share or the label drifts when its
      Jensen-Shannon distance (natural log, 0..0.833, as Evidently's 0.1) beyond chance reaches this.
    - `dataset_share`: the batch shows dataset drift when this share of the features drift,
    - `domain_auc`: ... or when the lower bound of the 95 % interval of the domain classifier's
      cross-validated ROC-AUC (batch rows vs training rows; 0.5 = indistinguishable) reaches this.
    - `trust_out_of_range`, `trust_domain_auc`: the label-free performance estimate is not
      trustworthy when any feature has more than this share of rows outside the training
      range (categorical: in unseen categories), or when the domain classifier's AUC reaches
      this; the first also makes a labelled batch not adherent and rings the retraining alarm.
    - `performance_drop`: a batch is not adherent, and retraining is called for, when F1 or
      ROC-AUC (realised, or a trustworthy estimate) falls this far below the test figure,
    - `log_loss_rise`: ... or the realised log loss rises this much (relative) above it.
    - `error_rise`: a regression model is not adherent, and retraining is called for, when its
      RMSE or MAE (realised, or a trustworthy estimate) rises this much (relative) above the test
      figure (its interval coverage falling `performance_drop` below the test figure counts too).
    - `significance`: a statistic fires only when chance does not explain the difference either
      (KS or chi-square p-value below this): on small batches effect sizes are mostly noise;
      on large ones the p-value is tiny for any difference and the effect size decides alone.
    - `psi_bins`, `domain_sample`, `domain_folds`, `calibration_bins`: bins and sample sizes.
    """

    psi: float = 0.2
    wasserstein: float = 0.1
    js: float = 0.1
    dataset_share: float = 0.5
    domain_auc: float = 0.8
    trust_out_of_range: float = 0.05
    trust_domain_auc: float = 0.7
    performance_drop: float = 0.05
    log_loss_rise: float = 0.10
    significance: float = 0.05
    error_rise: float = 0.10
    psi_bins: int = 10
    domain_sample: int = 5000
    domain_folds: int = 3
    calibration_bins: int = 10


DEFAULT_SERVE_PORT = 5001  # the first dataset's server's port, when free and none is set


@dataclass(frozen=True)
class Settings:
    """All configuration of the workbench. Paths are absolute.

    `dataset` is the active dataset's definition (`core/dataset.py`): the features, the target,
    the raw sources, the MLflow experiment and model name all come from it.
    """

    home: Path = PROJECT_ROOT
    dataset: DatasetSpec = field(default_factory=lambda: catalog.find(catalog.DEFAULT_DATASET))
    source_dir: Path | None = None
    tracking_uri_override: str | None = None
    test_size: float = 0.2
    seed: int = 42
    download_timeout_s: float = 60.0
    serve_host: str = "127.0.0.1"
    serve_port: int = DEFAULT_SERVE_PORT
    # the port was set on purpose (WORKBENCH_SERVE_PORT): every dataset's server then uses it; else a
    # dataset's server takes the port it remembers (`core/serving/ports.py`, `dataset_port`)
    serve_port_fixed: bool = False
    # two workers: about twice the requests/s of one with 8 concurrent clients on 2 cores (1.3-2.8x
    # over twelve runs), same single-shot latency (bench/RESULTS.md); each worker holds a copy of the model
    serve_workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    serve_start_timeout_s: float = 90.0
    request_timeout_s: float = 10.0
    app_port: int = 8501
    mlflow_ui_port: int = 5000  # `python -m core mlflow-ui`, and the pages' links into it
    spark_master: str | None = None
    max_upload_mb: int = 200
    # operations monitoring (issue 20): the model server's capture of every request, and retention
    capture: bool = True
    capture_rows: int = 100  # rows of one request logged at most (a random sample of a larger batch)
    # each server worker writes what it answered this often, in one transaction: 0.5 s lost rows
    # answered 1.0-1.1 s before a `kill -9` at a load of 4 (two workers' writes and the GIL)
    capture_flush_s: float = 0.25
    log_max_rows: int = 1_000_000  # the inference log's rows (and requests) kept at most ...
    log_max_days: float = 90.0  # ... and their age at most
    # alerts (issue 32): a check that raises dataset drift or the retraining alarm POSTs one JSON
    # object to each of these URLs (`core.monitoring.alerts`), retried within `alert_budget_s` in all
    alert_urls: tuple[str, ...] = ()
    alert_budget_s: float = 6.0
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    retrain: RetrainPolicy = field(default_factory=RetrainPolicy)
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)

    # ---- from the dataset definition ------------------------------------
    @property
    def features(self) -> tuple[str, ...]:
        """The model's input columns, in order (from the dataset definition)."""
        return self.dataset.features

    @property
    def target(self) -> str:
        """The label column (from the dataset definition)."""
        return self.dataset.target.column

    @property
    def experiment_name(self) -> str:
        return self.dataset.experiment

    @property
    def model_name(self) -> str:
        return self.dataset.model_name

    # ---- derived paths -------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The active dataset's data: `data/` for the embedded default, `data/datasets/NAME/`
        for any other (so that datasets never mix files)."""
        if self.dataset.name == catalog.DEFAULT_DATASET:
            return self.home / "data"
        return catalog.user_dir(self.home) / self.dataset.name

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "01_raw"

    @property
    def primary_dir(self) -> Path:
        return self.data_dir / "03_primary"

    @property
    def model_input_dir(self) -> Path:
        return self.data_dir / "05_model_input"

    @property
    def model_output_dir(self) -> Path:
        return self.data_dir / "07_model_output"

    @property
    def batches_dir(self) -> Path:
        return self.data_dir / "08_batches"

    @property
    def monitoring_dir(self) -> Path:
        """Drift references (training statistics, per-champion calibration)."""
        return self.data_dir / "09_monitoring"

    @property
    def runtime_dir(self) -> Path:
        """PID files, server logs, locks and the inference log."""
        return self.data_dir / "run"

    @property
    def raw_dev(self) -> Path:
        """The raw file the dev set comes from."""
        return self.raw_dir / self.dataset.dev.source

    @property
    def raw_prod(self) -> Path | None:
        """The raw file the production set comes from (None when the dataset has none)."""
        return self.raw_dir / self.dataset.prod.source if self.dataset.prod else None

    @property
    def filtered_path(self) -> Path:
        return self.primary_dir / "data_filtered.parquet"

    @property
    def prod_filtered_path(self) -> Path:
        return self.primary_dir / "prod_filtered.parquet"

    @property
    def train_path(self) -> Path:
        return self.model_input_dir / "base_train.parquet"

    @property
    def test_path(self) -> Path:
        return self.model_input_dir / "base_test.parquet"

    @property
    def predictions_path(self) -> Path:
        return self.model_output_dir / "prod_predictions.parquet"

    @property
    def uploads_output_dir(self) -> Path:
        """Where the Production page saves an uploaded batch's scored rows (never over `predictions_path`)."""
        return self.model_output_dir / "uploads"

    @property
    def inference_log_path(self) -> Path:
        """SQLite log of the single-shot requests (Serve page, `predict`), read by drift."""
        return self.data_dir / "inference_log.sqlite"

    @property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"

    @property
    def embedded_tracking(self) -> bool:
        """True when the embedded SQLite store is used (no tracking server)."""
        return self.tracking_uri_override is None

    @property
    def embedded_db_path(self) -> Path:
        """The embedded SQLite tracking store (used when no tracking server is set)."""
        return self.mlruns_dir / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        if self.tracking_uri_override:
            return self.tracking_uri_override
        return f"sqlite:///{self.embedded_db_path}"

    @property
    def artifact_location(self) -> str | None:
        """Artifact root for new experiments; None lets a tracking server decide."""
        if not self.embedded_tracking:
            return None
        return (self.mlruns_dir / "artifacts").as_uri()

    @property
    def serve_url(self) -> str:
        return f"http://{self.serve_host}:{self.serve_port}"

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@champion"

    def replace(self, **changes: object) -> "Settings":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Settings with the environment's overrides (see the module docstring)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("WORKBENCH_HOME"):
            values["home"] = home_from_env(env)
        source_dir = env.get("WORKBENCH_DATA_DIR") or env.get("KOBE_DATA_DIR")
        if source_dir:
            values["source_dir"] = Path(source_dir).expanduser().resolve()
        if "dataset" not in overrides:  # an explicit dataset > WORKBENCH_DATASET > the home's active one > kobe
            home = overrides.get("home") or values.get("home") or PROJECT_ROOT
            values["dataset"] = dataset_from_env(env, Path(str(home)))
        if env.get("MLFLOW_TRACKING_URI"):
            values["tracking_uri_override"] = env["MLFLOW_TRACKING_URI"]
        if env.get("WORKBENCH_SERVE_PORT"):
            values["serve_port"] = env_port(env, "WORKBENCH_SERVE_PORT")
            values["serve_port_fixed"] = True
        if env.get("WORKBENCH_SERVE_WORKERS"):
            raw = env["WORKBENCH_SERVE_WORKERS"].strip()
            workers = whole_number(raw)
            if workers is None or not 1 <= workers <= MAX_SERVE_WORKERS:
                raise ConfigError(f"WORKBENCH_SERVE_WORKERS must be a whole number from 1 to {MAX_SERVE_WORKERS}, "
                                  f"not {raw!r}.")
            values["serve_workers"] = workers
        if env.get("WORKBENCH_APP_PORT"):
            values["app_port"] = env_port(env, "WORKBENCH_APP_PORT")
        if env.get("WORKBENCH_MLFLOW_UI_PORT"):
            values["mlflow_ui_port"] = env_port(env, "WORKBENCH_MLFLOW_UI_PORT")
        if env.get("SPARK_MASTER"):
            values["spark_master"] = env["SPARK_MASTER"]
        values.update(_monitoring_from_env(env))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
