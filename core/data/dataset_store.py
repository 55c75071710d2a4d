"""The analyst's own datasets: read a table, save it with its definition, remove it.

`add(home, file_or_frame, name, target)` infers a definition (`core.data.infer`), or takes an
already edited one, checks it with `core.catalog.from_dict` and against the data, and saves

    <home>/data/datasets/NAME/dataset.toml             the definition (TOML, written with tomli-w)
    <home>/data/datasets/NAME/01_raw/NAME.parquet      the table, its SHA-256 in the definition

atomically: everything is built in a staging folder beside it (`.staging/`, which the catalog
does not search) and renamed into place at the end, so a refusal or a crash saves nothing and
never damages an existing dataset. The folder is that dataset's `Settings.data_dir`, so
`prepare` finds the raw file present and keeps it (its checksum matches).

`replace=True` replaces what the README promises and nothing else: the definition, the table
(`01_raw/`) and the data prepared from them (`03_primary/`, `05_model_input/`). Everything else
in the folder stays where it is (the inference log, stored batches, drift history, the queue of
checks not yet in MLflow, the model server's runtime files); `AddResult.kept` names it. While
the dataset's model server runs, replacing or removing the dataset is refused (the server
would keep answering while its files change under it).
"""
from __future__ import annotations

import copy
import dataclasses
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from core import catalog, row_filter
from core.data.columns import yes_no_numbers
from core.data.infer import Inference, check_feature_count, check_name, infer
from core.dataset import DEFINITION_FILE, DatasetError, DatasetSpec
from core.files import sha256_file

STAGING = ".staging"  # beside the datasets; `catalog.available` only looks one level down for dataset.toml
RAW_FOLDER = "01_raw"  # as `Settings.raw_dir`
LOCK_TIMEOUT_S = 60.0  # how long an add waits for another add or remove of the same name
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

Table = Union[str, Path, bytes, BinaryIO]
_DECIMAL_COMMA = r"\s*[-+]?\d+(,\d+)?\s*"  # "3,5" or "4": in a semicolon-separated file, a decimal comma


@dataclass(frozen=True)
class AddResult:
    """What `add` saved: where, how many rows and of which kind, and the inference (None when an
    edited definition was given)."""

    name: str
    folder: str
    definition_path: str
    data_path: str
    sha256: str
    rows: int
    labelled_rows: int
    unlabelled_rows: int
    dev_rows: int
    prod_rows: int | None
    features: dict[str, str]
    replaced: bool
    warnings: tuple[str, ...]
    inference: Inference | None
    kept: tuple[str, ...] = ()  # what a replace left in place in the folder (top-level names)
    task: str = "binary"  # the target's task kind as saved
    previous_task: str | None = None  # a replaced dataset's task kind (None: nothing replaced, or unreadable)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "definition_path": self.definition_path,
                "data_path": self.data_path, "sha256": self.sha256, "rows": self.rows,
                "labelled_rows": self.labelled_rows, "unlabelled_rows": self.unlabelled_rows,
                "dev_rows": self.dev_rows, "prod_rows": self.prod_rows, "features": dict(self.features),
                "replaced": self.replaced, "kept": list(self.kept), "warnings": list(self.warnings),
                "inference": self.inference.to_dict() if self.inference else None, "task": self.task,
                "previous_task": self.previous_task}


# --------------------------------------------------------------------------- reading
def read_table(source: Table, name: str | None = None) -> pd.DataFrame:
    """A CSV (separator sniffed: comma, semicolon, tab or pipe; types inferred by pandas) or a
    parquet file, from a path, bytes or an uploaded file (`name` gives its file name). Raises
    `DatasetError` saying why a file cannot be read."""
    data, label = _bytes(source, name)
    if not data:
        raise DatasetError(f"{label} is empty (0 bytes); give a CSV or parquet file with a header row and data.")
    if data[:4] == b"PAR1" or label.lower().endswith(PARQUET_SUFFIXES):
        return _read_parquet(data, label)
    return _read_csv(data, label)


def _bytes(source: Table, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"The file {path} does not exist or is not a file; check the path.")
        try:
            return path.read_bytes(), name or path.name
        except OSError as err:
            raise DatasetError(f"The file {path} cannot be read ({err.strerror or err}); check its permissions.") \
                from err
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "the table"
    getvalue = getattr(source, "getvalue", None)
    data = getvalue() if callable(getvalue) else source.read()
    return bytes(data), name or str(getattr(source, "name", "") or "the table")


def _read_parquet(data: bytes, label: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowException, ValueError, OSError, TypeError) as err:
        raise DatasetError(f"{label} is not a readable parquet file ({type(err).__name__}: {err}); give a parquet "
                           "or CSV file.") from err


def _read_csv(data: bytes, label: str) -> pd.DataFrame:
    # the batch reader's checks: not a binary file, the separator, rows with as many fields as the header
    from core.data.batch_files import SEPARATORS, _header, _not_csv, _ragged_lines, _separator

    refused = _not_csv(data)
    if refused:
        raise DatasetError(f"{label}: {refused.removeprefix('file: ')}.")
    sample = data[:65536].decode("utf-8-sig", errors="ignore")
    sep = _separator(sample, ())
    header = _header(sample, sep)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DatasetError(f"{label}: column(s) {', '.join(map(repr, dupes))} appear more than once in the header; "
                           "keep one of each.")
    try:
        n_fields, ragged = _ragged_lines(data, sep)
        if ragged:
            shown = ", ".join(str(i) for i in ragged[:5]) + (" ..." if len(ragged) > 5 else "")
            raise DatasetError(f"{label}: {len(ragged):,} line(s) have more or fewer fields than the header's "
                               f"{n_fields} (read as {SEPARATORS[sep]}-separated; line(s) {shown}); give every row "
                               "one value per column.")
        frame = pd.read_csv(io.BytesIO(data), sep=sep, encoding="utf-8-sig", low_memory=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DatasetError(f"{label} is not a readable CSV file ({type(err).__name__}: {err}); give a CSV file "
                           "with a header row, or a parquet file.") from err
    return _decimal_commas(frame) if sep == ";" else frame


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """A semicolon-separated file's text columns that are all numbers written with a decimal comma
    ("3,5", as spreadsheets save them in many locales) read as numbers."""
    numbers = {}
    for column in frame.select_dtypes(include="object").columns:
        text = frame[column].dropna()
        if len(text) and text.map(lambda v: isinstance(v, str)).all() and text.str.fullmatch(_DECIMAL_COMMA).all():
            numbers[column] = pd.to_numeric(frame[column].str.replace(",", ".", regex=False))
    return frame.assign(**numbers) if numbers else frame


# --------------------------------------------------------------------------- adding
def add(home: Path, file_or_frame: Table | pd.DataFrame, name: str, target: str | None,
        positive: Any = None, features: Sequence[str] | None = None, prod_where: str | None = None,
        definition: Mapping[str, Any] | None = None, replace: bool = False, title: str | None = None,
        task: str | None = None) -> AddResult:
    """Save a table as the dataset `name` under `<home>/data/datasets/NAME/` (see the module docstring).

    Without `definition`, one is inferred (`core.data.infer.infer` with `target`, `task`,
    `positive`, `features`, `prod_where`, `title`); with it (e.g. the Data page's edited one), that
    one is used (its target's task kind too): its sources are set to the saved table. An existing
    dataset is refused unless `replace`, which swaps the previous definition, table and the data
    prepared from them and keeps everything else of the folder in place (`AddResult.kept`; MLflow
    runs and models stay too). Replacing a dataset by one of another task kind is allowed and
    said (`AddResult.previous_task` and a warning: the models trained for the old task no longer
    fit). Raises `DatasetError` (nothing saved) saying what to fix, also when replacing a dataset
    whose model server runs.
    """
    home = Path(home)
    check_name(name, tuple(catalog.available()))
    folder = catalog.user_dir(home) / name
    _refuse_existing(folder, name, replace)
    frame = file_or_frame if isinstance(file_or_frame, pd.DataFrame) else read_table(file_or_frame)
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    inference = None
    if definition is None:
        if not target:
            raise DatasetError("Name the column to predict (--target COLUMN).")
        inference = infer(frame, name, target, positive=positive, features=features, prod_where=prod_where,
                          title=title, task=task)
        definition = inference.definition
    raw = _with_source(definition, name, target)
    spec = catalog.from_dict(raw, where=f"the definition of {name}")
    check_feature_count(len(spec.all_features_spec or spec.features_spec))
    frame = _yes_no_as_numbers(frame, spec)
    counts, warnings = _check_data(spec, frame)
    if inference is not None:
        warnings = [*inference.warnings, *warnings]
    previous = _previous_task(folder) if replace else None
    if previous is not None and previous != spec.task:
        warnings.append(f"{name} was a {previous} dataset and is now {spec.task}: the models registered for it "
                        f"were trained for {previous} and do not fit it; prepare the data and train again "
                        "before serving or scoring.")
    _refuse_served(home, spec)
    staging = catalog.user_dir(home) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(staging / f"{name}.lock"), timeout=LOCK_TIMEOUT_S):
            _refuse_existing(folder, name, replace)  # again, under the lock
            _refuse_served(home, spec)
            built = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging))
            try:
                sha = _build(built, frame, raw, name)
                replaced = _swap(built, folder, staging)
            finally:
                shutil.rmtree(built, ignore_errors=True)
    except Timeout as err:
        raise DatasetError(f"Another add or remove of dataset {name!r} is running; try again when it is done.") \
            from err
    return AddResult(name=name, folder=str(folder), definition_path=str(folder / DEFINITION_FILE),
                     data_path=str(folder / RAW_FOLDER / spec.dev.source), sha256=sha, rows=len(frame),
                     features={f.name: f.kind for f in spec.all_features_spec or spec.features_spec},
                     replaced=replaced, warnings=tuple(warnings), inference=inference,
                     kept=_kept(folder) if replaced else (), task=spec.task,
                     previous_task=previous if replaced else None, **counts)


def _yes_no_as_numbers(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The table with each binary feature held as yes/no words (yes/no, true/false, y/n, any case;
    booleans) saved as 1.0 and 0.0, the numbers a binary feature takes (its `value_labels` keep
    the words); every other column as it is."""
    numbers = {}
    for f in spec.all_features_spec or spec.features_spec:
        column = frame[f.name] if f.kind == "binary" and f.name in frame.columns else None
        if column is not None and not (pd.api.types.is_numeric_dtype(column.dtype)
                                       and not pd.api.types.is_bool_dtype(column.dtype)):
            mapped = yes_no_numbers(column)
            if mapped is not None:
                numbers[f.name] = mapped
    return frame.assign(**numbers) if numbers else frame


def _previous_task(folder: Path) -> str | None:
    """The task kind of the dataset saved in `folder` (None: none there, or its definition does not read)."""
    try:
        return catalog.load(folder / DEFINITION_FILE).task
    except (DatasetError, OSError):
        return None


def _refuse_existing(folder: Path, name: str, replace: bool) -> None:
    if folder.exists() and not replace:
        what = "a dataset" if (folder / DEFINITION_FILE).is_file() else "a folder"
        raise DatasetError(f"There is already {what} called {name!r} ({folder}); choose another --name, or pass "
                           "--replace to replace it (its table, definition and prepared data; MLflow runs stay).")


def _refuse_served(home: Path, spec: DatasetSpec) -> None:
    """Refuse to change the dataset `spec.name` of `home` while its model server runs (its
    inference log, runtime files and metrics are in the dataset's folder)."""
    from core.config import Settings
    from core.runtime import live_server

    now = live_server(Settings(home=home, dataset=spec))
    if now is not None:
        raise DatasetError(f"The model server of dataset {spec.name!r} is running (pid {now.get('pid')}, "
                           f"{now.get('url')}); stop the model server first: "
                           f"python -m core serve stop --dataset {spec.name}")


def _replaced_names() -> tuple[str, ...]:
    """The folder's entries a replace swaps: the definition, the table and the prepared data
    (the rest of the dataset's `Settings` folders stay)."""
    from core.config import Settings

    s = Settings()
    return (RAW_FOLDER, s.primary_dir.name, s.model_input_dir.name, DEFINITION_FILE)


def _kept(folder: Path) -> tuple[str, ...]:
    """The entries of `folder` a replace left in place (SQLite's side files and locks aside)."""
    replaced = set(_replaced_names())
    return tuple(sorted(p.name for p in folder.iterdir() if p.name not in replaced
                        and not p.name.endswith(("-wal", "-shm", ".lock"))))


def _with_source(definition: Mapping[str, Any], name: str, target: str | None) -> dict[str, Any]:
    """A copy of `definition` whose single source is the saved table `<name>.parquet`."""
    raw = copy.deepcopy(dict(definition))
    if raw.get("name", name) != name:
        raise DatasetError(f"The definition is named {raw['name']!r} but the dataset is added as {name!r}; "
                           "give the same name to both.")
    column = (raw.get("target") or {}).get("column") if isinstance(raw.get("target"), Mapping) else None
    if target and column and column != target:
        raise DatasetError(f"The definition's target is {column!r} but {target!r} was asked for; give the same "
                           "column to both.")
    source = f"{name}.parquet"
    raw["name"], raw["sources"] = name, [{"file": source}]
    for key in ("dev", "prod"):
        if isinstance(raw.get(key), Mapping):
            raw[key] = {**raw[key], "source": source}
    raw.setdefault("dev", {"source": source})
    return raw


def _check_data(spec: DatasetSpec, frame: pd.DataFrame) -> tuple[dict[str, Any], list[str]]:
    """Row counts of the table under `spec`; refuses a table the definition does not describe
    (missing columns, other target values, a query that fails or selects nothing), and warns
    about dev values outside the features' domains."""
    from core.data.columns import feature_frame
    from core.rules import RuleTable

    every = spec.all_features_spec or spec.features_spec
    missing = [c for c in (spec.target.column, *(f.name for f in every)) if c not in frame.columns]
    if missing:
        raise DatasetError(f"The table lacks column(s) {', '.join(missing)} that the definition names; its columns "
                           f"are: {', '.join(frame.columns)}.")
    labels, bad = spec.target.encode(frame[spec.target.column])
    if bad:
        expected = {"binary": f"values other than {spec.target.positive!r} and {spec.target.negative!r}",
                    "multiclass": f"values other than its {len(spec.target.classes)} classes",
                    "regression": "values that are not finite numbers"}[spec.task]
        raise DatasetError(f"The target {spec.target.column!r} holds {expected} in {bad:,} rows; fix [target] or "
                           "the data.")
    rows = {}
    plain = frame.reset_index(drop=True)
    for key, subset in (("dev", spec.dev), ("prod", spec.prod)):
        if subset is None:
            continue
        try:
            chosen = row_filter.select(plain, subset.where).index
        except row_filter.FilterError as err:
            raise DatasetError(f"The {key} rows cannot be selected: {err}") from err
        if len(chosen) == 0:
            raise DatasetError(f"The {key} query {subset.where!r} selects no row of the table; fix it.")
        rows[key] = chosen
    labelled = int((~np.isnan(labels)).sum())
    counts = {"labelled_rows": labelled, "unlabelled_rows": len(frame) - labelled, "dev_rows": len(rows["dev"]),
              "prod_rows": len(rows["prod"]) if "prod" in rows else None}
    dev = plain.loc[rows["dev"]]
    categorical = tuple(f.name for f in every if f.kind == "categorical")
    problems = RuleTable.from_spec(_all_features(spec)).plain_problems(
        feature_frame(dev, tuple(f.name for f in every), categorical))
    return counts, [f"the dev rows break the definition: {p}" for p in problems]


def _all_features(spec: DatasetSpec) -> DatasetSpec:
    """`spec` with every feature of every set as its features (the rules of all of them)."""
    return dataclasses.replace(spec, features_spec=spec.all_features_spec or spec.features_spec)


def _build(built: Path, frame: pd.DataFrame, raw: dict[str, Any], name: str) -> str:
    """Write the table and the definition (with the table's checksum) into `built`; check that the
    definition reads back as written. Returns the table's SHA-256."""
    import pyarrow as pa
    import tomli_w

    data = built / RAW_FOLDER / f"{name}.parquet"
    data.parent.mkdir(parents=True)
    try:
        frame.to_parquet(data, index=False)
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise DatasetError(f"The table cannot be saved as parquet ({type(err).__name__}: {err}); give each column "
                           "one type (e.g. not numbers mixed with text).") from err
    sha = sha256_file(data)
    raw = {**raw, "sources": [{"file": data.name, "sha256": sha}]}
    text = "# Added with `python -m core dataset add` (or the Data page); edit it freely.\n" + tomli_w.dumps(
        _toml_ready(raw))
    (built / DEFINITION_FILE).write_text(text, encoding="utf-8")
    spec = catalog.load(built / DEFINITION_FILE)
    if spec.name != name or spec.source(data.name).sha256 != sha:
        raise DatasetError(f"The definition of {name!r} did not read back as written; nothing was saved.")
    return sha


def _toml_ready(value: Any) -> Any:
    """Plain data TOML can hold: None values left out, numpy scalars as Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value if v is not None]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _swap(built: Path, folder: Path, staging: Path) -> bool:
    """Rename `built` to `folder`. An existing folder keeps its inode and everything but the
    replaced entries (`_replaced_names`): those are moved aside, the new ones moved in (the
    definition last, with an atomic replace), and on a failure the old ones are put back.
    Returns whether a folder was replaced."""
    if not folder.exists():
        os.rename(built, folder)
        return False
    old = Path(tempfile.mkdtemp(prefix=f"{folder.name}.old.", dir=staging))
    aside: list[str] = []
    moved_in: list[str] = []
    try:
        for name in _replaced_names()[:-1]:
            if os.path.lexists(folder / name):
                os.rename(folder / name, old / name)
                aside.append(name)
        for name in _replaced_names()[:-1]:
            if os.path.lexists(built / name):
                os.rename(built / name, folder / name)
                moved_in.append(name)
        definition = folder / DEFINITION_FILE
        if definition.exists():
            shutil.copy2(definition, old / DEFINITION_FILE)
            aside.append(DEFINITION_FILE)
        os.replace(built / DEFINITION_FILE, definition)
    except OSError:
        for name in moved_in:
            shutil.rmtree(folder / name, ignore_errors=True)
        for name in aside:
            os.replace(old / name, folder / name)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return True


# --------------------------------------------------------------------------- removing
def remove(home: Path, name: str) -> Path:
    """Delete the analyst's dataset `name` (its folder under `<home>/data/datasets/`: definition,
    table, prepared data; MLflow runs and models stay). A built-in dataset cannot be removed, nor
    one whose model server runs (`DatasetError` naming the command that stops it).
    When it was the active dataset, the active one falls back to the default. Returns the folder."""
    home = Path(home)
    if name in catalog.available():
        raise DatasetError(f"{name!r} is a built-in dataset; it cannot be removed.")
    folder = catalog.user_dir(home) / name
    if not (folder / DEFINITION_FILE).is_file():
        raise DatasetError(f"There is no dataset called {name!r} among the added ones "
                           f"({', '.join(sorted(catalog.available([catalog.user_dir(home)]))) or 'none'}).")
    try:
        spec = catalog.load(folder / DEFINITION_FILE)
    except DatasetError:  # a definition that does not read runs no server of ours (`server.stop_all`)
        spec = None
    if spec is not None:
        _refuse_served(home, spec)
    staging = catalog.user_dir(home) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(staging / f"{name}.lock"), timeout=LOCK_TIMEOUT_S):
        old = Path(tempfile.mkdtemp(prefix=f"{name}.removed.", dir=staging))
        old.rmdir()
        os.rename(folder, old)  # gone from the catalog at once, then deleted
        shutil.rmtree(old, ignore_errors=True)
    try:
        if catalog.active_file(home).read_text(encoding="utf-8").strip() == name:
            catalog.active_file(home).unlink()
    except OSError:  # no active file: nothing to undo
        pass
    return folder
