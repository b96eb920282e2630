"""`factoryhub site check [--site PATH]`: a site.toml against the live cluster and this machine,
every mismatch one sentence (`factoryhub.sitecheck`); exit 0 when nothing is wrong, 1 with
warnings only, 2 with an error (3: the site file itself cannot be read).

The facts are read through the one Slurm seam (`SlurmClient`, `SlurmAdmin`) and `os.stat`;
run it as the hub's account or root, on the host the hub runs on (names resolve as the hub
resolves them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import socket
import stat
import subprocess
from pathlib import Path

from factoryhub.courses.cli import site_path
from factoryhub.scheduler.admin import SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.security import NODE_PREFIX, check_floors
from factoryhub.site import Site, SiteError, load_site
from factoryhub.sitecheck import ClusterFacts, PathFacts, check_site, exit_status
from factoryhub.slurmoutput import SlurmError
from factoryhub.software import needed_paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    site = sub.add_parser("site", help="check a site.toml against the live cluster")
    actions = site.add_subparsers(dest="site_action", required=True)
    check = actions.add_parser("check", help="report every mismatch, one sentence each")
    check.add_argument("--site", type=Path, help="site.toml (default: the installed site)")


def main(args: argparse.Namespace) -> int:
    try:
        path = site_path(args.site)
        site = load_site(path)
    except (OSError, SiteError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}")
        return 3
    findings = check_site(site, asyncio.run(gather(site)))
    print(f"factoryhub site check: {path}")
    for finding in findings:
        print(f"  {finding}")
    if not findings:
        print("  nothing found: Slurm, the accounting database and the files agree with it")
    return exit_status(findings)


async def gather(site: Site) -> ClusterFacts:
    """What the live cluster and this machine say; a fact that cannot be read is None."""
    client = SlurmClient(site.slurm.bin_dir, site.slurm.command_timeout)
    problems = []
    try:
        capacity = await client.capacity()
    except SlurmError:
        capacity = None
    addresses: dict[str, str] = {}
    try:
        addresses = await client.node_addresses()
    except SlurmError as exc:
        problems.append(f"node addresses ({exc})")
    try:
        slurm_version: str | None = await client.slurm_version()
    except SlurmError as exc:
        slurm_version = None
        problems.append(f"Slurm's version ({exc})")
    config = await _config(client)
    accounting, accounts, qos = await _accounting(client, config)
    return ClusterFacts(
        capacity=capacity,
        node_addresses=addresses,
        unresolved=tuple(sorted(n for n, a in addresses.items() if not _resolves(a))),
        munge_ok=_munge_ok(),
        accounting=accounting,
        accounts=accounts,
        qos=qos,
        paths={
            "state_dir": _path_facts(site.hub.state_dir),
            "catalogue_dir": _path_facts(site.hub.catalogue_dir),
        },
        below_floors=tuple(check_floors(NODE_PREFIX)),
        problems=tuple(problems),
        slurm_version=slurm_version,
        controller_version=config.get("SLURM_VERSION") if config else None,
        present=_present(site),
    )


def _present(site: Site) -> dict[str, bool]:
    """Which of the paths the environments need exist here (links followed: a module tree
    or a runtime may well be a link on a real site)."""
    needed = needed_paths(site.software, site.environments)
    return {path: os.path.exists(path) for paths in needed.values() for path in paths}


async def _config(client: SlurmClient) -> dict[str, str] | None:
    """`scontrol show config` (None: the controller did not answer)."""
    try:
        return await SlurmAdmin(client).config()
    except SlurmError:
        return None


async def _accounting(client: SlurmClient, config: dict[str, str] | None):
    """(answers, accounts, QoS): answers None where slurm.conf keeps no accounting database."""
    admin = SlurmAdmin(client)
    if config is None or config.get("AccountingStorageType") != "accounting_storage/slurmdbd":
        return None, None, None
    try:
        accounts = frozenset(await admin.accounts())
        qos = frozenset(row[0] for row in await admin.rows("qos", "format=Name"))
    except SlurmError:
        return False, None, None
    return True, accounts, qos


def _resolves(address: str) -> bool:
    try:
        socket.getaddrinfo(address, None)
    except (OSError, UnicodeError):
        return False
    return True


def _munge_ok() -> bool | None:
    """A credential made and decoded (munge | unmunge, as two argv commands)."""
    try:
        made = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if made.returncode != 0:
            return False
        read = subprocess.run(["unmunge"], input=made.stdout, capture_output=True, timeout=10)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        return False
    return read.returncode == 0


def _path_facts(path: str) -> PathFacts | None:
    try:
        seen = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    try:
        owner = pwd.getpwuid(seen.st_uid).pw_name
    except KeyError:
        owner = str(seen.st_uid)
    return PathFacts(owner, stat.S_IMODE(seen.st_mode), stat.S_ISDIR(seen.st_mode))
