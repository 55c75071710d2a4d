"""Data preparation ("PreparacaoDados"): form the dev and production sets from the raw files as
the dataset definition says (its `where` queries), keep the features, the target and the display
columns, drop rows missing a feature or the label, split train/test (stratified), write parquet
files atomically and log the MLflow run; read the prepared splits back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from core import row_filter
from core.config import Settings
from core.data.acquire import acquire
from core.errors import DataUnavailableError, NotPreparedError
from core.data.columns import as_text
from core.files import atomic_write_parquet, sha256_file
from core.progress import ProgressFn, Stopwatch, report, scaled

PREPARE_RUN = "PreparacaoDados"


# --------------------------------------------------------------------------- preparation
@dataclass(frozen=True)
class PrepSummary:
    """What `prepare` did: row counts per step and split, and the MLflow run."""

    raw_rows: int
    rows: int
    train_rows: int
    test_rows: int
    prod_raw_rows: int
    prod_rows: int
    dropped_missing: int
    duplicates: int
    positive_rate: dict[str, float]
    test_size: float
    seed: int
    outputs: dict[str, str]
    mlflow_run_id: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_rows(df: pd.DataFrame, where: str, label: str) -> pd.DataFrame:
    """The rows of a raw frame that the definition's row filter `where` keeps (all when empty)."""
    try:
        return row_filter.select(df, where)
    except row_filter.FilterError as err:
        raise DataUnavailableError(
            f"The {label} query of the dataset definition ({where!r}) cannot be applied to the raw data: {err} "
            "Fix `where` in the definition.") from err


def select_columns(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The features of every feature set, the target and the display columns; rows missing the
    target or a feature that may not be missing dropped (a `nullable` feature keeps its gaps:
    the model pipeline imputes them). Categorical features become text."""
    spec = settings.dataset
    needed = [*spec.model_columns, settings.target]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataUnavailableError(
            f"The raw data lacks column(s) {', '.join(missing)}; it is not the {spec.title} data."
        )
    every = {f.name: f for f in (spec.all_features_spec or spec.features_spec)}
    required = [c for c in needed if c not in every or not every[c].nullable]
    display = [c for c in spec.display if c in df.columns and c not in needed]
    out = df.loc[:, [*needed, *display]].dropna(subset=required).reset_index(drop=True)
    text = {c: as_text(out[c]) for c in needed if c in every and every[c].kind == "categorical"}
    return out.assign(**text) if text else out


def labelled(df: pd.DataFrame, spec: Any, label: str) -> pd.DataFrame:
    """The frame with its target as the model's labels (1 = positive, 0 = negative, int64);
    `DataUnavailableError` when the target holds other values than the definition's two."""
    y, bad = spec.target.encode(df[spec.target.column])
    if bad:
        raise DataUnavailableError(
            f"The {label} data's {spec.target.column} holds values other than {spec.target.positive!r} and "
            f"{spec.target.negative!r} in {bad:,} rows: fix [target] in the dataset definition or the data.")
    return df.assign(**{spec.target.column: y.astype("int64")})


def split(df: pd.DataFrame, test_size: float, seed: int, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[target])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def prepare(
    settings: Settings,
    test_size: float | None = None,
    seed: int | None = None,
    on_progress: ProgressFn = None,
) -> PrepSummary:
    """Run "PreparacaoDados": filter, clean, split, write parquet files and log an MLflow run."""
    test_size = settings.test_size if test_size is None else float(test_size)
    seed = settings.seed if seed is None else int(seed)
    if not 0.0 < test_size < 1.0:
        raise DataUnavailableError(f"test size must lie between 0 and 1, got {test_size}.")
    clock = Stopwatch()
    acquire(settings, scaled(on_progress, 0.0, 0.3))
    report(on_progress, 0.3, "Reading raw files")
    spec = settings.dataset
    dev_raw = pd.read_parquet(settings.raw_dev)
    prod_raw = pd.read_parquet(settings.raw_prod) if settings.raw_prod is not None else None

    report(on_progress, 0.4, "Filtering rows and columns, dropping missing values")
    dev_rows = select_rows(dev_raw, spec.dev.where, "dev")
    filtered = labelled(select_columns(dev_rows, settings), spec, "dev")
    prod = (labelled(select_columns(select_rows(prod_raw, spec.prod.where, "prod"), settings), spec, "prod")
            if prod_raw is not None else None)
    dropped = len(dev_rows) - len(filtered)  # rows the `where` query leaves out are not "dropped"
    duplicates = int(filtered.duplicated(subset=list(settings.features)).sum())

    report(on_progress, 0.5, "Stratified train/test split")
    train, test = split(filtered, test_size, seed, settings.target)

    report(on_progress, 0.6, "Writing parquet files")
    outputs = {
        "data_filtered": settings.filtered_path,
        "base_train": settings.train_path,
        "base_test": settings.test_path,
        "prod_filtered": settings.prod_filtered_path,
    }
    frames = {"data_filtered": filtered, "base_train": train, "base_test": test, "prod_filtered": prod}
    if prod is None:  # a dataset without a production set
        outputs.pop("prod_filtered")
        frames.pop("prod_filtered")
        settings.prod_filtered_path.unlink(missing_ok=True)
    for key, path in outputs.items():
        atomic_write_parquet(frames[key], path)

    rate = {k: round(float(frames[k][settings.target].mean()), 6) if len(frames[k]) else None
            for k in frames}
    positive_rate = {"all": rate["data_filtered"], "train": rate["base_train"],
                     "test": rate["base_test"], "prod": rate.get("prod_filtered")}

    report(on_progress, 0.7, "Logging the PreparacaoDados run to MLflow")
    # MLflow and scikit-learn are imported where used: the Home page's status check needs neither
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    from core import tracking

    exp_id = tracking.use(settings)
    with mlflow.start_run(run_name=PREPARE_RUN, experiment_id=exp_id) as run:
        mlflow.log_params({
            "test_size": test_size,
            "seed": seed,
            "features": ",".join(settings.features),
            "target": settings.target,
        })
        mlflow.log_metrics({
            "rows_raw": len(dev_raw),
            "rows_filtered": len(filtered),
            "rows_train": len(train),
            "rows_test": len(test),
            "rows_prod": len(prod) if prod is not None else 0,
            "rows_dropped_missing": dropped,
            "duplicate_feature_rows": duplicates,
            "positive_rate_train": positive_rate["train"],
            "positive_rate_test": positive_rate["test"],
            **({"positive_rate_prod": positive_rate["prod"]} if positive_rate["prod"] is not None else {}),
        })
        schema = _schema(spec)
        for key, path in outputs.items():
            mlflow.log_input(MetaDataset(LocalArtifactDatasetSource(str(path)), name=key,
                                         digest=sha256_file(path)[:8], schema=schema), context=key)
        run_id = run.info.run_id
    report(on_progress, 1.0, "Done")
    return PrepSummary(
        raw_rows=len(dev_raw),
        rows=len(filtered),
        train_rows=len(train),
        test_rows=len(test),
        prod_raw_rows=len(prod_raw) if prod_raw is not None else 0,
        prod_rows=len(prod) if prod is not None else 0,
        dropped_missing=dropped,
        duplicates=duplicates,
        positive_rate=positive_rate,
        test_size=test_size,
        seed=seed,
        outputs={k: str(v) for k, v in outputs.items()},
        mlflow_run_id=run_id,
        seconds=round(clock.seconds, 3),
    )


def _schema(spec: Any) -> Any:
    """The prepared files' MLflow schema, from the definition: the features as the model takes
    them (doubles; strings for categories; optional when nullable) and the label as a double.

    Stated rather than inferred: MLflow's inference looks at every value in Python (about 16 s
    per 100,000-row split of 30 columns), and the definition already knows the answer."""
    from mlflow.types import ColSpec, Schema

    cols = [ColSpec("string" if f.kind == "categorical" else "double", f.name, required=not f.nullable)
            for f in spec.features_spec]
    return Schema([*cols, ColSpec("double", spec.target.column)])


def is_prepared(settings: Settings) -> bool:
    """True when the prepared splits exist (the production split too, when the dataset has one)."""
    paths = [settings.train_path, settings.test_path]
    if settings.dataset.prod is not None:
        paths.append(settings.prod_filtered_path)
    return all(p.exists() for p in paths)


def has_prod(settings: Settings) -> bool:
    """True when the dataset sets a production batch apart (its definition has `[prod]`)."""
    return settings.dataset.prod is not None


def load_split(settings: Settings, name: str) -> pd.DataFrame:
    """A prepared frame: 'train', 'test', 'filtered' or 'prod'."""
    if name == "prod" and not has_prod(settings):
        raise NotPreparedError(
            f"The dataset {settings.dataset.name} has no production batch (its definition has no [prod] "
            "section): score or check a batch file instead (--batch, or upload one on the Drift page).")
    paths = {"train": settings.train_path, "test": settings.test_path,
             "filtered": settings.filtered_path, "prod": settings.prod_filtered_path}
    path = paths[name]
    if not path.exists():
        raise NotPreparedError(
            f"{path.name} does not exist yet: prepare the data first (Data page, or `python -m core prepare`)."
        )
    return pd.read_parquet(path)


@dataclass(frozen=True)
class DataOverview:
    """Rows at each step and the share of positive labels per split, read from the prepared files."""

    steps: dict[str, int]
    split_rows: dict[str, int]
    positive_rate: dict[str, float]
    duplicates: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def overview(settings: Settings) -> DataOverview:
    """Row counts raw → labelled → train/test (and prod), class balance per split."""
    import pyarrow.parquet as pq

    names = ("filtered", "train", "test", "prod") if has_prod(settings) else ("filtered", "train", "test")
    frames = {name: load_split(settings, name) for name in names}
    steps = {
        "dev raw": pq.read_metadata(settings.raw_dev).num_rows,
        "dev labelled (no missing values)": len(frames["filtered"]),
        "train": len(frames["train"]),
        "test": len(frames["test"]),
    }
    if "prod" in frames:
        steps["prod raw"] = pq.read_metadata(settings.raw_prod).num_rows
        steps["prod labelled"] = len(frames["prod"])
    split_rows = {k: len(frames[k]) for k in names if k != "filtered"}
    rate = {k: float(frames[k][settings.target].mean()) for k in split_rows}
    dups = int(frames["filtered"].duplicated(subset=list(settings.features)).sum())
    return DataOverview(steps=steps, split_rows=split_rows, positive_rate=rate, duplicates=dups)
