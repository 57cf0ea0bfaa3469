"""No import circles between the package's modules, in-function imports included.

An import inside a function still makes its module depend on the other one; it only hides
the circle from Python's import machinery (and from a reader). This reads every module
under ``tui_unlearn`` with ``ast``, takes each first-party import wherever it stands
(module level, inside functions, under ``TYPE_CHECKING``), and finds the circles as the
strongly connected components of that graph (Tarjan). ``python tests/test_import_layers.py``
prints them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "tui_unlearn"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# Circles not broken yet, each as its sorted modules (none left). Breaking one means removing
# it here; a new circle, or one that grows or changes, fails the test.
ALLOWED: set[tuple[str, ...]] = set()


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` as the package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_known_prefix(alias.name, known))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                # `from a.b import c` imports the module a.b.c when there is one, else a name of a.b.
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else _known_prefix(base, known))
    found.discard("")
    found.discard(module)
    return found


def _known_prefix(name: str, known: set[str]) -> str:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return ""


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_in_function_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from tui_unlearn.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..a import f\nfrom . import c\n")
    (pkg / "sub" / "c.py").write_text("import os\n")
    graph = import_graph(pkg)
    assert graph["tui_unlearn.a"] == {"tui_unlearn.sub.b"}
    assert graph["tui_unlearn.sub.b"] == {"tui_unlearn.a", "tui_unlearn.sub.c"}
    assert circles(graph) == [("tui_unlearn.a", "tui_unlearn.sub.b")]


def test_no_new_import_circles():
    found = set(circles(import_graph()))
    new = sorted(found - ALLOWED)
    assert not new, "import circles (move what both sides need into a lower module): " + "; ".join(
        " <-> ".join(c) for c in new
    )
    gone = sorted(ALLOWED - found)
    assert not gone, "circles broken: take them out of ALLOWED: " + "; ".join(" <-> ".join(c) for c in gone)


if __name__ == "__main__":
    for circle in circles(import_graph()):
        print(" <-> ".join(circle))
