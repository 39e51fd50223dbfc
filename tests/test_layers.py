"""The package's shape: layers that import only downwards, and no module using another module's
private names.

What two modules share is public in the module that owns it; a private name (``_name``) may be
renamed or removed by its module at any time without breaking another one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import analysis

PACKAGE = Path(analysis.__file__).parent


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _cross_module_private_uses() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()  # local names bound to modules of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("analysis")):
                if node.module is None or _is_package(node.module):  # from analysis.analytics import pipeline as pl
                    modules.update(a.asname or a.name for a in node.names)
                    continue
                for a in node.names:
                    if _private(a.name):
                        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {node.module}.{a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("analysis.") and a.asname:
                        modules.add(a.asname)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and _private(node.attr)):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    assert _cross_module_private_uses() == []


#: The layers, lowest first: a module may import its own layer and the ones before it. errors,
#: paths and format sit at the top of the package and import nothing of it.
LAYERS = ("data", "semantic", "analytics", "steering", "reports")


def _layer(path: Path) -> int:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return len(LAYERS) if rel.name == "__main__.py" else -1
    return LAYERS.index(rel.parts[0])


def _upward_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue  # the facade: imports what it offers, lazily
        own = _layer(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("analysis")]
            for name in names:
                parts = name.split(".")
                if len(parts) > 1 and parts[1] in LAYERS and LAYERS.index(parts[1]) > own:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {name}")
                elif own == -1 and len(parts) > 1 and parts[1] in LAYERS:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {name}")
    return sorted(set(found))


def test_layers_import_only_downwards():
    assert _upward_imports() == []


def test_lower_layers_draw_no_charts():
    """Analytics and steering return data; every chart is drawn in analysis.reports."""
    for layer in LAYERS[:4]:
        for path in (PACKAGE / layer).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "import altair" not in text and "vl_convert" not in text, path


def test_documented_module_names_still_work():
    """``analysis.funnel``, ``analysis.forecast``... (the README's API) resolve to the moved modules."""
    for short, full in analysis.MODULES.items():
        assert getattr(analysis, short).__name__ == full


def test_function_metrics_declare_the_rows_they_split():
    """catalog.yml is the one place that says which table a function metric splits by dimension."""
    from analysis.semantic.catalog import build_catalog
    from analysis.semantic.engine import FUNCTIONS

    functions = [m for m in build_catalog() if m.type == "function"]
    assert {m.function for m in functions} == set(FUNCTIONS)
    for m in functions:
        assert m.rows, f"{m.id}: declare `rows:` in catalog.yml"
    arr = build_catalog().get("arr")
    assert arr.rows == ("subscriptions", "opportunities")
