"""`factoryhub site check`, the pure part: a site.toml held against what the live cluster and
the machine say (`ClusterFacts`, gathered by the command's edge), each mismatch one sentence an
administrator can act on — what a learner would otherwise be the first to meet.

Nothing here runs a command: the edge (`factoryhub.cli.sitecheck`) reads Slurm through the one
seam, the files with `os.stat`, and hands the facts over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .capacity import Capacity
from .durations import describe_minutes, parse_minutes
from .site import Site
from .slurmversion import check_slurm_version
from .software import needed_paths

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    """One mismatch: `error` (a learner will meet it) or `warning` (worth a look)."""

    level: str
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


@dataclass(frozen=True)
class PathFacts:
    """What `os.stat` said of a path the site names (None: it does not exist)."""

    owner: str
    mode: int
    is_dir: bool


@dataclass(frozen=True)
class ClusterFacts:
    """What the edge found. A fact it could not gather is None, and said so once."""

    capacity: Capacity | None  # partitions and nodes (scontrol, sinfo)
    node_addresses: Mapping[str, str] = field(default_factory=dict)  # NodeName -> NodeAddr
    unresolved: tuple[str, ...] = ()  # addresses the hub's host cannot resolve
    munge_ok: bool | None = None  # a credential made and read back
    accounting: bool | None = None  # slurmdbd answers (None: the site keeps none)
    accounts: frozenset[str] | None = None
    qos: frozenset[str] | None = None
    paths: Mapping[str, PathFacts | None] = field(default_factory=dict)  # by role
    below_floors: tuple[str, ...] = ()  # security.check_floors
    problems: tuple[str, ...] = ()  # what could not be gathered, in sentences
    slurm_version: str | None = None  # what `scontrol --version` printed on this host
    controller_version: str | None = None  # slurmctld's SLURM_VERSION (scontrol show config)
    present: Mapping[str, bool] = field(default_factory=dict)  # software paths that exist


HUB_ACCOUNT = "factoryhub"


def check_site(site: Site, facts: ClusterFacts) -> list[Finding]:
    """Every mismatch between `site` and `facts` (pure), errors first."""
    found = [Finding(WARNING, f"could not check: {p}") for p in facts.problems]
    found += _daemons(facts)
    found += _versions(facts)
    if facts.capacity is not None:
        found += _partitions(site, facts.capacity)
        found += _nodes(facts)
    found += _access(site, facts)
    found += _paths(site, facts)
    found += _software(site, facts)
    found += [Finding(ERROR, f"security floor: {p}") for p in facts.below_floors]
    return sorted(found, key=lambda f: f.level != ERROR)


def _daemons(facts: ClusterFacts) -> list[Finding]:
    found = []
    if facts.munge_ok is False:
        found.append(
            Finding(
                ERROR,
                "munge does not answer on this host (no credential could be made and read back):"
                " every Slurm command fails; start munged with the cluster's key",
            )
        )
    if facts.capacity is None:
        found.append(
            Finding(
                ERROR,
                "slurmctld does not answer (scontrol show partition failed): no session can start",
            )
        )
    return found


def _versions(facts: ClusterFacts) -> list[Finding]:
    """A Slurm release FactoryHub was not tested with (`factoryhub.slurmversion`): said, not
    guessed at — the commands' own (their output is what FactoryHub parses) and slurmctld's."""
    found = []
    for what, printed in (
        ("Slurm's commands on this host (scontrol --version)", facts.slurm_version),
        ("slurmctld (SLURM_VERSION of scontrol show config)", facts.controller_version),
    ):
        if printed is not None and not (check := check_slurm_version(printed, what)).supported:
            found.append(Finding(ERROR, check.sentence))
    return found


def _partitions(site: Site, capacity: Capacity) -> list[Finding]:
    found = []
    known = ", ".join(sorted(capacity.partitions)) or "none"
    for name, part in site.partitions.items():
        live = capacity.partitions.get(name)
        if live is None:
            found.append(
                Finding(
                    ERROR,
                    f"partition {name!r} of site.toml is not a Slurm partition"
                    f" (Slurm has: {known})",
                )
            )
            continue
        if not live.up:
            found.append(
                Finding(WARNING, f"Slurm's partition {name} is not UP: sessions there wait")
            )
        if part.workshops_only and not live.requires_reservation:
            found.append(
                Finding(
                    ERROR,
                    f"partitions.{name}.workshops_only: Slurm's partition {name} has no"
                    " ReqResv=YES, so any job may run there outside a workshop's reservation"
                    " (set ReqResv=YES on it in slurm.conf)",
                )
            )
        if live.max_minutes is not None:
            for key, text in (
                ("max_walltime", part.max_walltime),
                ("default_walltime", part.default_walltime),
            ):
                if text and parse_minutes(text) > live.max_minutes:
                    found.append(
                        Finding(
                            ERROR,
                            f"partitions.{name}.{key} = {text} is above Slurm's MaxTime for"
                            f" {name} ({describe_minutes(live.max_minutes)}): such a session"
                            " would be refused or pend for ever",
                        )
                    )
        nodes = [n for n in capacity.nodes if n.partition == name]
        if not nodes:
            found.append(Finding(ERROR, f"Slurm's partition {name} has no nodes"))
            continue
        found += _limits(name, part, nodes)
    return found


def _limits(name: str, part, nodes) -> list[Finding]:
    found = []
    cpus = max(n.cpus_total for n in nodes)
    memory_gb = max(n.memory_mb for n in nodes) // 1024
    types: dict[str, int] = {}
    for node in nodes:
        for kind, count in node.gpus_total.items():
            types[kind] = max(types.get(kind, 0), count)
    gpus = max(types.values(), default=0)
    checks = (
        ("max_cpus", part.max_cpus, cpus, "CPUs"),
        ("max_memory_gb", part.max_memory_gb, memory_gb, "GB of memory"),
        ("max_gpus", part.max_gpus, gpus, "GPUs"),
    )
    for key, offered, most, what in checks:
        if offered > most:
            found.append(
                Finding(
                    ERROR,
                    f"partitions.{name}.{key} = {offered} is more than any node of {name} has"
                    f" ({most} {what}): such a session can never start",
                )
            )
    for kind in part.gpu_types:
        if kind not in types:
            have = ", ".join(sorted(t for t in types if t)) or "none"
            found.append(
                Finding(
                    ERROR,
                    f"partitions.{name}.gpu_types names {kind!r}, a GPU type no node of {name}"
                    f" has (Slurm's Gres there: {have})",
                )
            )
    return found


def _nodes(facts: ClusterFacts) -> list[Finding]:
    return [
        Finding(
            ERROR,
            f"node {node}'s address {facts.node_addresses.get(node, node)!r} does not resolve on"
            " this host and Slurm gives no NodeAddr: the hub cannot reach sessions there",
        )
        for node in facts.unresolved
    ]


def _access(site: Site, facts: ClusterFacts) -> list[Finding]:
    if facts.accounting is None:
        return []
    if facts.accounting is False:
        return [
            Finding(
                ERROR,
                "slurmdbd does not answer (sacctmgr failed): accounts, QoS and budgets cannot be"
                " read, and Slurm refuses jobs that need an association",
            )
        ]
    found = []
    for kind, named, live in (
        ("account", site.access.accounts, facts.accounts),
        ("QoS", site.access.qos, facts.qos),
    ):
        if live is None:
            continue
        for name in named:
            if name != "*" and name not in live:
                found.append(
                    Finding(
                        ERROR,
                        f"[access] grants the {kind} {name!r}, which the accounting database does"
                        f" not have: sacctmgr add {kind.lower()} {name}",
                    )
                )
    return found


def _paths(site: Site, facts: ClusterFacts) -> list[Finding]:
    found = []
    expect = {
        "state_dir": (site.hub.state_dir, HUB_ACCOUNT, 0o077, "the hub's database and tokens"),
        "catalogue_dir": (site.hub.catalogue_dir, "root", 0o022, "published courses"),
    }
    rule = {0o077: "readable or writable by others", 0o022: "writable by others"}
    for role, (path, owner, forbidden, what) in expect.items():
        if role not in facts.paths:
            continue
        seen = facts.paths[role]
        if seen is None:
            level = WARNING if role == "catalogue_dir" else ERROR
            found.append(Finding(level, f"[hub] {role} {path} ({what}) does not exist"))
            continue
        if not seen.is_dir:
            found.append(Finding(ERROR, f"[hub] {role} {path} is not a directory"))
        if seen.owner != owner:
            found.append(
                Finding(ERROR, f"[hub] {role} {path} ({what}) belongs to {seen.owner}, not {owner}")
            )
        if seen.mode & forbidden:
            found.append(
                Finding(
                    ERROR,
                    f"[hub] {role} {path} ({what}) has mode {seen.mode:04o}: it must not be"
                    f" {rule[forbidden]}",
                )
            )
        if role == "catalogue_dir" and not seen.mode & 0o005:
            found.append(
                Finding(
                    ERROR,
                    f"[hub] catalogue_dir {path} has mode {seen.mode:04o}: sessions cannot read"
                    " the published courses",
                )
            )
    return found


def _software(site: Site, facts: ClusterFacts) -> list[Finding]:
    """Lmod, the modules, the kernels and the container runtime the environments need (only
    what the edge looked at: `present` holds every path it checked)."""
    found = []
    for what, paths in needed_paths(site.software, site.environments).items():
        looked = paths and all(p in facts.present for p in paths)
        if looked and not any(facts.present[p] for p in paths):
            found.append(Finding(ERROR, f"{what} does not exist on this host"))
    return found


def exit_status(findings: list[Finding]) -> int:
    """0: nothing to say; 1: warnings only; 2: an error (for scripts)."""
    if any(f.level == ERROR for f in findings):
        return 2
    return 1 if findings else 0
