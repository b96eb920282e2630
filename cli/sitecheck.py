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
from factoryhub.nodereach import (
    NodeProbe,
    probe_argv,
    reach_findings,
    reached_everything,
    session_addresses,
)
from factoryhub.scheduler.admin import SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.security import NODE_PREFIX, check_floors
from factoryhub.site import Site, SiteError, load_site
from factoryhub.sitecheck import (
    ERROR,
    HUB_ACCOUNT,
    ClusterFacts,
    PathFacts,
    check_site,
    exit_status,
)
from factoryhub.slurmoutput import SlurmError
from factoryhub.software import needed_paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    site = sub.add_parser("site", help="check a site.toml against the live cluster")
    actions = site.add_subparsers(dest="site_action", required=True)
    check = actions.add_parser("check", help="report every mismatch, one sentence each")
    check.add_argument("--site", type=Path, help="site.toml (default: the installed site)")
    check.add_argument(
        "--from-nodes",
        action="store_true",
        help="also run one tiny job on each partition (srun, a minute at most) that tries to"
        " reach the hub's API and public address from a node, as a session must",
    )
    check.add_argument(
        "--as",
        dest="probe_user",
        default=HUB_ACCOUNT,
        metavar="USER",
        help=f"the account the probe jobs run as (default: {HUB_ACCOUNT}, the hub's); one with"
        " a Slurm association on every partition, e.g. a test learner's, never root",
    )


def main(args: argparse.Namespace) -> int:
    try:
        path = site_path(args.site)
        site = load_site(path)
    except (OSError, SiteError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}")
        return 3
    findings = check_site(site, asyncio.run(gather(site)))
    probes: tuple[NodeProbe, ...] = ()
    if args.from_nodes:
        probes = asyncio.run(probe_nodes(site, args.probe_user))
        findings = sorted(findings + reach_findings(probes), key=lambda f: f.level != ERROR)
    print(f"factoryhub site check: {path}")
    for finding in findings:
        print(f"  {finding}")
    if not findings:
        print("  nothing found: Slurm, the accounting database and the files agree with it")
    if reached := reached_everything(probes):
        print(f"  {reached}")
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


PROBE_DEADLINE = 90.0  # seconds for one probe job: srun's wait for a node, and the probe
RUNUSER = "/usr/sbin/runuser"


async def probe_nodes(
    site: Site, user: str, client: SlurmClient | None = None
) -> tuple[NodeProbe, ...]:
    """One probe job per partition of `site`, all at once, as `user`; not on a partition kept
    for workshops (Slurm takes a job there only on a reservation, which a probe has none of)."""
    addresses = session_addresses(site, socket.gethostname())
    python = str(Path(site.environments[site.session.environment].prefix) / "bin" / "python")
    srun = os.path.join(site.slurm.bin_dir, "srun")
    client = client or SlurmClient(site.slurm.bin_dir, PROBE_DEADLINE)
    prefix, refused = as_user(user, os.geteuid())
    if refused:
        return tuple(NodeProbe(p, addresses, failure=refused) for p in site.learner_partitions())

    async def probe(partition: str) -> NodeProbe:
        argv = [*prefix, *probe_argv(srun, partition, python, addresses)]
        try:
            done = await client.run(argv, cwd="/")
        except SlurmError as exc:  # said as srun's, which it is, not runuser's
            failure = str(exc).replace("runuser ", "srun ", 1) if prefix else str(exc)
            return NodeProbe(partition, addresses, failure=" ".join(failure.split()))  # one line
        return NodeProbe(partition, addresses, output=done.stdout)

    return tuple(await asyncio.gather(*(probe(p) for p in site.learner_partitions())))


def as_user(user: str, euid: int) -> tuple[list[str], str]:
    """(the argv prefix that runs a command as `user`, or why it cannot be): root drops to
    the account with runuser, an account runs as itself; never as root."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return [], f"{user!r} is no account of this host (--as names the probe jobs' account)"
    if uid == 0:
        return [], "the probe jobs never run as root: name an unprivileged account with --as"
    if euid == 0:
        return [RUNUSER, "-u", user, "--"], ""
    if euid == uid:
        return [], ""
    return [], f"only root or {user} can run the probe jobs as {user}"
