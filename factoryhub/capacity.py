"""The scheduler's live view of the site: partitions, their limits and their free capacity.

Read with two commands (`scontrol show partition --oneliner`, `sinfo --Node -O …`) and parsed
by pure functions tested on real output. The spawn form, the start estimate and the widgets all
read the same `Capacity`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .durations import DurationError, parse_minutes

SINFO_FORMAT = (
    "NodeList:|,Partition:|,CPUsState:|,Gres:|,GresUsed:|,StateCompact:|,Memory:|,AllocMem:|"
)
# Node states in which a node takes new work ("mix" and "alloc" just have less of it free).
USABLE_STATES = frozenset({"idle", "mix", "alloc", "comp", "plnd"})


@dataclass(frozen=True)
class NodeCapacity:
    """One node as one partition sees it."""

    name: str
    partition: str
    state: str
    cpus_total: int
    cpus_idle: int
    memory_mb: int
    memory_alloc_mb: int
    gpus_total: dict[str, int] = field(default_factory=dict)  # by GPU type
    gpus_used: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.state.rstrip("*~#!%$@^-") in USABLE_STATES and not self.state.endswith("*")

    def gpus_free(self, gpu_type: str = "") -> int:
        types = [gpu_type] if gpu_type else list(self.gpus_total)
        return sum(self.gpus_total.get(t, 0) - self.gpus_used.get(t, 0) for t in types)

    def gpus(self, gpu_type: str = "") -> int:
        types = [gpu_type] if gpu_type else list(self.gpus_total)
        return sum(self.gpus_total.get(t, 0) for t in types)


@dataclass(frozen=True)
class PartitionState:
    """A partition's scheduler-side settings."""

    name: str
    up: bool
    max_minutes: int | None  # None: unlimited
    default_minutes: int | None
    requires_reservation: bool = False  # ReqResv=YES: every job there names a reservation


@dataclass(frozen=True)
class Reservation:
    """An advance reservation (`scontrol show reservation`), e.g. a workshop's nodes."""

    name: str
    users: tuple[str, ...]
    accounts: tuple[str, ...]
    partition: str
    active: bool
    end: str
    start: str = ""  # local ISO time, as Slurm prints it
    nodes: str = ""  # a Slurm host list: gn[01-02]
    flags: tuple[str, ...] = ()  # MAINT: a maintenance window
    cores: int = 0  # CoreCnt: cores held on `nodes` (0 or all of them: whole nodes)
    state: str = ""  # Slurm's word: ACTIVE or INACTIVE

    def admits(self, user: str) -> bool:
        return user in self.users

    @property
    def maintenance(self) -> bool:
        return "MAINT" in self.flags


@dataclass(frozen=True)
class Capacity:
    """Partitions, the nodes in each and the reservations, at one moment."""

    partitions: dict[str, PartitionState]
    nodes: tuple[NodeCapacity, ...]
    reservations: tuple[Reservation, ...] = ()

    def nodes_of(self, partition: str) -> list[NodeCapacity]:
        return [n for n in self.nodes if n.partition == partition]

    def summary(self, partition: str) -> dict[str, int]:
        """Idle/total CPUs and free/total GPUs over the partition's usable nodes."""
        nodes = [n for n in self.nodes_of(partition) if n.usable]
        return {
            "cpus_idle": sum(n.cpus_idle for n in nodes),
            "cpus_total": sum(n.cpus_total for n in self.nodes_of(partition)),
            "gpus_free": sum(n.gpus_free() for n in nodes),
            "gpus_total": sum(n.gpus() for n in self.nodes_of(partition)),
            "nodes_usable": len(nodes),
        }


def _gres(text: str) -> dict[str, int]:
    """``gpu:h100:4`` or ``gpu:h100:1(IDX:0),gpu:a100:2(IDX:0-1)`` → {type: count}."""
    counts: dict[str, int] = {}
    for match in re.finditer(r"gpu(?::([A-Za-z][\w.-]*))?:(\d+)", text):
        gtype = match.group(1) or ""
        counts[gtype] = counts.get(gtype, 0) + int(match.group(2))
    return counts


def parse_sinfo_nodes(text: str) -> tuple[NodeCapacity, ...]:
    """Rows of `sinfo --noheader --Node -O SINFO_FORMAT`."""
    nodes = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 8 or not parts[0]:
            continue
        name, partition, cpus, gres, used, state, memory, alloc_mem = parts[:8]
        _alloc, idle, _other, total = (int(x) for x in cpus.split("/"))
        nodes.append(
            NodeCapacity(
                name=name,
                partition=partition.rstrip("*"),
                state=state,
                cpus_total=total,
                cpus_idle=idle,
                memory_mb=int(memory or 0),
                memory_alloc_mb=int(alloc_mem or 0),
                gpus_total=_gres(gres),
                gpus_used=_gres(used),
            )
        )
    return tuple(nodes)


def _minutes(value: str) -> int | None:
    if value in ("UNLIMITED", "NONE", ""):
        return None
    try:
        return parse_minutes(value)
    except DurationError:
        return None


def parse_partitions(text: str) -> dict[str, PartitionState]:
    """`scontrol show partition --oneliner` by partition name."""
    partitions = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "PartitionName" not in fields:
            continue
        name = fields["PartitionName"]
        partitions[name] = PartitionState(
            name=name,
            up=fields.get("State") == "UP",
            max_minutes=_minutes(fields.get("MaxTime", "")),
            default_minutes=_minutes(fields.get("DefaultTime", "")),
            requires_reservation=fields.get("ReqResv") == "YES",
        )
    return partitions


def _names(value: str) -> tuple[str, ...]:
    return () if value in ("", "(null)") else tuple(v for v in value.split(",") if v)


def parse_reservations(text: str) -> tuple[Reservation, ...]:
    """`scontrol show reservation --oneliner` ("No reservations in the system" gives none).
    From 23.02 on a reservation may end with ``Comment=<free text>``, spaces and ``Key=value``
    words included: it is the last field, so nothing after it is read as one."""
    found = []
    for line in text.splitlines():
        line = line.split(" Comment=", 1)[0]
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "ReservationName" not in fields:
            continue
        found.append(
            Reservation(
                name=fields["ReservationName"],
                users=_names(fields.get("Users", "")),
                accounts=_names(fields.get("Accounts", "")),
                partition=""
                if fields.get("PartitionName") == "(null)"
                else fields.get("PartitionName", ""),
                active=fields.get("State") == "ACTIVE",
                end=fields.get("EndTime", ""),
                start=fields.get("StartTime", ""),
                nodes=fields.get("Nodes", ""),
                flags=_names(fields.get("Flags", "")),
                cores=int(fields["CoreCnt"]) if fields.get("CoreCnt", "").isdigit() else 0,
                state=fields.get("State", ""),
            )
        )
    return tuple(found)
