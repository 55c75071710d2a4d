"""Row filters (`core.row_filter`): a grammar that cannot run code, and the same rows as pandas.

Issue 28: `--prod-where "@pd.io.common.os.system('id > out.txt') == 0 and x2 > 40"` ran the
command through pandas' `query(engine="python")`. Every attempt below would write or touch a
marker file, or call a function, if any part of it were evaluated.
"""
from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import catalog, row_filter
from core.data.infer import infer
from core.dataset import DatasetError
from core.row_filter import FilterError

FRAME = pd.DataFrame({
    "x": [1, 5, 10, 15, 20, 25, 30, np.nan, 40, 45],
    "n": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    "region": ["north", "south", "east", "west", "north", None, "south", "east", "west", "north"],
    "flag": [True, False, True, False, True, False, True, False, True, False],
    "my col": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5],
}, index=range(100, 110))


def test_the_issue_s_exploit_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "out.txt"
    expr = f"@pd.io.common.os.system('id > {marker}') == 0 and x2 > 40"
    frame = pd.DataFrame({"x2": [10, 50, 60, 70], "y": [0, 1, 0, 1]})
    with pytest.raises(FilterError):
        row_filter.select(frame, expr)
    with pytest.raises(DatasetError, match="--prod-where"):
        infer(frame, "attack", "y", prod_where=expr)
    assert not marker.exists()


@pytest.mark.parametrize("expr, what", [
    ("__import__('os').system('touch {m}') == 0", "a function call"),
    ("x.__class__ == 1", "attribute access"),
    ("x > 1 and open('{m}', 'w')", "a function call"),
    ("region[0] == 'n'", "indexing"),
    ("(x + 1) > 2", "arithmetic"),
    ("x > (lambda: 1)", "a lambda"),
    ("[c for c in 'ab'] == x", "comprehension"),
    ("x in {{1, 2}}", "a set"),
    ("x is None", "`is`"),
    ("(y := 1) == x", "assignment"),
    ("x == f'{{1}}'", "an f-string"),
    ("x == b'1'", "a bytes value"),
    ("__builtins__ == 1", "the name '__builtins__'"),
    ("x > 1 if x else x", "an if-expression"),
    ("x == [1, 2]", "a list"),
    ("5", "a value where a condition belongs"),
])
def test_anything_outside_the_grammar_is_refused_naming_it(expr: str, what: str, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    with pytest.raises(FilterError) as err:
        row_filter.parse(expr.format(m=marker))
    assert what in str(err.value) or what.split()[-1] in str(err.value)
    assert "and / or / not" in str(err.value)      # says what a filter may hold
    assert not marker.exists()


@pytest.mark.parametrize("expr", [
    "x > 10",
    "x >= 10 and region == 'north'",
    "x > 10 & region == 'north'",                     # pandas reads & with boolean precedence
    "region in ['north', 'east'] or n < 2",
    "region not in ('north',)",
    "not (x > 10)",
    "~(x > 10) | flag",
    "5 < x <= 30",
    "x > n",
    "`my col` > 4 and x != 25",
    "flag",
    "not flag and n >= -1",
    "region == \"it's & | `odd`\" or n == 3",
    "x == 1.5e1",
])
def test_allowed_filters_keep_the_rows_pandas_keeps(expr: str) -> None:
    expected = FRAME.query(expr, engine="python")
    got = row_filter.select(FRAME, expr)
    pd.testing.assert_frame_equal(got, expected)


def test_unknown_columns_and_bad_syntax_are_named() -> None:
    with pytest.raises(FilterError, match=r"names column\(s\) 'nosuch'.*its columns are: x, n"):
        row_filter.select(FRAME, "nosuch > 1")
    with pytest.raises(FilterError, match="not a valid expression"):
        row_filter.parse("x >")
    with pytest.raises(FilterError, match="never closes"):
        row_filter.parse("`x > 1")
    with pytest.raises(FilterError, match="not True/False"):
        row_filter.select(FRAME, "n")
    with pytest.raises(FilterError, match="cannot be applied"):
        row_filter.select(FRAME, "region < 3")          # pandas' own TypeError, as text
    with pytest.raises(FilterError, match="nested too deeply|too long|not a valid"):
        row_filter.parse("(" * 1000 + "x > 1" + ")" * 1000)
    with pytest.raises(FilterError, match="characters long"):
        row_filter.parse("x > 1 and " * 1000 + "x > 1")


def test_a_saved_definition_with_a_code_query_is_refused_when_read(tmp_path: Path) -> None:
    raw = {"name": "bad", "title": "Bad", "target": {"column": "y", "positive": 1, "negative": 0},
           "features": [{"name": "x", "kind": "numeric", "min": 0, "max": 1}],
           "sources": [{"file": "bad.parquet"}],
           "dev": {"source": "bad.parquet", "where": "@pd.io.common.os.system('touch x') == 0"}}
    with pytest.raises(DatasetError, match="not an allowed row filter.*Edit the definition"):
        catalog.from_dict(raw)
    raw["dev"]["where"] = "x > 0.5"
    assert catalog.from_dict(raw).dev.where == "x > 0.5"


# --------------------------------------------------------------------------- Hypothesis
_COLUMNS = ["x", "n", "region", "flag", "`my col`"]
_NUMBERS = st.one_of(st.integers(-50, 50), st.floats(-50, 50, allow_nan=False).map(lambda v: round(v, 2)))
_TEXT = st.sampled_from(["'north'", "'south'", "\"east\"", "'nowhere'"])


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["num", "num_chain", "num_cols", "text", "text_in", "num_in", "flag"]))
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    num_col = draw(st.sampled_from(["x", "n", "`my col`"]))
    if kind == "num":
        left, right = num_col, str(draw(_NUMBERS))
        return f"{right} {op} {left}" if draw(st.booleans()) else f"{left} {op} {right}"
    if kind == "num_chain":
        return f"{draw(_NUMBERS)} {op} {num_col} {draw(st.sampled_from(['<', '<=']))} {draw(_NUMBERS)}"
    if kind == "num_cols":
        return f"{num_col} {op} {draw(st.sampled_from(['x', 'n', '`my col`']))}"
    if kind == "text":
        return f"region {draw(st.sampled_from(['==', '!=']))} {draw(_TEXT)}"
    if kind == "text_in":
        values = draw(st.lists(_TEXT, min_size=1, max_size=3))
        return f"region {draw(st.sampled_from(['in', 'not in']))} [{', '.join(values)}]"
    if kind == "num_in":
        values = draw(st.lists(st.integers(-2, 12), min_size=1, max_size=4))
        return f"n {draw(st.sampled_from(['in', 'not in']))} ({', '.join(map(str, values))},)"
    return "flag"


_VALID = st.recursive(
    _comparison(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or ", " & ", " | "]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"~({e})"),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALID)
def test_generated_valid_filters_keep_the_same_rows_as_pandas(expr: str) -> None:
    expected = FRAME.query(expr, engine="python")
    pd.testing.assert_frame_equal(row_filter.select(FRAME, expr), expected)


_HOSTILE_ATOMS = st.sampled_from([
    "__import__('os').system('touch MARK')", "open('MARK', 'w')", "@pd.io.common.os.system('touch MARK')",
    "x.__class__.__mro__", "x.__globals__", "__builtins__", "globals()", "exec('1')", "eval('1')",
    "(lambda: open('MARK', 'w'))()", "x.to_csv('MARK')", "region.str.len()", "pd.read_csv('MARK')",
    "[open('MARK','w') for _ in 'a']", "x[0]", "getattr(x, 'sum')()", "import os", "__import__",
    "x.mean()", "(x := 3)", "sys.modules", "{'a': 1}", "b'1'", "x @ x", "x ** 2", "f'{open(\"MARK\")}'",
    "breakpoint()", "x if x else x", "print('MARK')", "*x",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(valid=_VALID, hostile=_HOSTILE_ATOMS, where=st.sampled_from(["left", "right", "alone", "cmp"]))
def test_generated_hostile_filters_are_refused_and_run_nothing(valid: str, hostile: str, where: str,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "MARK"
    called: list[str] = []
    for name in ("open", "exec", "eval", "print", "breakpoint", "globals"):
        real = getattr(builtins, name)
        monkeypatch.setattr(builtins, name, lambda *a, _n=name, _r=real, **k: (called.append(_n), _r(*a, **k))[1])
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: called.append("Popen"))
    monkeypatch.setattr(os, "system", lambda *a, **k: called.append("system"))
    atom = hostile.replace("MARK", str(marker))
    expr = {"left": f"{atom} and {valid}", "right": f"{valid} or {atom}", "alone": atom,
            "cmp": f"x == {atom}"}[where]
    try:
        with pytest.raises(FilterError):
            row_filter.select(FRAME, expr)
    finally:
        monkeypatch.undo()
    assert not marker.exists()
    assert called == []


def test_the_refusal_happens_before_any_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile part after a valid one is refused at parse time: the valid part is never
    evaluated either (the walk only starts on a fully checked tree)."""
    seen = []
    original = row_filter._Evaluator.boolean
    monkeypatch.setattr(row_filter._Evaluator, "boolean", lambda self, node: (seen.append(1), original(self, node))[1])
    with pytest.raises(FilterError):
        row_filter.select(FRAME, "x > 1 and __import__('os').getcwd() == 'x'")
    assert seen == []
    assert sys.modules.get("core.row_filter") is row_filter
