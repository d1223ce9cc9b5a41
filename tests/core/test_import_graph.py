"""The core's modules import each other without cycles.

Every import counts: at module level, inside functions, and under
``TYPE_CHECKING`` (a cycle there is one refactoring away from an import
error, and it hides that two modules are really one). The graph is read from
the source, so it is the same whichever module happens to be imported first.
"""

from __future__ import annotations

import ast
import pathlib

import objectstore_core

CORE_DIR = pathlib.Path(objectstore_core.__file__).parent
PACKAGE = "objectstore_core"


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: pathlib.Path = CORE_DIR) -> dict[str, set[str]]:
    """Module -> the core modules it imports (submodules, not the package that holds them)."""
    paths = {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in paths)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the importing package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    if f"{base}.{alias.name}" in paths:
                        edges.add(f"{base}.{alias.name}")  # a submodule itself
                    elif base in paths:
                        edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done and (cycle := visit(target)):
                return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


def test_core_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert "objectstore_core._http" in graph and "objectstore_core.emulator._handler" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_type_checking_cycles(tmp_path: pathlib.Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "_a.py").write_text("from objectstore_core._b import B\n")
    (tmp_path / "_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import _c\nB = 1\n"
    )
    (tmp_path / "_c.py").write_text("def f():\n    from objectstore_core._a import A\n")
    (tmp_path / "_d.py").write_text("import objectstore_core._a\n")
    graph = import_graph(tmp_path)
    assert graph["objectstore_core._d"] == {"objectstore_core._a"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"objectstore_core._a", "objectstore_core._b", "objectstore_core._c"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
