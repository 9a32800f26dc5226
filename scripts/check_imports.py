#!/usr/bin/env python3
"""Print rat_engine's package-level import graph; exit 1 on a cycle or a layering violation.

    python scripts/check_imports.py          # the graph, then "no cycles, layers respected"

Nodes are the subpackages (``streaming``, ``sse``, ``server``, ...) and the top-level modules
(``app``, ``dispatch``, ...). Edges are the imports Python runs: module level and inside
functions, but not under ``if TYPE_CHECKING:`` (those are for the type checker only).
The layering rules (docs/ARCHITECTURE.md, "The layers") are checked as well.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rat_engine"

#: node -> nodes it must never import (the layers, lowest first).
FORBIDDEN = {
    "server": {"app", "dispatch", "streaming", "sse", "broadcast", "routing", "testing", "demo"},
    "streaming": {"app", "dispatch", "sse", "broadcast", "server", "testing", "demo", "convert"},
    "sse": {"app", "dispatch", "broadcast", "server", "testing", "demo"},
    "broadcast": {"app", "dispatch", "server", "testing", "demo"},
    "routing": {"app", "dispatch", "streaming", "sse", "broadcast", "server"},
    "compression": {"app", "dispatch", "server", "sse", "broadcast", "testing", "demo"},
}


def node_of(module: str) -> str | None:
    """``rat_engine.streaming.stream`` -> ``streaming``; ``rat_engine.app`` -> ``app``."""
    parts = module.split(".")
    if parts[0] != "rat_engine" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """Absolute names of the rat_engine modules ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("rat_engine"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("rat_engine"):
                found.add(target)
                for alias in node.names:  # `from . import stepping` imports a module
                    found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    known = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = node_of(module_name(path))
        if source is None:  # rat_engine/__init__.py: the public surface re-exports everything
            continue
        targets = edges.setdefault(source, set())
        for imported in imports_of(path):
            target = node_of(imported)
            if target is not None and target != source and target in known:
                targets.add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's node list, found by depth-first search (the graph is small)."""
    found: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                ring = path[:]
                turn = ring.index(min(ring))
                key = tuple(ring[turn:] + ring[:turn])
                if key not in seen:
                    seen.add(key)
                    found.append([*key, key[0]])
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, start, [start])
    return found


def violations(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} imports {target}"
        for source, forbidden in FORBIDDEN.items()
        for target in sorted(edges.get(source, set()) & forbidden)
    ]


def main() -> int:
    edges = graph()
    for source in sorted(edges):
        print(f"{source:16} -> {', '.join(sorted(edges[source])) or '-'}")
    rings, broken = cycles(edges), violations(edges)
    for ring in rings:
        print("cycle: " + " -> ".join(ring))
    for line in broken:
        print("layering: " + line)
    if rings or broken:
        return 1
    print("no cycles, layers respected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
