"""The modules of `train/` import each other in one direction only (no circle, lazy imports
inside functions included) and never import `pipelines` (the stage knows only the shard format)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "train"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    return ".".join(path.parent.relative_to(PACKAGE.parent).parts)


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every module named by an import statement anywhere in the file (functions included);
    `package` is the file's own package, against which relative imports resolve."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            if base:
                names.add(base)
            names.update(f"{base}.{a.name}".lstrip(".") for a in node.names)  # `from train import loop`
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of `train` it imports (only those that exist as files)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = _imported(ast.parse(path.read_text(encoding="utf-8")), _package_of(path))
        graph[name] = {t for t in targets if t in files and t != name and t != "train"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_relative_imports_resolve_against_the_package():
    tree = ast.parse("from . import loop\nfrom .data import x\nfrom .. import shards")
    assert {"train.loop", "train.data", "shards"} <= _imported(tree, "train")


def test_find_cycle_reports_a_circle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_train_modules_import_without_a_circle():
    graph = import_graph()
    # The parser sees the edges that exist (so an empty graph cannot pass): lazy ones too.
    assert "train.setup" in graph["train.loop"] and "train.loop" in graph["train.ray_launcher"]
    assert "train.model" in graph["train.checkpoint"]  # imported inside restore_model
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    assert graph["train.distributed"] == set()


def test_train_never_imports_pipelines():
    for path in PACKAGE.rglob("*.py"):
        names = _imported(ast.parse(path.read_text(encoding="utf-8")), _package_of(path))
        assert not any(n == "pipelines" or n.startswith("pipelines.") for n in names), path
