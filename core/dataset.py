"""The dataset definition (`DatasetSpec`): the only place that knows a dataset's columns.

Each dataset is described by one declarative file, `datasets/NAME/dataset.toml` (read by
`core/catalog.py`). It states:

- `name`, `title`, `description`; the nouns for one row and for many (`row_noun = "shot"`);
- `[target]`: the column, its `positive` and `negative` values and their human names
  (`positive_name = "made"`, `negative_name = "missed"`);
- `[[features]]`: each model input, in the model's column order, with its `kind`
  (`numeric`, `categorical` or `binary`), `label`, `unit`, `help`, and its domain: a range
  (`min`, `max`, `integer = true` for whole numbers) or the allowed `values` (with optional
  `value_labels` for display);
- `[[sources]]`: the raw files (`file`, public `url`, `sha256`), and `[dev]` / `[prod]`: which
  source each set comes from and the row filter (`where`, `core.row_filter`) that forms it;
- optional `[feature_sets]`: named lists of features (`default = [...]`, `extended = [...]`); the
  model trains on one set (`train --feature-set NAME`), the default set when none is named, all
  `[[features]]` when the definition has no sets. `spec.with_feature_set(name)` is the definition
  seen through one set; preparation keeps every feature of every set (`spec.model_columns`).
- optional: `display` (columns kept for display only), `partition_by` (Spark output),
  `time_column` (when a row happened, e.g. a date: `drift --batch FILE --chunk-period 1d` splits
  a batch by it; not a model input),
  `experiment` and `model_name` (MLflow), `view` (a dataset-specific Python module beside the
  definition, e.g. Kobe's court chart; pages use it only when present).

Code never spells a column name: it asks the definition (`spec.features`, `spec.target`,
`spec.proba_column`, ...). The rules that validate inputs are built from it in
`core/rules.py`.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from core.errors import WorkbenchError

DEFINITION_FILE = "dataset.toml"
KINDS = ("numeric", "categorical", "binary")
DEFAULT_FEATURE_SET = "default"


class DatasetError(WorkbenchError):
    """A dataset definition is missing or malformed (the message names the field)."""


@dataclass(frozen=True)
class Feature:
    """One model input: its kind, how to show it, and its domain (a range or allowed values)."""

    name: str
    kind: str
    label: str = ""
    unit: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    values: tuple[Any, ...] = ()
    value_labels: Mapping[str, str] = field(default_factory=dict)
    nullable: bool = False
    step: float | None = None

    @property
    def discrete(self) -> bool:
        """True when the domain is a list of allowed values (binary, categorical, or listed numbers)."""
        return bool(self.values)

    @property
    def numeric(self) -> bool:
        """True when the values are numbers (numeric and binary features)."""
        return self.kind != "categorical"

    @property
    def title(self) -> str:
        """The label with its unit, e.g. 'Shot distance (ft)'."""
        text = self.label or self.name
        return f"{text} ({self.unit})" if self.unit else text

    def value_label(self, value: Any) -> str:
        """How one allowed value is shown (its label, else the value itself)."""
        key = _value_key(value)
        return self.value_labels.get(key, key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = list(self.values)
        d["value_labels"] = dict(self.value_labels)
        return d


TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Target:
    """The label column and its task kind (`task`, `core.modeling.tasks`):

    - binary: its `positive` and `negative` values and their human names;
    - multiclass: its `classes` as the data holds them, in the model's order (class i is the
      model's label i), and their human names (`class_labels`, same order; the value as text
      when not given);
    - regression: a number, with an optional `unit` for display.
    """

    column: str
    positive: Any = 1
    negative: Any = 0
    positive_name: str = "positive"
    negative_name: str = "negative"
    task: str = "binary"
    classes: tuple[Any, ...] = ()
    class_labels: tuple[str, ...] = ()
    unit: str = ""

    # ---- what the task kind decides -----------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """The human names of the classes in the model's label order (binary: negative, positive;
        regression: none)."""
        if self.task == "binary":
            return (str(self.negative_name), str(self.positive_name))
        if self.task == "multiclass":
            return tuple(self.class_labels) or tuple(_value_key(v) for v in self.classes)
        return ()

    @property
    def values(self) -> tuple[Any, ...]:
        """The class values as the data holds them, in the model's label order (regression: none)."""
        if self.task == "binary":
            return (self.negative, self.positive)
        return tuple(self.classes) if self.task == "multiclass" else ()

    def encode(self, values: Any) -> tuple[Any, int]:
        """The label as the model's doubles, NaN where it is missing (an unlabelled row); and how
        many values are not a label of this task. Binary: 1.0 for the positive value, 0.0 for the
        negative one; multiclass: the class's position in `classes` (0.0, 1.0, ...); regression:
        the number itself (a value that does not read as a finite number counts as bad).

        Numbers compare as numbers (so "1", 1 and 1.0 are the same label), text as stripped text.
        """
        import numpy as np
        import pandas as pd

        s = pd.Series(values).reset_index(drop=True)
        if self.task == "regression":
            return _encode_number(s)
        if self.task == "multiclass":
            return _encode_classes(s, self.classes)
        labels = (self.positive, self.negative)
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            # numbers: compared as numbers, no text conversion (1,000,000 labels in a few ms)
            v = s.to_numpy(dtype="float64", na_value=np.nan)
            pos, neg = v == float(self.positive), v == float(self.negative)
            out = np.where(pos, 1.0, np.where(neg, 0.0, np.nan))
            return out, int((~np.isnan(v) & ~pos & ~neg).sum())
        text = s.astype("string").str.strip()
        missing = (s.isna() | (text == "")).to_numpy(dtype=bool)
        pos, neg = _same(s, text, self.positive), _same(s, text, self.negative)
        out = np.where(pos, 1.0, np.where(neg, 0.0, np.nan))
        bad = int((~missing & ~pos & ~neg).sum())
        return out, bad

    def value_of(self, label: int) -> Any:
        """The class as the data holds it for one model label (binary 1: `positive`, 0: `negative`;
        multiclass i: `classes[i]`)."""
        if self.task == "multiclass":
            return self.classes[int(label)]
        return self.positive if int(label) == 1 else self.negative

    def name_of(self, label: int) -> str:
        """The human name of the class of one model label (binary 1: `positive_name`, 0:
        `negative_name`; multiclass i: `names[i]`)."""
        if self.task == "multiclass":
            return self.names[int(label)]
        return self.positive_name if int(label) == 1 else self.negative_name

    def decode(self, labels: Any) -> Any:
        """The model's labels (1.0 positive, 0.0 negative, NaN unlabelled) as the values the data
        holds: `encode`'s inverse, a pandas Series. Whole-number classes give int64 (float64 when
        a label is missing), other classes objects (None when missing)."""
        import numpy as np
        import pandas as pd

        y = np.asarray(labels, dtype="float64")
        if self.task == "regression":
            return pd.Series(y)
        if self.task == "multiclass":
            known = ~np.isnan(y)
            out = np.full(len(y), None, dtype=object)
            out[known] = [self.classes[int(i)] for i in y[known]]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.classes)
            if numbers and known.all():
                whole = all(float(v).is_integer() for v in self.classes)
                return pd.Series(out.astype("int64" if whole else "float64"))
            return pd.Series(out, dtype=object)
        pos, neg = y == 1.0, y == 0.0
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.positive, self.negative))
        if numbers:
            out = np.where(pos, float(self.positive), np.where(neg, float(self.negative), np.nan))
            whole = all(float(v).is_integer() for v in (self.positive, self.negative))
            return pd.Series(out.astype("int64") if whole and (pos | neg).all() else out)
        out = np.full(len(y), None, dtype=object)
        out[pos], out[neg] = self.positive, self.negative
        return pd.Series(out, dtype=object)

    def to_dict(self) -> dict[str, Any]:
        """The target as plain data (TOML-ready): a binary target as it always was, plus its task."""
        d = asdict(self)
        d["classes"], d["class_labels"] = list(self.classes), list(self.class_labels)
        if self.task != "multiclass":
            d.pop("classes"), d.pop("class_labels")
        if not self.unit:
            d.pop("unit")
        return d


def _encode_number(s: Any) -> tuple[Any, int]:
    """A regression target as doubles (NaN where missing) and how many values are not finite
    numbers (text that is no number, +-inf, booleans)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(s.dtype):
        return np.full(len(s), np.nan), int(s.notna().sum())
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(v)
    else:
        text = s.astype("string").str.strip()
        missing = (s.isna() | (text == "")).to_numpy(dtype=bool)
        v = pd.to_numeric(text.mask(text == ""), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(v)
    return np.where(finite, v, np.nan), int((~finite & ~missing).sum())


def _encode_classes(s: Any, classes: tuple[Any, ...]) -> tuple[Any, int]:
    """A multiclass target as the class positions (doubles; NaN where missing) and how many
    values are none of the classes."""
    import numpy as np

    text = s.astype("string").str.strip()
    missing = (s.isna() | (text == "")).to_numpy(dtype=bool)
    out = np.full(len(s), np.nan)
    for i, value in enumerate(classes):
        out[_same(s, text, value) & np.isnan(out)] = float(i)
    return out, int((~missing & np.isnan(out)).sum())


def _same(s: Any, text: Any, value: Any) -> Any:
    """Where the values equal one label value (as numbers when it is a number): a bool array."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return number == float(value)
    return (text == str(value).strip()).fillna(False).to_numpy(dtype=bool)


@dataclass(frozen=True)
class Source:
    """A raw file: its name, public address and SHA-256 sum (empty url: no download)."""

    file: str
    url: str = ""
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Subset:
    """How the dev or the production set is formed: a source file and an optional row filter."""

    source: str
    where: str = ""
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset definition, loaded from `datasets/NAME/dataset.toml` (see the module docstring)."""

    name: str
    title: str
    target: Target
    features_spec: tuple[Feature, ...]
    sources: tuple[Source, ...]
    dev: Subset
    prod: Subset | None = None
    description: str = ""
    row_noun: str = "row"
    rows_noun: str = "rows"
    display: tuple[str, ...] = ()
    partition_by: str | None = None
    time_column: str | None = None  # when each row happened (batches chunked by period); not a feature
    experiment: str = ""
    model_name: str = ""
    view: str | None = None
    example: Mapping[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    # every feature the definition lists (features_spec is the active set's share of them)
    all_features_spec: tuple[Feature, ...] = ()
    feature_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    feature_set: str = DEFAULT_FEATURE_SET

    # ---- feature sets ---------------------------------------------------
    @property
    def feature_set_names(self) -> tuple[str, ...]:
        """The named feature sets (always at least "default")."""
        return tuple(dict.fromkeys([DEFAULT_FEATURE_SET, *self.feature_sets]))

    def with_feature_set(self, name: str | None) -> "DatasetSpec":
        """This definition with `name`'s features as the model inputs (None: the default set)."""
        name = name or DEFAULT_FEATURE_SET
        if name == self.feature_set:
            return self
        if name not in self.feature_set_names:
            raise DatasetError(f"Dataset {self.name} has no feature set {name!r}; its sets: "
                               f"{', '.join(self.feature_set_names)}.")
        every = {f.name: f for f in (self.all_features_spec or self.features_spec)}
        names = self.feature_sets.get(name) or tuple(every)
        return dataclasses.replace(self, features_spec=tuple(every[n] for n in names), feature_set=name)

    def feature_set_for(self, columns: Any) -> str | None:
        """The feature set whose features are exactly `columns` (any order), or None."""
        given = set(columns)
        for name in self.feature_set_names:
            if set(self.with_feature_set(name).features) == given:
                return name
        return None

    @property
    def model_columns(self) -> tuple[str, ...]:
        """Every feature of every set, in definition order (what preparation keeps)."""
        return tuple(f.name for f in (self.all_features_spec or self.features_spec))

    # ---- what code asks -------------------------------------------------
    @cached_property
    def rules(self) -> Any:
        """The input rule table built from this definition (`core.rules.RuleTable`)."""
        from core.rules import RuleTable

        return RuleTable.from_spec(self)

    @property
    def features(self) -> tuple[str, ...]:
        """The model's input columns, in order."""
        return tuple(f.name for f in self.features_spec)

    @property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features_spec}

    def feature(self, name: str) -> Feature:
        """The definition of one feature (KeyError when it is not one)."""
        return self.by_name[name]

    @property
    def target_column(self) -> str:
        return self.target.column

    @property
    def positive_name(self) -> str:
        return self.target.positive_name

    @property
    def proba_label(self) -> str:
        """How the model's output is named in texts and charts, e.g. 'P(made)'."""
        return f"P({self.target.positive_name})"

    @property
    def proba_column(self) -> str:
        """Column of the positive class's probability in scored outputs, e.g. 'proba_made'."""
        return f"proba_{_slug(self.target.positive_name)}"

    @property
    def pred_column(self) -> str:
        """Column of the predicted class (1 = positive) in scored outputs, e.g. 'pred_made'."""
        return f"pred_{_slug(self.target.positive_name)}"

    @property
    def predicted_class_column(self) -> str:
        """Column of the predicted class as the data holds it (the target's own values) in scored
        outputs, e.g. 'predicted_shot_made_flag'; `pred_column` is the same class as 1 / 0."""
        return f"predicted_{self.target.column}"

    @property
    def actual_column(self) -> str:
        """Column of the actual class as the model's label (1 = positive) beside the labelled
        scored rows (`core.scoring.local.with_outcome`), e.g. 'actual_made'."""
        return f"actual_{_slug(self.target.positive_name)}"

    @property
    def class_names(self) -> dict[int, str]:
        """{model label: class name}, for charts and messages (binary: {1: positive name, 0:
        negative name}; multiclass: {0: first class, ...}; regression: {})."""
        if self.task == "binary":
            return {1: self.target.positive_name, 0: self.target.negative_name}
        return dict(enumerate(self.target.names))

    # ---- the task kind --------------------------------------------------
    @property
    def task(self) -> str:
        """The target's task kind: "binary", "multiclass" or "regression"."""
        return self.target.task

    @property
    def proba_columns(self) -> dict[str, str]:
        """{class name: column of its probability} in scored outputs (binary: the positive class
        only, `proba_column`; multiclass: every class, e.g. 'proba_adelie'; regression: none)."""
        if self.task == "binary":
            return {self.target.positive_name: self.proba_column}
        columns: dict[str, str] = {}
        for name in self.target.names:
            column = f"proba_{_slug(name)}"
            while column in columns.values():  # two names with one slug ("a b", "a-b")
                column += "_"
            columns[name] = column
        return columns

    @property
    def prediction_columns(self) -> tuple[str, str, str]:
        """A regression's scored columns: the prediction and its interval's bounds."""
        return ("prediction", "prediction_lower", "prediction_upper")

    @property
    def categorical_features(self) -> tuple[str, ...]:
        """The features whose values are text categories."""
        return tuple(f.name for f in self.features_spec if f.kind == "categorical")

    @property
    def discrete_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features_spec if f.discrete)

    @property
    def dev_title(self) -> str:
        return self.dev.title or "dev"

    @property
    def prod_title(self) -> str:
        return (self.prod.title if self.prod else "") or "production"

    def source(self, file: str) -> Source:
        for s in self.sources:
            if s.file == file:
                return s
        raise DatasetError(f"Dataset {self.name}: no source named {file!r} (sources: "
                           f"{', '.join(s.file for s in self.sources)}).")

    def example_row(self) -> dict[str, Any]:
        """A valid input row for help texts: the definition's `example`, else the middle of each
        range and the first allowed value."""
        row: dict[str, Any] = {}
        for f in self.features_spec:
            if f.name in self.example:
                row[f.name] = self.example[f.name]
            elif f.values:
                row[f.name] = f.values[0]
            else:
                lo = f.minimum if f.minimum is not None else 0.0
                hi = f.maximum if f.maximum is not None else lo + 1.0
                mid = (lo + hi) / 2
                row[f.name] = int(round(mid)) if f.integer else round(mid, 4)
        return row

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (JSON-safe)."""
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "row_noun": self.row_noun, "rows_noun": self.rows_noun,
            "target": self.target.to_dict(), "features": [f.to_dict() for f in self.features_spec],
            "sources": [s.to_dict() for s in self.sources], "dev": self.dev.to_dict(),
            "prod": self.prod.to_dict() if self.prod else None, "display": list(self.display),
            "partition_by": self.partition_by, "time_column": self.time_column, "experiment": self.experiment, "model_name": self.model_name,
            "view": self.view, "feature_set": self.feature_set,
            "feature_sets": {k: list(v) for k, v in self.feature_sets.items()},
        }


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(text)).strip("_").lower() or "positive"


def _value_key(value: Any) -> str:
    """An allowed value as the text key of `value_labels` (1.0 and 1 both give '1')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


