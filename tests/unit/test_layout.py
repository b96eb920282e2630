"""The layout the architecture promises (docs/architecture.md), read from the source itself:
the core (`factoryhub/*.py`) is pure — it runs no command and imports no JupyterHub, tornado
or edge package — and the packages import each other without a cycle."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = ("subprocess", "jupyterhub", "tornado", "jupyter_server", "ipywidgets")


def _packages() -> dict[str, Path]:
    """Each package of the distribution and its folder in the checkout."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})
    return {
        name: REPO / mapped.get(name, name.replace(".", "/")) for name in setuptools["packages"]
    }


def _imports(path: Path, package: str) -> Iterator[str]:
    """Every module `path` imports (relative imports resolved), and `x.create_subprocess_*`
    spelled as a pseudo-module "subprocess"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("create_subprocess"):
            yield "subprocess"


def _owner(module: str, packages: dict[str, Path]) -> str | None:
    """The distribution's package that holds `module` (the longest match), if any."""
    found = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(found, key=len) if found else None


def test_the_core_runs_no_command_and_imports_no_edge():
    packages = _packages()
    edges = [p for p in packages if p != "factoryhub"]
    problems = []
    for path in sorted(packages["factoryhub"].glob("*.py")):
        for module in _imports(path, "factoryhub"):
            top = module.split(".")[0]
            if top in FORBIDDEN_IN_CORE:
                problems.append(f"{path.name} imports {module}")
            if any(module == e or module.startswith(e + ".") for e in edges):
                problems.append(f"{path.name} imports the edge {module}")
    assert not problems, problems


def test_packages_import_each_other_without_a_cycle():
    packages = _packages()
    graph: dict[str, set[str]] = {name: set() for name in packages}
    for name, folder in packages.items():
        for path in folder.glob("*.py"):
            for module in _imports(path, name):
                owner = _owner(module, packages)
                if owner is not None and owner != name:
                    graph[name].add(owner)
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < len(graph):
                visit(nxt, [*trail, nxt])

    for start in graph:
        visit(start, [start])
    assert not cycles, sorted(set(cycles))


@pytest.mark.parametrize(
    "source, found",
    [
        ("import subprocess\n", "subprocess"),
        ("await asyncio.create_subprocess_exec('x')\n", "subprocess"),
        ("from .slurm import SlurmClient\n", "factoryhub.scheduler.slurm.SlurmClient"),
    ],
)
def test_the_checks_see_what_they_look_for(tmp_path, source, found):
    """The import reader finds the things the two tests above refuse (so they can fail)."""
    path = tmp_path / "m.py"
    path.write_text(source)
    assert found in set(_imports(path, "factoryhub.scheduler"))
