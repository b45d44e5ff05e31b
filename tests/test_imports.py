"""The shape of src/jaxbert: the package graph has no cycle (each subpackage or top-level
module imports only ones "below" it, e.g. finetune → train → model, never back), so a
piece can be read, tested and moved with what it imports and nothing that imports it; and
files stay small enough to read (at most three over 400 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "jaxbert"


def _unit(module: str) -> str:
    """jaxbert.train.loop → "train"; jaxbert.fs → "fs"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        here = _unit(".".join(("jaxbert", *path.relative_to(SRC).with_suffix("").parts)))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "jaxbert":
                targets = [f"jaxbert.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxbert."):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("jaxbert.")]
            else:
                continue
            for target in targets:
                if _unit(target) not in ("", here):
                    graph.setdefault(here, set()).add(_unit(target))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, …, a], or None (depth-first, three colours)."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if not state.get(nxt) and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if not state.get(start) and (found := visit(start, [start])):
            return found
    return None


def test_no_import_cycle_between_packages():
    """No subpackage or top-level module imports one that (transitively) imports it."""
    graph = package_graph()
    assert graph.get("finetune") and "train" in graph["finetune"]  # the graph is real
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_cycle_finder_finds_one():
    """The checker itself: a planted cycle is reported."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_at_most_three_files_over_400_lines():
    """Small files named after what they hold: no more than three modules over 400 lines."""
    long = sorted(
        (n, str(p.relative_to(SRC)))
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    )
    assert len(long) <= 3, long
