"""No module of the package uses another module's private names.

What two modules share is public in the module that owns it; a private name (``_name``) may be
renamed or removed by its module at any time without breaking another one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import analysis

PACKAGE = Path(analysis.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _cross_module_private_uses() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()  # local names bound to modules of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("analysis")):
                if node.module is None or node.module == "analysis":  # from . import pipeline as pl
                    modules.update(a.asname or a.name for a in node.names)
                    continue
                for a in node.names:
                    if _private(a.name):
                        found.append(f"{path.name}:{node.lineno} imports {node.module}.{a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("analysis.") and a.asname:
                        modules.add(a.asname)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and _private(node.attr)):
                found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    assert _cross_module_private_uses() == []


def test_function_metrics_declare_the_rows_they_split():
    """catalog.yml is the one place that says which table a function metric splits by dimension."""
    from analysis.catalog import build_catalog
    from analysis.engine import FUNCTIONS

    functions = [m for m in build_catalog() if m.type == "function"]
    assert {m.function for m in functions} == set(FUNCTIONS)
    for m in functions:
        assert m.rows, f"{m.id}: declare `rows:` in catalog.yml"
    arr = build_catalog().get("arr")
    assert arr.rows == ("subscriptions", "opportunities")
