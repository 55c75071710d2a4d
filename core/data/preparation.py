"""Data preparation ("PreparacaoDados"): form the dev and production sets from the raw files as
the dataset definition says (its `where` queries), keep the features, the target and the display
columns, drop rows missing a feature or the label, split train/test, write parquet files
atomically and log the MLflow run; read the prepared splits back.

What the prepared target column holds depends on the task kind (the target's `task`): binary
the model's label 1/0 (int64), multiclass the class's position in `target.classes` (int64),
regression the number (float64). The split is stratified by class for a classifier, random for a
regression. The summary keeps the binary `positive_rate` and adds each task's equivalent: the
class shares (multiclass) or the target's mean and standard deviation (regression).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from core import row_filter
from core.config import Settings
from core.data.acquire import acquire
from core.errors import DataUnavailableError, NotPreparedError, PreparationError
from core.data.columns import as_text
from core.data.target_task import MIN_CLASS_ROWS
from core.files import atomic_write_parquet, sha256_file
from core.progress import ProgressFn, Stopwatch, report, scaled

PREPARE_RUN = "PreparacaoDados"
# a multiclass class needs MIN_CLASS_ROWS labelled rows: one or more in the test split and, in the
# training split, as many as the default cross-validation folds (`train --folds 3`); the same
# number `dataset add` checks (one constant, in `core.data.target_task`)


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
    task: str = "binary"
    # per split ("all", "train", "test", "prod"): multiclass {class name: share of rows};
    # regression {"mean": ..., "std": ...}; None for binary (its `positive_rate` says it)
    class_shares: dict[str, dict[str, float] | None] | None = None
    target_stats: dict[str, dict[str, float] | None] | None = None

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
    """The frame with its target as the model's labels: binary 1 = positive, 0 = negative (int64);
    multiclass the class's position in the definition's classes (int64); regression the number
    (float64). `DataUnavailableError` when the target holds a value that is not a label of the
    task (another class, or text that is no number)."""
    target = spec.target
    y, bad = target.encode(df[target.column])
    if bad:
        if target.task == "regression":
            what = "values that are not numbers"
        elif target.task == "multiclass":
            shown = ", ".join(repr(v) for v in target.classes[:10]) + (", ..." if len(target.classes) > 10 else "")
            what = f"values other than its classes ({shown})"
        else:
            what = f"values other than {target.positive!r} and {target.negative!r}"
        raise DataUnavailableError(
            f"The {label} data's {target.column} holds {what} in {bad:,} rows: fix [target] in the dataset "
            "definition or the data.")
    return df.assign(**{target.column: y.astype("float64" if target.task == "regression" else "int64")})


def check_classes(df: pd.DataFrame, spec: Any, label: str = "dev", min_rows: int = MIN_CLASS_ROWS) -> None:
    """`PreparationError` naming each class of a multiclass target with fewer than `min_rows`
    labelled rows (none at all included), and what to do: it cannot be split into training and
    test rows and cross-validated. Nothing for another task kind."""
    target = spec.target
    if target.task != "multiclass":
        return
    counts = df[target.column].value_counts()
    rare = [(target.name_of(i), int(counts.get(i, 0))) for i in range(len(target.classes))
            if counts.get(i, 0) < min_rows]
    if rare:
        listed = ", ".join(f"{name!r} ({n} row{'s' if n != 1 else ''})" for name, n in rare)
        raise PreparationError(
            f"The {label} data's {target.column} has too few rows of class(es) {listed}: each class needs at least "
            f"{min_rows} labelled rows to be split into training and test rows and cross-validated. Merge the rare "
            "class into another, drop it from `classes` in [target] of the dataset definition (its rows are then "
            "refused as unknown labels: filter them out with the [dev] `where` query), or add rows of it.")


def split(df: pd.DataFrame, test_size: float, seed: int, target: str,
          stratify: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split: stratified by the target (a classifier's), or at random (`stratify=False`:
    a regression's)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=test_size, random_state=seed,
                                   stratify=df[target] if stratify else None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def class_shares(y: pd.Series, names: tuple[str, ...]) -> dict[str, float] | None:
    """{class name: share of rows} of a multiclass label column (positions); None when empty."""
    if not len(y):
        return None
    counts = y.value_counts(normalize=True)
    return {name: round(float(counts.get(i, 0.0)), 6) for i, name in enumerate(names)}


def target_stats(y: pd.Series) -> dict[str, float] | None:
    """{"mean", "std", "min", "max"} of a regression target; None when empty."""
    if not len(y):
        return None
    v = y.astype("float64")
    return {"mean": round(float(v.mean()), 6), "std": round(float(v.std(ddof=0)), 6),
            "min": float(v.min()), "max": float(v.max())}


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
    check_classes(filtered, spec)
    classifier = spec.task != "regression"

    report(on_progress, 0.5, "Stratified train/test split" if classifier else "Random train/test split")
    train, test = split(filtered, test_size, seed, settings.target, stratify=classifier)

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

    splits = {"all": "data_filtered", "train": "base_train", "test": "base_test", "prod": "prod_filtered"}
    labels = {k: frames[v][settings.target] if frames.get(v) is not None else None for k, v in splits.items()}
    binary = spec.task == "binary"
    # binary: the share of positives; another task has no positive class (its figures below)
    positive_rate = {k: round(float(y.mean()), 6) if binary and y is not None and len(y) else None
                     for k, y in labels.items()}
    shares = ({k: class_shares(y, spec.target.names) if y is not None else None for k, y in labels.items()}
              if spec.task == "multiclass" else None)
    stats = ({k: target_stats(y) if y is not None else None for k, y in labels.items()}
             if spec.task == "regression" else None)

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
            **{f"positive_rate_{k}": positive_rate[k] for k in ("train", "test", "prod")
               if positive_rate[k] is not None},
            **{f"class_share_{k}_{i}": share for k in ("train", "test") for i, share
               in enumerate((shares or {}).get(k, {}).values() if shares and shares.get(k) else ())},
            **{f"target_{stat}_{k}": v for k in ("train", "test", "prod") for stat, v
               in ((stats or {}).get(k) or {}).items() if stat in ("mean", "std")},
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
        task=spec.task,
        class_shares=shares,
        target_stats=stats,
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
    """Rows at each step and the balance of the labels per split, read from the prepared files:
    binary the share of positive labels (`positive_rate`), multiclass the class shares, regression
    the target's mean and spread (`positive_rate` is then empty)."""

    steps: dict[str, int]
    split_rows: dict[str, int]
    positive_rate: dict[str, float]
    duplicates: int
    task: str = "binary"
    class_shares: dict[str, dict[str, float] | None] = field(default_factory=dict)
    target_stats: dict[str, dict[str, float] | None] = field(default_factory=dict)

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
    spec = settings.dataset
    labels = {k: frames[k][settings.target] for k in split_rows}
    rate = {k: float(y.mean()) for k, y in labels.items()} if spec.task == "binary" else {}
    shares = ({k: class_shares(y, spec.target.names) for k, y in labels.items()}
              if spec.task == "multiclass" else {})
    stats = {k: target_stats(y) for k, y in labels.items()} if spec.task == "regression" else {}
    dups = int(frames["filtered"].duplicated(subset=list(settings.features)).sum())
    return DataOverview(steps=steps, split_rows=split_rows, positive_rate=rate, duplicates=dups, task=spec.task,
                        class_shares=shares, target_stats=stats)
