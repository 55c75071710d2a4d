"""The dataset catalog: where definitions live, reading them from TOML, and a dataset's view.

Definitions are `NAME/dataset.toml` files under the built-in `datasets/` folder (and any
folders given). `load` parses one (standard library `tomllib`, or `tomli` on Python < 3.11)
into a `core.dataset.DatasetSpec`, refusing a malformed one with a `DatasetError` that names the
field; `find` and `available` look definitions up by name; `load_view` imports a dataset's
own view module (e.g. Kobe's court chart) when it has one. Datasets the analyst adds live under
`user_dir(home)` (pass it to `find` / `available`); `set_active` / `active_name` keep which one a
home works on by default.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

from core import row_filter
from core.dataset import (
    DEFAULT_FEATURE_SET,
    DEFINITION_FILE,
    KINDS,
    TASKS,
    DatasetError,
    DatasetSpec,
    Feature,
    Source,
    Subset,
    Target,
)

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.9 / 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_DATASET = "kobe"
# the datasets shipped with the workbench
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "datasets"


def _need(table: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in table:
        raise DatasetError(f"{where}: `{key}` is missing.")
    value = table[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DatasetError(f"{where}: `{key}` must be a {names}, not {value!r}.")
    return value


def _number(table: Mapping[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{where}: `{key}` must be a number, not {value!r}.")
    return float(value)


def _feature(raw: Mapping[str, Any], where: str) -> Feature:
    name = _need(raw, "name", where)
    where = f"{where} ({name})"
    kind = _need(raw, "kind", where)
    if kind not in KINDS:
        raise DatasetError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    values = tuple(raw.get("values", ()))
    if kind == "binary" and len(values) != 2:
        raise DatasetError(f"{where}: a binary feature lists its two `values`, e.g. values = [0, 1].")
    if kind == "categorical" and not values:
        raise DatasetError(f"{where}: a categorical feature lists its allowed `values`.")
    if kind != "categorical" and any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise DatasetError(f"{where}: the values of a {kind} feature must be numbers.")
    minimum, maximum = _number(raw, "min", where), _number(raw, "max", where)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise DatasetError(f"{where}: min {minimum:g} is larger than max {maximum:g}.")
    labels = raw.get("value_labels", {})
    if not isinstance(labels, Mapping):
        raise DatasetError(f"{where}: `value_labels` must be a table like {{ \"0\" = \"no\" }}.")
    return Feature(
        name=name, kind=kind, label=str(raw.get("label", "")), unit=str(raw.get("unit", "")),
        help=str(raw.get("help", "")), minimum=minimum, maximum=maximum,
        integer=bool(raw.get("integer", False)),
        values=tuple(float(v) if kind != "categorical" else str(v) for v in values),
        value_labels={str(k): str(v) for k, v in labels.items()},
        nullable=bool(raw.get("nullable", False)), step=_number(raw, "step", where),
    )


def _subset(raw: Any, where: str) -> Subset:
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where} must be a table with `source` (and optional `where`, `title`).")
    return Subset(source=_need(raw, "source", where), where=row_filter.check_saved(str(raw.get("where", "")), where),
                  title=str(raw.get("title", "")))


def _target(t: Mapping[str, Any], where: str) -> Target:
    """The [target] table: its column and task (binary when not named), with the task's facts."""
    task = str(t.get("task", "binary"))
    if task not in TASKS:
        raise DatasetError(f"{where}: task {task!r} must be one of {', '.join(TASKS)}.")
    classes = tuple(t.get("classes", ()))
    labels = tuple(str(v) for v in t.get("class_labels", ()))
    if task == "multiclass":
        if len(classes) < 3:
            raise DatasetError(f"{where}: a multiclass target needs `classes`, at least three values in the "
                               "model's order (two classes: task = \"binary\").")
        if len({str(c) for c in classes}) != len(classes):
            raise DatasetError(f"{where}: `classes` lists a value twice.")
        if labels and len(labels) != len(classes):
            raise DatasetError(f"{where}: `class_labels` must name each of the {len(classes)} classes, in order.")
    return Target(column=_need(t, "column", where), positive=t.get("positive", 1),
                  negative=t.get("negative", 0), positive_name=str(t.get("positive_name", "positive")),
                  negative_name=str(t.get("negative_name", "negative")), task=task,
                  classes=classes if task == "multiclass" else (), class_labels=labels if task == "multiclass" else (),
                  unit=str(t.get("unit", "")))


def from_dict(raw: Mapping[str, Any], where: str = "dataset definition", folder: Path | None = None) -> DatasetSpec:
    """A `DatasetSpec` from parsed TOML; `DatasetError` naming the first malformed field."""
    name = _need(raw, "name", where)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise DatasetError(f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_'.")
    t = _need(raw, "target", where, Mapping)
    target = _target(t, f"{where} [target]")
    raw_features = _need(raw, "features", where, list)
    if not raw_features:
        raise DatasetError(f"{where}: at least one [[features]] entry is needed.")
    features = tuple(_feature(f, f"{where} [[features]] #{i + 1}") for i, f in enumerate(raw_features))
    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{where}: feature(s) listed twice: {', '.join(dupes)}.")
    if target.column in names:
        raise DatasetError(f"{where}: the target {target.column!r} cannot also be a feature.")
    sources = tuple(Source(file=_need(s, "file", f"{where} [[sources]]"), url=str(s.get("url", "")),
                           sha256=str(s.get("sha256", "")).lower()) for s in raw.get("sources", []))
    dev = _subset(raw.get("dev"), f"{where} [dev]")
    prod = _subset(raw["prod"], f"{where} [prod]") if raw.get("prod") else None
    files = {s.file for s in sources}
    for sub, label in ((dev, "dev"), (prod, "prod")):
        if sub is not None and sub.source not in files:
            raise DatasetError(f"{where} [{label}]: source {sub.source!r} is not one of the [[sources]].")
    display = tuple(str(c) for c in raw.get("display", ()))
    feature_sets = _feature_sets(raw.get("feature_sets", {}), names, where)
    default_names = feature_sets.get(DEFAULT_FEATURE_SET, tuple(names))
    by_name = {f.name: f for f in features}
    partition = raw.get("partition_by") or None
    if partition is not None and partition not in names:
        raise DatasetError(f"{where}: partition_by {partition!r} is not a feature.")
    time_column = raw.get("time_column") or None
    if time_column is not None and (not isinstance(time_column, str) or time_column in names
                                    or time_column == target.column):
        raise DatasetError(f"{where}: time_column {time_column!r} must be the name of a column that is neither a "
                           "feature nor the target (when each row happened, e.g. a date).")
    spec = DatasetSpec(
        name=name, title=str(raw.get("title", name)), description=str(raw.get("description", "")),
        target=target, features_spec=tuple(by_name[n] for n in default_names), sources=sources, dev=dev, prod=prod,
        all_features_spec=features, feature_sets=feature_sets,
        row_noun=str(raw.get("row_noun", "row")), rows_noun=str(raw.get("rows_noun", "rows")),
        display=display, partition_by=partition, time_column=time_column, experiment=str(raw.get("experiment") or f"{name}-workbench"),
        model_name=str(raw.get("model_name") or f"{name}-model"), view=raw.get("view") or None,
        example=_example(raw.get("example", {}), names, default_names, where), folder=folder,
    )
    if spec.example:
        from core.rules import InvalidInputError

        try:
            spec.rules.validate_row({n: spec.example[n] for n in spec.features}, what="example")
        except InvalidInputError as err:
            raise DatasetError(f"{where}: `example` breaks the features' domains: {err}") from err
    return spec


def _example(raw: Any, names: list[str], default_names: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where}: `example` must be a table of feature values.")
    if raw and (set(raw) - set(names) or set(default_names) - set(raw)):
        raise DatasetError(f"{where}: `example` must give every feature of the default set "
                           f"({', '.join(default_names)}), and only features.")
    return dict(raw)


def _feature_sets(raw: Any, names: list[str], where: str) -> dict[str, tuple[str, ...]]:
    """`[feature_sets]`: {set name: its features}, each a non-empty list of known features."""
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where}: `feature_sets` must be a table like {{ default = [\"a\", \"b\"] }}.")
    sets: dict[str, tuple[str, ...]] = {}
    for set_name, members in raw.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", str(set_name)):
            raise DatasetError(f"{where} [feature_sets]: name {set_name!r} must be lower-case letters, digits, "
                               "'-' or '_'.")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise DatasetError(f"{where} [feature_sets] {set_name}: give a non-empty list of feature names.")
        unknown = [m for m in members if m not in names]
        if unknown:
            raise DatasetError(f"{where} [feature_sets] {set_name}: {', '.join(unknown)} not among the [[features]].")
        if len(set(members)) != len(members):
            raise DatasetError(f"{where} [feature_sets] {set_name}: a feature is listed twice.")
        sets[str(set_name)] = tuple(members)
    return sets


def load(path: Path) -> DatasetSpec:
    """Read one definition file (`.../NAME/dataset.toml`)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DatasetError(f"The dataset definition {path} cannot be read ({err}).") from err
    except tomllib.TOMLDecodeError as err:
        raise DatasetError(f"The dataset definition {path} is not valid TOML ({err}).") from err
    return from_dict(raw, where=str(path), folder=path.parent)


def search_dirs(extra: Sequence[Path] = ()) -> tuple[Path, ...]:
    """Where definitions are looked for: the given folders first, then the built-in ones."""
    return (*[Path(p) for p in extra], BUILTIN_DIR)


def available(dirs: Sequence[Path] = ()) -> dict[str, Path]:
    """{name: definition file} of every dataset found (the first folder wins on a name)."""
    found: dict[str, Path] = {}
    for root in search_dirs(dirs):
        if not root.is_dir():
            continue
        for file in sorted(root.glob(f"*/{DEFINITION_FILE}")):
            found.setdefault(file.parent.name, file)
    return found


def find(name: str, dirs: Sequence[Path] = ()) -> DatasetSpec:
    """The dataset called `name`; `DatasetError` listing the known ones when there is none."""
    known = available(dirs)
    if name not in known:
        raise DatasetError(f"There is no dataset called {name!r}. Known datasets: "
                           f"{', '.join(sorted(known)) or 'none'}.")
    return load(known[name])


def load_view(spec: DatasetSpec) -> ModuleType | None:
    """The dataset's own view module (e.g. Kobe's court chart), or None when it has none."""
    if not spec.view or spec.folder is None:
        return None
    path = spec.folder / spec.view
    if not path.is_file():
        raise DatasetError(f"Dataset {spec.name}: its view {path} does not exist.")
    module_name = f"workbench_view_{spec.name.replace('-', '_')}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise DatasetError(f"Dataset {spec.name}: its view {path} cannot be imported.")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up by name
    loader_spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the analyst's datasets
ACTIVE_FILE = "active_dataset"  # under <home>/data/: the name of the dataset chosen with `dataset use`


def user_dir(home: Path) -> Path:
    """Where datasets added by the analyst live: `<home>/data/datasets/` (one `NAME/dataset.toml`
    each, beside that dataset's data)."""
    return Path(home) / "data" / "datasets"


def active_file(home: Path) -> Path:
    """The file naming the home's active dataset (`<home>/data/active_dataset`)."""
    return Path(home) / "data" / ACTIVE_FILE


def set_active(home: Path, name: str) -> Path:
    """Make `name` the home's active dataset (after checking that it exists and reads); the file
    is written atomically. Returns the file."""
    from core.files import atomic_write

    find(name, [user_dir(home)])  # DatasetError listing the known ones
    path = active_file(home)
    atomic_write(path, lambda tmp: tmp.write_text(name + "\n", encoding="utf-8"))
    return path


def active_name(home: Path) -> str:
    """The home's active dataset: the name in `active_file(home)` when it names a known dataset,
    else DEFAULT_DATASET."""
    try:
        name = active_file(home).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # none chosen yet (or unreadable): the default
        return DEFAULT_DATASET
    return name if name and name in available([user_dir(home)]) else DEFAULT_DATASET
