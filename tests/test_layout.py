"""The package layout is the architecture: imports point down toward the pure core.

Layers, bottom first: ``core`` (sans-I/O) < ``engines``, ``transcripts`` <
``protocols`` < ``server``, ``pool`` (the inference pool process) < ``__main__``. A module may import its own layer
or a lower one, never a higher one, and the module graph has no cycles (lazy
imports inside functions and ``TYPE_CHECKING`` blocks count too). Also for
``bench``, whose modules must not import each other in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"core": 0, "engines": 1, "transcripts": 1, "protocols": 2, "server": 3, "pool": 3, "__main__": 4}
PURE_FORBIDDEN = ("asyncio", "anyio", "websockets", "socket", "threading", "faster_whisper", "ctranslate2")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every project module ``path`` imports, wherever the import statement sits."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def graph(package: str) -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    known = {module_name(f) for f in files}
    edges = {module_name(f): imports_of(f, known) for f in files}
    # importing a package runs its __init__ only; an edge to the package itself says nothing more
    return {mod: {dep for dep in deps if dep != mod and not mod.startswith(dep + ".")} for mod, deps in edges.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


@pytest.mark.parametrize("package", ["gateway", "bench"])
def test_no_import_cycles(package: str) -> None:
    assert find_cycle(graph(package)) is None


def test_imports_point_down() -> None:
    upward = [
        f"{mod} -> {dep}"
        for mod, deps in graph("gateway").items()
        for dep in deps
        if (mine := layer(mod)) is not None and (theirs := layer(dep)) is not None and theirs > mine
    ]
    assert upward == []


def test_core_is_sans_io() -> None:
    offenders = []
    for path in sorted((ROOT / "gateway" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in PURE_FORBIDDEN]
    assert offenders == []


def test_every_package_says_what_it_owns() -> None:
    for init in sorted((ROOT / "gateway").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init} needs a docstring saying what the package owns"


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
