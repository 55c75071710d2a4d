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
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd

try:
    from core.errors import WorkbenchError
except ImportError:  # inside a served model, where the workbench is not importable
    WorkbenchError = ValueError  # type: ignore[misc,assignment]


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
    values: tuple[float, ...] = ()
    nullable: bool = False
    unit: str = ""

    @classmethod
    def from_feature(cls, feature: Any) -> "Rule":
        """The rule of a `core.dataset.Feature` (numeric and binary features: numbers)."""
        return cls(name=feature.name, label=feature.label or feature.name, integer=bool(feature.integer),
                   minimum=feature.minimum, maximum=feature.maximum,
                   values=tuple(float(v) for v in feature.values), nullable=bool(feature.nullable),
                   unit=feature.unit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The domain in words, e.g. 'a whole number from 0 to 11' or 'one of 0, 1'."""
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
    def problem(self, value: Any) -> str | None:
        """Why `value` is not valid for this feature, or None."""
        if value is None:
            return None if self.nullable else f"{self.name} is missing (null); it must be {self.describe()}"
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return f"{self.name} must be {self.describe()}, got {value!r} ({type(value).__name__})"
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

    def all_valid(self, x: np.ndarray) -> bool:
        """True when every row of a float matrix (columns in the table's order) keeps every rule:
        the same rules as `array_problems`, without building any message (a served model's and a
        valid batch's quick path; `array_problems` then says what is wrong)."""
        if x.ndim != 2 or x.shape[1] != len(self.rules):
            return False
        return all(rule.accepts(x[:, j]) for j, rule in enumerate(self.rules))

    def columns_valid(self, frame: pd.DataFrame) -> bool:
        """`all_valid` column by column on a frame of doubles (no copy into one matrix: a batch
        of 1,000,000 rows needs no extra 48 MB)."""
        if any(r.name not in frame.columns for r in self.rules):
            return False
        return all(rule.accepts(frame[rule.name].to_numpy(dtype="float64", copy=False)) for rule in self.rules)

    def array_problems(self, x: np.ndarray) -> list[str]:
        """Every rule that a float matrix (columns in the table's order) breaks, one line per
        column and kind with row counts: the same rules as `frame_problems`, on numpy alone
        (a served model checks each request with it in microseconds)."""
        problems: list[str] = []
        for j, rule in enumerate(self.rules):
            v = x[:, j]
            n_null = 0 if rule.nullable else int(np.isnan(v).sum())
            if n_null:
                problems.append(f"{rule.name}: empty (NaN) values in {_rows(n_null)}")
            n_inf = int(np.isinf(v).sum())
            if n_inf:
                problems.append(f"{rule.name}: infinite values in {_rows(n_inf)}")
            n_out = int((~rule.in_domain(v)).sum())
            if n_out:
                problems.append(f"{rule.name}: out-of-domain values in {_rows(n_out)} "
                                f"({rule.name} must be {rule.describe()})")
        return problems

    # ---- one request -----------------------------------------------------
    def validate_row(self, row: Mapping[str, Any], what: str = "input") -> dict[str, float]:
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
                found = rule.problem(row[rule.name])
                if found:
                    problems.append(found)
        if problems:
            raise InvalidInputError(f"Invalid {what}: " + "; ".join(problems) + ".")
        return {r.name: float("nan") if row[r.name] is None else float(row[r.name]) for r in self.rules}

    # ---- a batch -----------------------------------------------------------
    @cached_property
    def schema(self) -> Any:
        """The table as a pandera `DataFrameSchema` on a frame of doubles (imported lazily)."""
        import pandera.pandas as pa

        columns = {}
        for rule in self.rules:
            finite = pa.Check(lambda s: np.isfinite(s), ignore_na=True, name="finite", error="must be finite")
            domain = pa.Check(lambda s, r=rule: pd.Series(r.in_domain(s.to_numpy()), index=s.index),
                              ignore_na=True, name="domain", error=rule.describe())
            checks = [None, None]
            checks[_FINITE], checks[_DOMAIN] = finite, domain
            columns[rule.name] = pa.Column("float64", checks=checks, nullable=rule.nullable,
                                           required=True, coerce=False)
        return pa.DataFrameSchema(columns, strict=False, ordered=False)

    def frame_problems(self, frame: pd.DataFrame, not_numeric: Mapping[str, int] | None = None) -> list[str]:
        """Every rule a frame of doubles breaks, one line per column and kind, with row counts.

        A frame that keeps every rule is recognised by `all_valid`; one that does not is run
        through the pandera schema, which names each failure.

        `not_numeric` gives, per column, how many of its NaN values were text that is not a
        number (reported by the reader): they are not counted again as empty values.
        """
        present = [n for n in self.names if n in frame.columns]
        if not present or len(frame) == 0:
            return []
        if len(present) == len(self.rules) and self.columns_valid(frame):
            # the same rules, column by column: a valid batch never pays pandera's import (about
            # 1.1 s here) nor its run (156 ms vs 18 ms on 1,000,000 rows, bench/rules.py)
            return []
        from pandera.errors import SchemaErrors

        try:
            self.schema.validate(frame.loc[:, present], lazy=True)
            return []
        except SchemaErrors as err:
            cases = err.failure_cases
        problems: list[str] = []
        not_numeric = dict(not_numeric or {})
        for rule in self.rules:
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


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"
