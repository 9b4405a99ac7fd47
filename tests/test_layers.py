"""
The direction of imports (docs/architecture.md): no cycles, and the library
never leans on its tools. Only ``__main__`` imports the command line; only
the command line, ``testing`` and the pytest plugin import the emulator.
Read from the source (every import, lazy ones too), not by importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "journey_async"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, *, top_level_only: bool) -> set[str]:
    """The package's modules *name* imports."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in MODULES and c != name)
    return found


def test_no_import_cycles() -> None:
    graph = {name: imports(name, top_level_only=True) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for target in graph[name]:
            visit(target, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


@pytest.mark.parametrize(
    ("tool", "allowed"),
    [
        ("journey_async._cli", ("journey_async._cli", "journey_async.__main__")),
        (
            "journey_async._emulator",
            (
                "journey_async._emulator",
                "journey_async._cli",
                "journey_async.testing",
                "journey_async._pytest_plugin",
            ),
        ),
    ],
)
def test_the_library_does_not_import_its_tools(tool: str, allowed: tuple[str, ...]) -> None:
    def inside(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    offenders = {
        name: sorted(
            target for target in imports(name, top_level_only=False) if inside(target, tool)
        )
        for name in MODULES
        if not any(inside(name, prefix) for prefix in allowed)
    }
    assert {name: found for name, found in offenders.items() if found} == {}
