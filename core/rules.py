"""The model's input contract: one rule table, built from the dataset definition.

`RuleTable.from_spec(spec)` turns each feature of the definition into a `Rule` (its domain: a
range, whole numbers or not, or a list of allowed values; whether it may be missing). The same
table validates one request (`validate_row`, used by the Serve page and `predict`), and every
batch: an uploaded file, the production split and the inference log (`frame_problems`, which
runs the table as a pandera `DataFrameSchema`). So a value refused in a single request is
refused in a batch too. The table also travels with every logged model (`input_rules.json`
and a copy of this file in the model's `code/`, see `core/modeling/model_io.py`), so the model
server refuses the same rows whoever sends them: this module imports nothing else from the
workbench when it is loaded there.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd

try:
    from core.errors import WorkbenchError
except ImportError:  # inside a served model, where the workbench is not importable
    WorkbenchError = ValueError  # type: ignore[misc,assignment]


NUMBER, CATEGORY = "number", "category"  # a rule's kind
UNSEEN_HINT = "to score it anyway as an unknown category, allow unseen categories (`allow_unseen`)"


class InvalidInputError(WorkbenchError):
    """A request (or a batch) does not satisfy the model's input contract."""


@dataclass(frozen=True)
class Rule:
    """Domain of one feature: bounds (inclusive, None = open), whole numbers, allowed values."""

    name: str
    label: str = ""
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[Any, ...] = ()
    nullable: bool = False
    unit: str = ""
    # "number" (numeric and binary features: doubles) or "category" (text values, `values` the
    # categories seen in training; a value outside them is "unseen")
    kind: str = NUMBER
    # a binary feature's words, as (word, value) pairs from its definition's `value_labels` (e.g.
    # ("no", 0.0), ("yes", 1.0)): one request may give the word, in any case, for the value. Not
    # part of the model's contract (`to_dict` leaves them out), so not compared either
    words: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    @classmethod
    def from_feature(cls, feature: Any) -> "Rule":
        """The rule of a `core.dataset.Feature` (categorical features: text; the others: numbers)."""
        if feature.kind == "categorical":
            return cls(name=feature.name, label=feature.label or feature.name, kind=CATEGORY,
                       values=tuple(str(v) for v in feature.values), nullable=bool(feature.nullable))
        values = tuple(float(v) for v in feature.values)
        return cls(name=feature.name, label=feature.label or feature.name, integer=bool(feature.integer),
                   minimum=feature.minimum, maximum=feature.maximum,
                   values=values, nullable=bool(feature.nullable),
                   unit=feature.unit, words=_words(feature, values) if feature.kind == "binary" else ())

    @property
    def categorical(self) -> bool:
        return self.kind == CATEGORY

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready values, without `words`: they are one request's convenience
        (`RuleTable.validate_row` turns a word into its value before anything is sent), not the
        model's contract, and the table written beside a model stays readable by earlier loaders."""
        d = asdict(self)
        del d["words"]
        return d

    def describe(self) -> str:
        """The domain in words, e.g. 'a whole number from 0 to 11' or 'one of 0, 1'."""
        if self.categorical:
            shown = ", ".join(repr(v) for v in self.values[:5])
            more = f", … ({len(self.values)} in all)" if len(self.values) > 5 else ""
            return f"one of the categories seen in training ({shown}{more})"
        if self.values:
            return "one of " + ", ".join(f"{v:g}" for v in self.values)
        kind = "a whole number" if self.integer else "a finite number"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{kind} of at least {self.minimum:g}"
        if self.maximum is not None:
            return f"{kind} of at most {self.maximum:g}"
        return kind

    # ---- one value -------------------------------------------------------
    def problem(self, value: Any, allow_unseen: bool = False) -> str | None:
        """Why `value` is not valid for this feature, or None. A category never seen in training
        is a problem unless `allow_unseen` (the model then scores it as an unknown category)."""
        if value is None:
            return None if self.nullable else f"{self.name} is missing (null); it must be {self.describe()}"
        if self.categorical:
            if isinstance(value, float) and math.isnan(value):
                return None if self.nullable else f"{self.name} is missing (NaN); it must be {self.describe()}"
            value = as_category(value)
            if not isinstance(value, str):
                return f"{self.name} must be text (a category), got {_short(value)} ({type(value).__name__})"
            if value not in self._category_set and not allow_unseen:
                return (f"{self.name} is {_short(value)}, a category never seen in training ({UNSEEN_HINT}; known: "
                        f"{', '.join(repr(v) for v in self.values[:8])}{', …' if len(self.values) > 8 else ''})")
            return None
        if isinstance(value, str) and self.words:
            if self.word_value(value) is not None:
                return None
            named = " or ".join(repr(w) for w, _ in self.words)
            return (f"{self.name} must be {self.describe()} or the word {named} (any case), "
                    f"got {_short(value)} ({type(value).__name__})")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return f"{self.name} must be {self.describe()}, got {_short(value)} ({type(value).__name__})"
        try:
            x = float(value)
        except OverflowError:
            return f"{self.name} must be {self.describe()}, got a number too large to represent"
        if math.isnan(x):
            return None if self.nullable else f"{self.name} is NaN; it must be {self.describe()}"
        if not math.isfinite(x):
            return f"{self.name} must be {self.describe()}, got {x}"
        return self._domain_problem(x)

    def _domain_problem(self, x: float) -> str | None:
        if self.values:
            return None if x in self.values else f"{self.name} must be {self.describe()}, got {x:g}"
        if self.integer and not x.is_integer():
            return f"{self.name} must be {self.describe()}, got {x:g} (the model would silently truncate it)"
        if (self.minimum is not None and x < self.minimum) or (self.maximum is not None and x > self.maximum):
            return f"{self.name} must be {self.describe()}, got {x:g}"
        return None

    def word_value(self, text: str) -> float | None:
        """The value one of `words` names (compared without case and surrounding spaces), or None."""
        key = text.strip().casefold()
        return next((value for word, value in self.words if word.strip().casefold() == key), None)

    @cached_property
    def _category_set(self) -> frozenset:
        return frozenset(self.values)

    @cached_property
    def _category_set(self) -> frozenset:
        """The categories as a set (a request's few values looked up one by one)."""
        return frozenset(str(v) for v in self.values)

    @cached_property
    def _category_index(self) -> pd.Index:
        """The categories as a pandas Index, built once per rule: its hash table is made on first
        use and kept, so looking up a request's few values costs the same against 10 categories
        or 110,000 (`Series.isin` built one of every category on each call: about 250 ms a row)."""
        return pd.Index(list(dict.fromkeys(self.values)), dtype=object)

    # ---- many text values (categorical features) ---------------------------
    def category_problems(self, column: pd.Series, allow_unseen: bool = False, at_rows: bool = False) -> list[str]:
        """What one column of a categorical feature breaks: missing values (unless nullable),
        values that are not text, and (unless `allow_unseen`) categories never seen in training,
        named with their row counts (and, with `at_rows`, the first rows' positions)."""
        at = _at if at_rows else _no_rows
        problems: list[str] = []
        missing = column.isna().to_numpy()
        if not self.nullable and missing.any():
            problems.append(f"{self.name}: empty values in {_rows(int(missing.sum()))}{at(missing)}")
        present = column[~missing]
        if present.empty:
            return problems
        if present.dtype == object and pd.api.types.infer_dtype(present, skipna=True) == "string":
            is_text = np.ones(len(present), dtype=bool)  # all text, found in C (a batch's usual case)
        elif present.dtype == object:
            is_text = present.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        else:
            is_text = np.full(len(present), pd.api.types.is_string_dtype(present.dtype))
        if not is_text.all():
            problems.append(f"{self.name}: values that are not text in {_rows(int((~is_text).sum()))} "
                            f"(a categorical feature holds text categories){at(_spread(~missing, ~is_text))}")
        if not allow_unseen:
            new = is_text & (self._category_index.get_indexer(present.astype(object)) < 0)
            unseen = present[new]
            if len(unseen):
                counts = unseen.value_counts()
                named = ", ".join(f"{_short(v)} ({n:,})" for v, n in counts.head(5).items())
                more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
                problems.append(f"{self.name}: categories never seen in training in {_rows(len(unseen))}: "
                                f"{named}{more} ({UNSEEN_HINT}){at(_spread(~missing, new))}")
        return problems

    # ---- many values -----------------------------------------------------
    def accepts(self, values: np.ndarray) -> bool:
        """True when every value of one column of doubles keeps this rule (null where allowed,
        finite, in the domain): what `in_domain` and `array_problems` check, as one answer, in a
        few whole-column operations (it runs on every served request: a single row costs tens
        of microseconds, bench/rules.py)."""
        v = values
        if self.nullable:
            v = v[~np.isnan(v)]
        if v.size == 0:
            return True
        if not np.isfinite(v).all():
            return False
        if self.values:  # np.isin sorts: fast on long columns, slow on a request's few rows
            allowed = np.asarray(self.values)
            return bool(np.isin(v, allowed).all() if v.size > 64 else (v[:, None] == allowed).any(axis=1).all())
        if self.integer and not (v == np.round(v)).all():
            return False
        return not ((self.minimum is not None and v.min() < self.minimum)
                    or (self.maximum is not None and v.max() > self.maximum))

    def in_domain(self, values: np.ndarray) -> np.ndarray:
        """Element-wise on doubles: True where a value lies in the domain; non-finite values pass
        here (the null and finiteness checks report them)."""
        v = np.asarray(values, dtype="float64")
        outside = ~np.isfinite(v)
        if self.values:
            return np.isin(v, self.values) | outside
        ok = np.ones(v.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.integer:
                ok &= v == np.round(v)
            if self.minimum is not None:
                ok &= v >= self.minimum
            if self.maximum is not None:
                ok &= v <= self.maximum
        return ok | outside


# the position of each check in a column's list (pandera reports failures by `check_number`)
_FINITE, _DOMAIN = 0, 1


@dataclass(frozen=True)
class RuleTable:
    """The rules of every feature, in the model's column order."""

    rules: tuple[Rule, ...]

    @classmethod
    def from_spec(cls, spec: Any) -> "RuleTable":
        """The table of a `core.dataset.DatasetSpec`."""
        return cls(tuple(Rule.from_feature(f) for f in spec.features_spec))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)

    @property
    def by_name(self) -> dict[str, Rule]:
        return {r.name: r for r in self.rules}

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RuleTable":
        """The table written by `to_dict` (e.g. a served model's `input_rules.json`)."""
        return cls(tuple(Rule(**{**r, "values": tuple(r.get("values", ()))}) for r in d["rules"]))

    @property
    def has_categories(self) -> bool:
        """True when some feature is categorical (then rows are frames, not float matrices)."""
        return any(r.categorical for r in self.rules)

    @property
    def numeric_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.categorical)

    def all_valid(self, x: np.ndarray) -> bool:
        """True when every row of a float matrix (columns in the table's order) keeps every rule:
        the same rules as `array_problems`, without building any message (a served model's and a
        valid batch's quick path; `array_problems` then says what is wrong)."""
        if self.has_categories or x.ndim != 2 or x.shape[1] != len(self.rules):
            return False
        return all(rule.accepts(x[:, j]) for j, rule in enumerate(self.rules))

    def columns_valid(self, frame: pd.DataFrame, allow_unseen: bool = False) -> bool:
        """`all_valid` column by column on a frame (doubles for numbers, text for categories; no
        copy into one matrix: a batch of 1,000,000 rows needs no extra 48 MB)."""
        if any(r.name not in frame.columns for r in self.rules):
            return False
        return not self.plain_problems(frame, allow_unseen)  # words only what a column breaks

    def few_rows_valid(self, frame: pd.DataFrame) -> bool:
        """True when every row of a request's few rows (a frame of mixed columns: numbers as int
        or float columns, categories as text) keeps every rule, unseen categories refused: the
        served model's quick path for a categorical model, value by value in Python (pandas'
        per-column calls cost about 0.3 ms a categorical column on a single row). False means
        "not shown valid here" (an object column of numbers, say): `plain_problems` then decides
        and words what is wrong."""
        for rule in self.rules:
            values = frame[rule.name].to_numpy()
            if not rule.categorical:
                if values.dtype.kind not in "fiub" or not rule.accepts(values.astype(np.float64, copy=False)):
                    return False
                continue
            known = rule._category_set
            for v in values:
                if isinstance(v, str):
                    if v not in known:
                        return False
                elif not (rule.nullable and (v is None or v is pd.NA or (isinstance(v, float) and v != v))):
                    return False
        return True

    def array_problems(self, x: np.ndarray, at_rows: bool = False) -> list[str]:
        """Every rule that a float matrix (columns in the table's order) breaks, one line per
        column and kind with row counts: the same rules as `frame_problems`, on numpy alone
        (a served model checks each request with it in microseconds). With `at_rows`, each line
        also names the first rows (positions counted from 0), as the served model's refusal does."""
        at = _at if at_rows else _no_rows
        problems: list[str] = []
        for j, rule in enumerate(self.rules):
            v = x[:, j]
            null = np.zeros(v.shape, dtype=bool) if rule.nullable else np.isnan(v)
            if null.any():
                problems.append(f"{rule.name}: empty (NaN) values in {_rows(int(null.sum()))}{at(null)}")
            inf = np.isinf(v)
            if inf.any():
                problems.append(f"{rule.name}: infinite values in {_rows(int(inf.sum()))}{at(inf)}")
            out = ~rule.in_domain(v)
            if out.any():
                problems.append(f"{rule.name}: out-of-domain values in {_rows(int(out.sum()))} "
                                f"({rule.name} must be {rule.describe()}){at(out)}")
        return problems

    def plain_problems(self, frame: pd.DataFrame, allow_unseen: bool = False, at_rows: bool = False) -> list[str]:
        """Every rule a frame of mixed columns (doubles for numbers, text for categories) breaks,
        on numpy and pandas alone: what a served model with categorical features checks (it has
        no pandera)."""
        problems: list[str] = []
        for rule in self.rules:
            if rule.categorical:
                problems += rule.category_problems(frame[rule.name], allow_unseen, at_rows)
                continue
            try:
                column = frame[rule.name].to_numpy(dtype="float64", copy=False)
            except (TypeError, ValueError):
                problems.append(f"{rule.name}: values that are not numbers (it must be {rule.describe()})")
                continue
            if not rule.accepts(column):
                problems += RuleTable((rule,)).array_problems(column[:, None], at_rows)
        return problems

    # ---- one request -----------------------------------------------------
    def validate_row(self, row: Mapping[str, Any], what: str = "input",
                     allow_unseen: bool = False) -> dict[str, Any]:
        """One request as `{feature: float}` in the model's column order, or `InvalidInputError`.

        Every problem is listed (missing or extra columns, nulls, NaN, wrong types, fractional
        whole numbers, values outside the domain). Numeric strings are refused rather than
        coerced, so that what is logged is exactly what was sent.
        """
        problems: list[str] = []
        missing = [n for n in self.names if n not in row]
        if missing:
            problems.append(f"missing column(s): {', '.join(missing)}")
        extra = sorted(str(k) for k in row if k not in self.names)
        if extra:
            problems.append(f"unknown column(s): {', '.join(extra)} (expected {', '.join(self.names)})")
        for rule in self.rules:
            if rule.name in row:
                found = rule.problem(row[rule.name], allow_unseen=allow_unseen)
                if found:
                    problems.append(found)
        if problems:
            raise InvalidInputError(f"Invalid {what}: " + "; ".join(problems) + ".")
        return {r.name: _clean(r, row[r.name]) for r in self.rules}

    # ---- a batch -----------------------------------------------------------
    @cached_property
    def schema(self) -> Any:
        """The table as a pandera `DataFrameSchema` on a frame of doubles (imported lazily)."""
        import pandera.pandas as pa

        columns = {}
        for rule in self.numeric_rules:
            finite = pa.Check(lambda s: np.isfinite(s), ignore_na=True, name="finite", error="must be finite")
            domain = pa.Check(lambda s, r=rule: pd.Series(r.in_domain(s.to_numpy()), index=s.index),
                              ignore_na=True, name="domain", error=rule.describe())
            checks = [None, None]
            checks[_FINITE], checks[_DOMAIN] = finite, domain
            columns[rule.name] = pa.Column("float64", checks=checks, nullable=rule.nullable,
                                           required=True, coerce=False)
        return pa.DataFrameSchema(columns, strict=False, ordered=False)

    def frame_problems(self, frame: pd.DataFrame, not_numeric: Mapping[str, int] | None = None,
                       allow_unseen: bool = False) -> list[str]:
        """Every rule a frame of doubles breaks, one line per column and kind, with row counts.

        A frame that keeps every rule is recognised by `all_valid`; one that does not is run
        through the pandera schema, which names each failure.

        `not_numeric` gives, per column, how many of its NaN values were text that is not a
        number (reported by the reader): they are not counted again as empty values.
        """
        present = [n for n in self.names if n in frame.columns]
        if not present or len(frame) == 0:
            return []
        if len(present) == len(self.rules) and self.columns_valid(frame, allow_unseen):
            # the same rules, column by column: a valid batch never pays pandera's import (about
            # 1.1 s here) nor its run (156 ms vs 18 ms on 1,000,000 rows, bench/rules.py)
            return []
        by_name = self.by_name
        categorical = {n: by_name[n].category_problems(frame[n], allow_unseen)
                       for n in present if by_name[n].categorical}
        numeric = [n for n in present if not by_name[n].categorical]
        cases = pd.DataFrame({"column": [], "check": [], "check_number": []})
        if numeric:
            from pandera.errors import SchemaErrors

            try:
                self.schema.validate(frame.loc[:, numeric], lazy=True)
            except SchemaErrors as err:
                cases = err.failure_cases
        problems: list[str] = []
        not_numeric = dict(not_numeric or {})
        for rule in self.rules:
            if rule.categorical:
                problems += categorical.get(rule.name, [])
                continue
            mine = cases[cases["column"] == rule.name]
            if mine.empty:
                continue
            checks = mine["check"].astype(str)
            number = pd.to_numeric(mine["check_number"], errors="coerce")
            n_null = int((checks == "not_nullable").sum()) - not_numeric.get(rule.name, 0)
            if n_null > 0:
                problems.append(f"{rule.name}: empty (NaN) values in {_rows(n_null)}")
            n_inf = int((number == _FINITE).sum())
            if n_inf:
                problems.append(f"{rule.name}: infinite values in {_rows(n_inf)}")
            n_out = int((number == _DOMAIN).sum())
            if n_out:
                problems.append(f"{rule.name}: out-of-domain values in {_rows(n_out)} "
                                f"({rule.name} must be {rule.describe()})")
            if checks.str.contains("dtype").any():
                problems.append(f"{rule.name}: the column is not numeric")
        return problems


def as_category(value: Any) -> Any:
    """A request's value for a categorical feature as the category text the data holds: true /
    false as "True" / "False", a whole number as its digits (an area code sent as 415 is the
    category "415"); text and anything else unchanged."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return value


def _clean(rule: Rule, value: Any) -> Any:
    """A valid value as the model takes it: text for a category (NaN when missing), else a double
    (a binary feature's word as the value it names)."""
    if rule.categorical:
        return float("nan") if value is None or (isinstance(value, float) and math.isnan(value)) \
            else as_category(value)
    if isinstance(value, str):
        return rule.word_value(value)
    return float("nan") if value is None else float(value)


def _words(feature: Any, values: tuple[float, ...]) -> tuple[tuple[str, float], ...]:
    """A binary feature's `value_labels` as (word, value) pairs, for labels of its allowed values
    that are words (a label that reads as a number stays refused: numeric text is never coerced)."""
    pairs = []
    for key, word in dict(feature.value_labels).items():
        value, text = _number(key), str(word).strip()
        if value is not None and value in values and text and _number(text) is None:
            pairs.append((text, value))
    return tuple(pairs)


def _number(text: Any) -> float | None:
    try:
        return float(str(text))
    except ValueError:
        return None


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


SHOWN_ROWS = 5  # a message names at most this many rows (bounded, whatever the request's size)


def _no_rows(mask: Any) -> str:
    """`_at`'s stand-in when a message names no rows (batches: pandera's lines name none)."""
    return ""


def _at(mask: Any) -> str:
    """', at row 3' / ', at rows 0, 4, 9 and 12 more' (positions counted from 0) of a boolean mask."""
    where = np.flatnonzero(np.asarray(mask, dtype=bool))
    if where.size == 0:
        return ""
    shown = ", ".join(str(int(i)) for i in where[:SHOWN_ROWS])
    more = f" and {where.size - SHOWN_ROWS:,} more" if where.size > SHOWN_ROWS else ""
    return f", at row{'s' if where.size > 1 else ''} {shown}{more} (counting from 0)"


def _spread(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """A mask over all rows from a mask over the rows where `outer` holds."""
    full = np.zeros(len(outer), dtype=bool)
    full[np.flatnonzero(outer)] = inner
    return full


def _short(value: Any, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters (a message never quotes a long input)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
