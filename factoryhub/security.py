"""Version floors for advisories fixed upstream; the hub refuses to run, and CI fails, below.

Each floor names the advisory that sets it. Raise a floor when a new advisory is fixed.
"""

from __future__ import annotations

import contextlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.version import Version

# package: (lowest safe version, advisories that set it)
PYTHON_FLOORS: dict[str, tuple[str, str]] = {
    "jupyterhub": ("5.5.1", "GHSA-c4gm-pwx9-9w8j, GHSA-69wv-m5fw-2fhp, CVE-2024-41942"),
    "jupyter-server": ("2.14.1", "CVE-2024-35178 (GHSA-hrw6-wg82-cm62)"),
    "jupyter-server-proxy": ("4.2.0", "CVE-2024-35225, CVE-2024-28179"),
    "distributed": ("2026.1.1", "CVE-2026-23528 (GHSA-c336-7962-wfj2), dashboard XSS"),
    "dask": ("2024.8.2", "GHSA-xqgj-r6xv-9cw4"),
}
NPM_FLOORS: dict[str, tuple[str, str]] = {
    "configurable-http-proxy": ("4.5.1", "CVE-2022-21710 (header injection)"),
}


def below_floor(installed: dict[str, str], floors: dict[str, tuple[str, str]]) -> list[str]:
    """Messages for every package missing or below its floor (pure)."""
    problems = []
    for name, (floor, advisories) in floors.items():
        have = installed.get(name)
        if have is None:
            problems.append(f"{name} is not installed (need >= {floor}: {advisories})")
        elif Version(have) < Version(floor):
            problems.append(f"{name} {have} is below {floor} ({advisories})")
    return problems


def installed_python() -> dict[str, str]:
    found = {}
    for name in PYTHON_FLOORS:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def installed_npm(node_prefix: Path) -> dict[str, str]:
    found = {}
    for name in NPM_FLOORS:
        manifest = node_prefix / "node_modules" / name / "package.json"
        if manifest.exists():
            found[name] = json.loads(manifest.read_text())["version"]
    return found


def check_floors(node_prefix: Path) -> list[str]:
    """Every floor violation of this installation."""
    return below_floor(installed_python(), PYTHON_FLOORS) + below_floor(
        installed_npm(node_prefix), NPM_FLOORS
    )
