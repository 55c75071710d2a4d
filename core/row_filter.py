"""Row filters a user writes (a dataset's production rows, `--prod-where`), read without running code.

A filter is what an analyst would type into pandas' `DataFrame.query`: comparisons of columns with
values or other columns (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in [...]`, `not in [...]`, chained
ones such as `1 < x <= 5`), joined by `and` / `or` / `not` (or `&` / `|` / `~`, which pandas reads
with the same boolean precedence), column names plain or in backticks (`` `shot type` ``), and
literals (numbers, text, True/False). Nothing else: no attribute access, calls, subscripts,
`@` references, arithmetic, comprehensions or lambdas.

Written by hand because pandas' own `query` evaluates Python (`engine="python"`, and `numexpr`
falls back to it for text), so a saved filter such as `@pd.io.common.os.system('id') == 0` ran a
command; and no kept library parses this small language to a pandas mask. Python's own `ast`
parses it (nothing is evaluated by parsing), an allow-list of node types checks it, and a
walk over that tree builds the mask from pandas' vectorised comparisons, the same operators
`query` uses, so an allowed filter keeps the same rows as `query` does.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from core.dataset import DatasetError

if TYPE_CHECKING:  # pandas is imported where a filter is applied: reading a definition (every
    import pandas as pd  # command's start) only parses its filter

MAX_LENGTH = 5_000     # characters of a filter
MAX_NODES = 1_000      # nodes of its parsed tree (a filter is a handful of comparisons)

EXAMPLE = "e.g. 'year >= 2024 and region in [\"north\", \"south\"]'"
GRAMMAR = ("a filter holds comparisons of columns with values or other columns (==, !=, <, <=, >, >=, "
           "in [...], not in [...]) joined by and / or / not; text in quotes, column names with spaces "
           "in backticks")

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_WHAT = {ast.Attribute: "attribute access (a.b)", ast.Call: "a function call", ast.Subscript: "indexing (a[...])",
         ast.BinOp: "arithmetic", ast.Lambda: "a lambda", ast.IfExp: "an if-expression",
         ast.NamedExpr: "an assignment (:=)", ast.JoinedStr: "an f-string", ast.Starred: "a starred expression",
         ast.Dict: "a dict", ast.Set: "a set", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
         ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.Await: "await",
         ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
         ast.List: "a list (allowed only after `in`)", ast.Tuple: "a tuple (allowed only after `in`)"}


class FilterError(DatasetError):
    """A row filter that is malformed or uses something a filter may not hold."""


@dataclass(frozen=True)
class RowFilter:
    """A checked filter: its text, the parsed tree and the columns it names."""

    text: str
    tree: ast.Expression
    names: dict[str, str]     # placeholder identifier -> column name (backticked names)
    columns: tuple[str, ...]

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """A boolean Series over `frame`'s index: True for the rows the filter keeps."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise FilterError(f"The filter {self.text!r} names column(s) {', '.join(map(repr, missing))} that the "
                              f"table lacks; its columns are: {', '.join(map(str, frame.columns))}.")
        try:
            out = _Evaluator(frame, self.names).boolean(self.tree.body)
        except FilterError:
            raise
        except (TypeError, ValueError) as err:  # pandas' own refusals, e.g. text compared with < to a number
            raise FilterError(f"The filter {self.text!r} cannot be applied ({type(err).__name__}: {err}).") from err
        return out

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` the filter keeps (as `frame.query(text)` would)."""
        return frame[self.mask(frame).to_numpy()]


def parse(text: str, columns: Iterable[str] | None = None) -> RowFilter:
    """`text` checked against the filter grammar (and, given `columns`, against the table's columns).

    Raises `FilterError` naming what is not allowed and what a filter may hold. Nothing in `text`
    is evaluated: it is parsed by `ast.parse` and only the allowed node types are walked later.
    """
    if not isinstance(text, str):
        raise FilterError(f"A row filter is text, not {type(text).__name__}.")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The filter is {len(text):,} characters long; at most {MAX_LENGTH:,} are allowed.")
    if not text.strip():
        raise FilterError(f"The filter is empty; write one, {EXAMPLE}.")
    source, names = _rewrite(text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise FilterError(f"The filter {text!r} is not a valid expression ({_syntax(err)}); {GRAMMAR}, {EXAMPLE}.") \
            from None
    nodes = 0
    try:
        for node in ast.walk(tree):
            nodes += 1
            if nodes > MAX_NODES:
                raise FilterError(f"The filter {text!r} is too long (over {MAX_NODES} parts); write a shorter one.")
    except RecursionError:
        raise FilterError(f"The filter {text!r} is nested too deeply; write a flatter one.") from None
    used: list[str] = []
    _check(tree.body, text, names, used, boolean=True)
    found = tuple(dict.fromkeys(used))
    if columns is not None:
        known = set(map(str, columns))
        missing = [c for c in found if c not in known]
        if missing:
            raise FilterError(f"The filter {text!r} names column(s) {', '.join(map(repr, missing))} that the table "
                              f"lacks; its columns are: {', '.join(map(str, columns))}.")
    return RowFilter(text=text, tree=tree, names=names, columns=found)


def select(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """The rows of `frame` that the filter `text` keeps (all of them when `text` is empty)."""
    if not text or not str(text).strip():
        return frame
    return parse(text, frame.columns).select(frame)


# --------------------------------------------------------------------------- parsing
def _syntax(err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return f"{err.msg}" + (f" at character {err.offset}" if err.offset else "")
    return type(err).__name__


def _rewrite(text: str) -> tuple[str, dict[str, str]]:
    """`text` with backticked column names replaced by placeholder identifiers and `&` / `|` by
    `and` / `or` outside quotes (pandas reads them with boolean precedence)."""
    out: list[str] = []
    names: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise FilterError(f"The filter {text!r} opens a backtick at character {i + 1} and never closes it.")
            key = f"BACKTICKED_COLUMN_{len(names)}_"
            while key in text:
                key += "_"
            names[key] = text[i + 1:j]
            out.append(key)
            i = j + 1
        elif ch in "&|":
            out.append(" and " if ch == "&" else " or ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out), names


def _refuse(node: ast.AST, text: str, why: str | None = None) -> FilterError:
    what = why or _WHAT.get(type(node), f"{type(node).__name__}")
    try:
        part = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used to quote the part in the message
        part = ""
    at = f" ({part[:80]})" if part else ""
    return FilterError(f"The filter {text!r} uses {what}{at}, which a filter may not hold: {GRAMMAR}, {EXAMPLE}.")


def _check(node: ast.AST, text: str, names: dict[str, str], used: list[str], boolean: bool) -> None:
    """Walk `node` and refuse any node outside the grammar; collect the column names used."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text, names, used, boolean=True)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        _check(node.operand, text, names, used, boolean=True)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if isinstance(op, (ast.In, ast.NotIn)):
                _operand(left, text, names, used)
                if isinstance(right, (ast.List, ast.Tuple)):
                    for element in right.elts:
                        _literal(element, text)
                else:
                    _literal(right, text, why_not="`in` takes a list of values, e.g. region in [\"north\", \"south\"]")
            elif type(op) in _COMPARE:
                _operand(left, text, names, used)
                _operand(right, text, names, used)
            else:
                raise _refuse(node, text, "`is` / `is not`")
    elif isinstance(node, ast.Name) and boolean:
        used.append(_column(node, text, names))
    elif isinstance(node, ast.Constant) and boolean and isinstance(node.value, bool):
        return
    else:
        raise _refuse(node, text, None if type(node) in _WHAT else
                      ("a value where a condition belongs" if isinstance(node, (ast.Constant, ast.List, ast.Tuple))
                       else None))


def _operand(node: ast.AST, text: str, names: dict[str, str], used: list[str]) -> None:
    if isinstance(node, ast.Name):
        used.append(_column(node, text, names))
    else:
        _literal(node, text)


def _literal(node: ast.AST, text: str, why_not: str | None = None) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
        return
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)):
        return
    if isinstance(node, ast.Constant):
        raise _refuse(node, text, f"a {type(node.value).__name__} value")
    raise _refuse(node, text, why_not if why_not and type(node) not in _WHAT else None)


def _column(node: ast.Name, text: str, names: dict[str, str]) -> str:
    if node.id in names:
        return names[node.id]
    if node.id.startswith("__") or node.id.startswith("BACKTICKED_COLUMN_"):
        raise _refuse(node, text, f"the name {node.id!r}")
    return node.id


# --------------------------------------------------------------------------- evaluation
class _Evaluator:
    """Builds the mask of a checked tree with pandas' own vectorised operators."""

    def __init__(self, frame: pd.DataFrame, names: dict[str, str]) -> None:
        import pandas as pd

        self.pd = pd
        self.frame = frame
        self.names = names

    def boolean(self, node: ast.AST) -> pd.Series:
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = (out & part) if isinstance(node.op, ast.And) else (out | part)
            return out
        if isinstance(node, ast.UnaryOp):  # not / ~ (checked)
            return ~self.boolean(node.operand)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Constant):
            return self.pd.Series(bool(node.value), index=self.frame.index)
        column = self.frame[self._name(node)]
        if not self.pd.api.types.is_bool_dtype(column):
            raise FilterError(f"The column {self._name(node)!r} stands alone as a condition but holds "
                              f"{column.dtype} values, not True/False; compare it, e.g. "
                              f"`{self._name(node)}` == 1.")
        return column.astype(bool)

    def _name(self, node: ast.AST) -> str:
        assert isinstance(node, ast.Name)
        return self.names.get(node.id, node.id)

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.frame[self._name(node)]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._value(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp):
            value = self._value(node.operand)
            return -value if isinstance(node.op, ast.USub) else +value
        assert isinstance(node, ast.Constant)
        return node.value

    def _compare(self, node: ast.Compare) -> pd.Series:
        operands = [node.left, *node.comparators]
        out: pd.Series | None = None
        for op, left, right in zip(node.ops, operands, operands[1:]):
            a, b = self._value(left), self._value(right)
            if isinstance(op, (ast.In, ast.NotIn)):
                values = b if isinstance(b, list) else [b]
                part = a.isin(values) if isinstance(a, self.pd.Series) else \
                    self.pd.Series(a in values, index=self.frame.index)
                if isinstance(op, ast.NotIn):
                    part = ~part
            else:
                part = _COMPARE[type(op)](a, b)
                if not isinstance(part, self.pd.Series):
                    part = self.pd.Series(bool(part), index=self.frame.index)
            part = part.fillna(False).astype(bool) if part.dtype != bool else part
            out = part if out is None else (out & part)
        assert out is not None
        return out


def check_saved(text: str, where: str) -> str:
    """A filter read from a saved definition, checked again (definitions saved before filters were
    checked may hold a query that ran code); `FilterError` says which definition to fix."""
    if not text or not text.strip():
        return text
    try:
        parse(text)
    except FilterError as err:
        raise FilterError(f"{where}: `where` is not an allowed row filter. {err} Edit the definition's `where`.") \
            from None
    return text


__all__ = ["FilterError", "RowFilter", "parse", "select", "check_saved"]
