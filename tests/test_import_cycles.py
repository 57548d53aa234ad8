"""No import cycle between aotbuild's packages: each subpackage (and each top-level module) is a node, and an
import anywhere in a module (at the top or inside a function; not under TYPE_CHECKING) is an edge."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _node(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "rules" or parts[:2] == ["aotbuild", "rules"]:
        return "rules"
    if parts[0] != "aotbuild":
        return None
    return "aotbuild" if len(parts) == 1 else f"aotbuild.{parts[1]}"


def _imports(tree: ast.AST) -> list[str]:
    typing_only = {id(n) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(stmt.test) for n in ast.walk(stmt)}
    found = []
    for n in ast.walk(tree):
        if id(n) in typing_only:
            continue
        if isinstance(n, ast.Import):
            found += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            # `from aotbuild import layout` imports the module aotbuild.layout; `__version__` is the package's.
            found += [f"aotbuild.{a.name}" for a in n.names if a.name != "__version__"] if n.module == "aotbuild" \
                else [n.module]
    return found


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in [*(REPO / "aotbuild").rglob("*.py"), *(REPO / "rules").rglob("*.py")]:
        source = _node(".".join(path.relative_to(REPO).with_suffix("").parts))
        for name in _imports(ast.parse(path.read_text())):
            target = _node(name)
            if target is not None and source is not None and target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `edges` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walk_finds_a_cycle_where_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_package_imports_another_that_imports_it_back() -> None:
    graph = package_graph()
    assert {"aotbuild.engine", "aotbuild.ninja", "rules", "aotbuild.cache"} <= set(graph)  # the walk sees the tree
    assert find_cycle(graph) is None, f"import cycle between packages: {' -> '.join(find_cycle(graph))}"
