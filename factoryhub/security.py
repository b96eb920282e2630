"""Version floors for advisories fixed upstream; the hub refuses to run, and CI fails, below.

Each floor names the advisory that sets it. Raise a floor when a new advisory is fixed.
"""

from __future__ import annotations

import contextlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.version import Version

# package: (lowest safe version, advisories that set it). The newest advisory of each package
# sets its floor; older ones fixed below it are named where they were the reason for a pin.
PYTHON_FLOORS: dict[str, tuple[str, str]] = {
    # 5.5.1 (2026-08-10), a security release: user-initiated sharing, filtered admin roles.
    "jupyterhub": ("5.5.1", "GHSA-c4gm-pwx9-9w8j, GHSA-69wv-m5fw-2fhp, CVE-2024-41942"),
    # 2.21.0: Referer header (with tokens) copied into the log on a 5xx; 2.20.0: stored XSS in
    # the nbconvert handlers (no CSP sandbox).
    "jupyter-server": (
        "2.21.0",
        "CVE-2026-86049 (GHSA-c3mw-737p-c7g2), CVE-2026-44727 (GHSA-fcw5-x6j4-ccmp)",
    ),
    "jupyter-server-proxy": ("4.2.0", "CVE-2024-35225 (GHSA-fvcq-4x64-hqxr), CVE-2024-28179"),
    # 4.6.2: extension-manager allowlist not enforced; 4.5.7: CommandLinker XSS token theft.
    "jupyterlab": (
        "4.6.2",
        "GHSA-whvh-wf3x-g77j, CVE-2026-40171 (GHSA-rch3-82jr-f9w9)",
    ),
    # 6.5.7 is the release distributions ship for these (e.g. Photon PHSA-2026-5.0-92-0939).
    "tornado": ("6.5.7", "CVE-2026-49853, CVE-2026-49854, CVE-2026-49855, CVE-2026-35536"),
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


NODE_PREFIX = Path("/opt/factoryhub/node")  # where install.sh puts configurable-http-proxy


def check_floors(node_prefix: Path) -> list[str]:
    """Every floor violation of this installation."""
    return below_floor(installed_python(), PYTHON_FLOORS) + below_floor(
        installed_npm(node_prefix), NPM_FLOORS
    )


def require_floors(node_prefix: Path) -> None:
    """Refuse to run (SystemExit naming each advisory) below any floor: called when the hub
    loads its configuration and by `factoryhub demo start`."""
    problems = check_floors(node_prefix)
    if problems:
        raise SystemExit("Refusing to start below security floors:\n  " + "\n  ".join(problems))
