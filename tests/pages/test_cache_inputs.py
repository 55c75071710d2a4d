"""Page caches depend only on their arguments (issue 29 item 5): a function under `st.cache_data`
or `st.cache_resource` in app.py, pages/ or ui/ reads no page-global value, only its parameters,
imported modules and names, builtins and other functions of the same file."""
from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def _cached_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    def cached(d: ast.expr) -> bool:
        target = d.func if isinstance(d, ast.Call) else d
        return isinstance(target, ast.Attribute) and target.attr in ("cache_data", "cache_resource")
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and any(cached(d) for d in n.decorator_list)]


def _allowed(tree: ast.Module) -> set[str]:
    names = set(dir(builtins))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):  # constants in CAPITALS only
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()}
    return names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cached_functions_read_only_their_arguments(path: Path) -> None:
    tree = ast.parse(path.read_text())
    allowed = _allowed(tree)
    for fn in _cached_functions(tree):
        local = {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs, *fn.args.posonlyargs]}
        local |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local |= {a.arg for n in ast.walk(fn) if isinstance(n, ast.Lambda) for a in n.args.args}
        for n in ast.walk(fn):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                local |= {(a.asname or a.name).split(".")[0] for a in n.names}
        read = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        stray = sorted(read - local - allowed)
        assert not stray, f"{path.name}:{fn.name} reads page-global {', '.join(stray)}; pass it as an argument"
