"""Workshops: a support centre's hands-on event as data (pure).

`plan_workshop(request, facts)` turns what the support centre asks for (`WorkshopRequest`: a
name, courses, a time slot, seats, optional partition, smaller resources, a GPU-hour budget,
trainers) and what the site is at that moment (`SiteFacts`: published course presets, nodes,
reservations, names already taken) into a `WorkshopPlan`, or refuses with every reason as a
sentence (`WorkshopRefused`). The plan names everything the command line then makes, in order:
the Slurm account with its budget, the seat accounts (`ws-<name>-NN`, made for it, or the
free accounts of the site's pool, `SiteFacts.pool`), the reservation, the access codes' hashes
(one for the workshop, or one per seat). Nothing here runs a command.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .capacity import NodeCapacity
from .durations import DurationError, format_minutes, parse_walltime

NAME = re.compile(r"[a-z][a-z0-9]{1,15}", re.ASCII)  # no '-': seat names stay unambiguous
SEAT = re.compile(r"ws-([a-z][a-z0-9]{1,15})-(\d{2,3})", re.ASCII)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # what scontrol takes and prints (local time)
_WHEN = re.compile(r"now(?:\+(\d{1,4})(min|h))?|\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?", re.ASCII)
MAX_SEATS = 300  # the embedded site's pool: ws-<name>-001 … ws-<name>-300
MIN_LEFT_MINUTES = 5  # a session that could run less than this is not started
CODE_MODES = ("workshop", "per-seat")  # one access code for the room, or one per seat


class WorkshopRefused(ValueError):
    """A request the site cannot take; `reasons` are sentences, each on its own."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = tuple(reasons)


def parse_when(text: str, now: datetime) -> datetime:
    """`now`, `now+90min`, `now+2h` or `YYYY-MM-DDTHH:MM[:SS]` (local time) as a datetime."""
    value = text.strip()
    match = _WHEN.fullmatch(value)
    if not match:
        raise WorkshopRefused(
            [f"{value[:40]!r} is not a time: write 2026-12-03T09:00, now or now+30min"]
        )
    if value.startswith("now"):
        amount, unit = match.groups()
        minutes = int(amount or 0) * (60 if unit == "h" else 1)
        return now.replace(microsecond=0) + timedelta(minutes=minutes)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise WorkshopRefused([f"{value!r} is not a date and time that exists"]) from None


def seat_names(name: str, seats: int) -> tuple[str, ...]:
    """`ws-<name>-01` … (three digits from 100 seats on)."""
    width = 3 if seats > 99 else 2
    return tuple(f"ws-{name}-{n:0{width}d}" for n in range(1, seats + 1))


def workshop_of_seat(user: str) -> str | None:
    """The workshop a seat account belongs to by its name, None for any other account."""
    match = SEAT.fullmatch(user)
    return match.group(1) if match else None


def account_name(name: str) -> str:
    """The workshop's Slurm account (and its reservation's name)."""
    return f"ws-{name}"


# The hub's group of every account a seat was given to (the join page adds it): what the hub
# service's right to make tokens is limited to (`tokens!group=…`), for a trainer's read-only
# look at a seat's notebook, so that no fault of the service mints one for anyone else.
SEATS_GROUP = "factoryhub-seats"


def trainer_group(name: str) -> str:
    """The Unix group whose members (the trainers) read the handout, archives and report."""
    return f"ws-{name}-trainers"


@dataclass(frozen=True)
class SeatResources:
    """What one seat's session may hold: the largest of the workshop's course presets, or
    less where the support centre asked for less."""

    partition: str
    cpus: int
    memory_gb: int
    gpus: int
    walltime_minutes: int


@dataclass(frozen=True)
class WorkshopRequest:
    """What the support centre asks for (already typed; text checked by `plan_workshop`)."""

    name: str
    courses: tuple[str, ...]
    start: datetime
    end: datetime
    seats: int
    partition: str = ""  # "" : the courses' own partition
    cpus: int | None = None  # at most the course preset's
    memory_gb: int | None = None
    gpu_hours: float | None = None  # the account's GPU budget; default seats × GPUs × slot
    trainers: tuple[str, ...] = ()
    codes: str = "workshop"  # CODE_MODES


@dataclass(frozen=True)
class TakenSlot:
    """An existing reservation, as far as planning needs it."""

    name: str
    start: datetime
    end: datetime
    nodes: frozenset[str]
    cores: int  # cores it holds on those nodes (0: the whole nodes)
    maintenance: bool = False


@dataclass(frozen=True)
class SiteFacts:
    """The site when the workshop is planned."""

    now: datetime
    presets: Mapping[str, Mapping[str, object]]  # published course -> preset (user_options)
    nodes: tuple[NodeCapacity, ...]
    reservations: tuple[TakenSlot, ...] = ()
    workshops: frozenset[str] = frozenset()  # names of workshops on record (any state)
    taken_names: frozenset[str] = frozenset()  # Unix users and groups, Slurm accounts
    users: frozenset[str] = frozenset()  # Unix accounts (trainers must be among them)
    max_seats: int = MAX_SEATS
    # The site's pool of training accounts (`[workshops] account_pool`): None when the site
    # has none (seats ws-<name>-NN are made); else its free accounts, in order, and a
    # sentence on what is not free (`factoryhub.workshoppool.PoolState`).
    pool: tuple[str, ...] | None = None
    pool_note: str = ""


@dataclass(frozen=True)
class WorkshopPlan:
    """Everything `workshop create` makes, named."""

    name: str
    courses: tuple[str, ...]
    start: datetime
    end: datetime
    seats: tuple[str, ...]
    resources: SeatResources
    trainers: tuple[str, ...]
    cpu_minutes: int  # the account's budget (GrpTRESMins)
    gpu_minutes: int
    nodes: int  # whole nodes reserved (GPU workshops); 0: cores only
    presets: dict[str, dict[str, object]] = field(default_factory=dict)  # per course, locked
    pooled: bool = False  # the seats are the site's pool accounts (kept, not deleted)
    codes: str = "workshop"

    @property
    def account(self) -> str:
        return account_name(self.name)

    @property
    def reservation(self) -> str:
        return account_name(self.name)

    @property
    def duration_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def reservation_settings(self, now: datetime) -> dict[str, str]:
        """`scontrol create reservation` settings: the slot, the partition, cores (or whole
        GPU nodes) for every seat, the seats and the workshop's account as its users."""
        start = "now" if self.start <= now else self.start.strftime(TIME_FORMAT)
        size = (
            {"NodeCnt": str(self.nodes)}
            if self.nodes
            else {"TRES": f"cpu={len(self.seats) * self.resources.cpus}"}
        )
        return {
            "StartTime": start,
            "EndTime": self.end.strftime(TIME_FORMAT),
            "PartitionName": self.resources.partition,
            **size,
            "Users": ",".join(self.seats),
            "Accounts": self.account,
        }

    def account_limits(self) -> list[str]:
        """The budget Slurm enforces on the account (slurmdbd, AccountingStorageEnforce)."""
        budget = f"cpu={self.cpu_minutes}"
        if self.resources.gpus:  # a budget of 0 (or rounded to 0) is no GPU time, not no limit
            budget += f",gres/gpu={self.gpu_minutes}"
        return [f"GrpTRESMins={budget}"]

    def describe(self) -> list[str]:
        """The plan in lines, for `--dry-run` and the command's own report."""
        r = self.resources
        gpus = f", {r.gpus} GPU" if r.gpus else ""
        size = f"{self.nodes} whole node(s)" if self.nodes else f"{len(self.seats) * r.cpus} cores"
        lines = [
            f"workshop {self.name}: courses {', '.join(self.courses)}",
            f"slot: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"
            f" ({format_minutes(self.duration_minutes)})",
            f"seats: {len(self.seats)} ({self.seats[0]} … {self.seats[-1]}), each {r.cpus} CPU,"
            f" {r.memory_gb} GB{gpus}, up to {format_minutes(r.walltime_minutes)} per session",
            f"reservation {self.reservation} on partition {r.partition}: {size}",
            f"Slurm account {self.account}: budget {self.cpu_minutes / 60:g} CPU-hours"
            + (f", {self.gpu_minutes / 60:g} GPU-hours" if self.gpu_minutes else ""),
        ]
        if self.pooled:
            lines.append("seat accounts: from the site's pool (returned to it by purge)")
        lines.append(
            "access: one code per seat (on the handout, a line per seat)"
            if self.codes == "per-seat"
            else "access: one code for the workshop"
        )
        if self.trainers:
            lines.append(f"trainers: {', '.join(self.trainers)}")
        return lines


def _number(options: Mapping[str, object], key: str, default: int = 0) -> int:
    value = options.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _walltime(options: Mapping[str, object]) -> int:
    try:
        return parse_walltime(str(options.get("walltime", "01:00:00")))
    except DurationError:
        return 60


def _seat_resources(
    request: WorkshopRequest, presets: list[Mapping[str, object]], why: list[str]
) -> SeatResources | None:
    partitions = {str(p.get("partition", "")) for p in presets}
    if len(partitions) > 1:
        why.append(
            f"the courses run on different partitions ({', '.join(sorted(partitions))});"
            " a workshop has one reservation on one partition: make two workshops"
        )
        return None
    partition = partitions.pop()
    if request.partition and request.partition != partition:
        why.append(
            f"--partition {request.partition[:40]!r}: the course preset runs on {partition};"
            " a workshop gives each seat its course's preset"
        )
        return None
    cpus = max(_number(p, "cpus", 1) for p in presets)
    memory = max(_number(p, "memory_gb", 1) for p in presets)
    for label, asked, most in (
        ("--cpus", request.cpus, cpus),
        ("--memory-gb", request.memory_gb, memory),
    ):
        if asked is not None and not 1 <= asked <= most:
            why.append(f"{label} {asked}: a seat may have 1 to {most} (the course preset's)")
    return SeatResources(
        partition=partition,
        cpus=request.cpus if request.cpus and request.cpus <= cpus else cpus,
        memory_gb=request.memory_gb
        if request.memory_gb and request.memory_gb <= memory
        else memory,
        gpus=max(_number(p, "gpus") for p in presets),
        walltime_minutes=max(_walltime(p) for p in presets),
    )


def _check_names(request: WorkshopRequest, facts: SiteFacts, why: list[str]) -> None:
    name = request.name
    if not NAME.fullmatch(name):
        why.append(
            f"name {name[:40]!r}: use 2 to 16 lower-case letters and digits, starting with a"
            " letter (it becomes ws-<name> in Slurm and ws-<name>-NN for the seats)"
        )
        return
    if name in facts.workshops:
        why.append(f"name {name!r} is taken by another workshop; choose another name")
        return
    mine = {account_name(name), trainer_group(name)}
    if facts.pool is None:  # pool accounts exist by design; made seats must not
        mine |= set(seat_names(name, max(request.seats, 1)))
    taken = sorted(mine & facts.taken_names)
    if taken:
        why.append(
            f"name {name!r}: {', '.join(taken[:3])} already exist(s) on this site"
            " (a workshop purged only in part?); choose another name"
        )


def _check_trainers(request: WorkshopRequest, facts: SiteFacts, why: list[str]) -> None:
    for trainer in request.trainers:
        if trainer not in facts.users:
            why.append(f"trainer {trainer[:40]!r} has no account on this site")


def _check_slot(request: WorkshopRequest, facts: SiteFacts, why: list[str]) -> None:
    if request.end <= facts.now:
        why.append(f"the end, {request.end:%Y-%m-%d %H:%M}, is in the past")
    elif request.end <= request.start:
        why.append(
            f"the end, {request.end:%Y-%m-%d %H:%M}, is not after the start,"
            f" {request.start:%Y-%m-%d %H:%M}"
        )
    elif request.start < facts.now - timedelta(minutes=5):
        why.append(f"the start, {request.start:%Y-%m-%d %H:%M}, is in the past (use now)")
    elif request.end - max(request.start, facts.now) < timedelta(minutes=15):
        why.append("the slot is shorter than 15 minutes")


def _check_seats(request: WorkshopRequest, facts: SiteFacts, why: list[str]) -> None:
    if request.codes not in CODE_MODES:
        why.append(f"--codes {request.codes[:20]!r}: choose {' or '.join(CODE_MODES)}")
    if facts.pool is not None:
        free = len(facts.pool)
        if request.seats < 1 or request.seats > free:
            note = f" ({facts.pool_note})" if facts.pool_note else ""
            why.append(
                f"--seats {request.seats}: the site's account pool has {free} free"
                f" account(s){note}; ask for 1 to {free}, or grow the pool"
            )
        return
    if not 1 <= request.seats <= facts.max_seats:
        why.append(
            f"--seats {request.seats}: the site's pool of seat accounts has {facts.max_seats};"
            f" ask for 1 to {facts.max_seats}"
        )


def _seats_per_node(node: NodeCapacity, r: SeatResources) -> int:
    fits = [node.cpus_total // r.cpus, node.memory_mb // (r.memory_gb * 1024)]
    if r.gpus:
        fits.append(node.gpus() // r.gpus)
    return max(min(fits), 0)


def _overlapping(
    facts: SiteFacts, start: datetime, end: datetime, nodes: set[str]
) -> list[TakenSlot]:
    return [
        slot
        for slot in facts.reservations
        if slot.start < end and start < slot.end and slot.nodes & nodes
    ]


def _check_capacity(
    request: WorkshopRequest, facts: SiteFacts, r: SeatResources, why: list[str]
) -> int:
    """Whole nodes a GPU workshop needs (0 for cores); a sentence when they are not there."""
    nodes = [n for n in facts.nodes if n.partition == r.partition]
    if not nodes:
        why.append(f"partition {r.partition!r} has no nodes on this site")
        return 0
    names = {n.name for n in nodes}
    start = max(request.start, facts.now)
    overlaps = _overlapping(facts, start, request.end, names)
    maintenance = [s.name for s in overlaps if s.maintenance]
    if maintenance:
        why.append(
            f"the slot overlaps maintenance reservation {maintenance[0]} on {r.partition};"
            " choose another slot"
        )
        return 0
    cores_of = {n.name: n.cpus_total for n in nodes}

    def takes_whole(slot: TakenSlot) -> bool:  # Slurm prints CoreCnt for node reservations too
        return not slot.cores or slot.cores >= sum(cores_of.get(n, 0) for n in slot.nodes)

    whole = {n for s in overlaps if takes_whole(s) or r.gpus for n in s.nodes}
    held_cores = sum(s.cores for s in overlaps if not takes_whole(s))
    free = [n for n in nodes if n.name not in whole]
    seats = request.seats
    if r.gpus:
        per_node = sorted((_seats_per_node(n, r) for n in free), reverse=True)
        fit = sum(per_node)
        need = _nodes_for(per_node, seats)
    else:
        cores = sum(n.cpus_total for n in free) - held_cores
        fit = cores // r.cpus if r.cpus else 0
        fit = min(fit, sum(_seats_per_node(n, r) for n in free))
        need = 0
    if fit < seats:
        held = (
            f"; reservation(s) {', '.join(s.name for s in overlaps)} hold part of it"
            if overlaps
            else ""
        )
        why.append(
            f"{seats} seats × the preset need more than partition {r.partition} has free in"
            f" that slot: room for {fit} seat(s){held}"
        )
    return need


def _nodes_for(per_node: list[int], seats: int) -> int:
    used = 0
    for count, room in enumerate(per_node, start=1):
        used += room
        if used >= seats:
            return count
    return len(per_node)


def _locked_presets(
    request: WorkshopRequest, facts: SiteFacts, r: SeatResources
) -> dict[str, dict[str, object]]:
    locked = {}
    for course in request.courses:
        preset = dict(facts.presets[course])
        preset["cpus"] = min(_number(preset, "cpus", 1), r.cpus)
        preset["memory_gb"] = min(_number(preset, "memory_gb", 1), r.memory_gb)
        locked[course] = preset
    return locked


def plan_workshop(request: WorkshopRequest, facts: SiteFacts) -> WorkshopPlan:
    """The plan for `request` on the site as `facts` describe it, or `WorkshopRefused` with
    every reason found (so one run says everything to fix)."""
    why: list[str] = []
    _check_names(request, facts, why)
    _check_trainers(request, facts, why)
    _check_slot(request, facts, why)
    _check_seats(request, facts, why)
    if not request.courses:
        why.append("name at least one course (--course)")
    unknown = [c for c in request.courses if c not in facts.presets]
    for course in unknown:
        known = ", ".join(sorted(facts.presets)) or "none"
        why.append(f"course {course[:40]!r} is not in the catalogue (published: {known})")
    resources = None
    if request.courses and not unknown:
        resources = _seat_resources(request, [facts.presets[c] for c in request.courses], why)
    if request.gpu_hours is not None and (
        not math.isfinite(request.gpu_hours) or request.gpu_hours < 0
    ):
        why.append(f"--gpu-hours {request.gpu_hours}: give a number of hours, 0 or more")
    elif request.gpu_hours and resources and not resources.gpus:
        why.append("--gpu-hours: the courses' preset has no GPUs; leave the budget out")
    nodes = 0
    if resources and not why:
        nodes = _check_capacity(request, facts, resources, why)
    if why or resources is None:
        raise WorkshopRefused(why)
    minutes = int((request.end - max(request.start, facts.now)).total_seconds() // 60)
    seats = (
        facts.pool[: request.seats]
        if facts.pool is not None
        else seat_names(request.name, request.seats)
    )
    gpu_minutes = (
        round(request.gpu_hours * 60)
        if request.gpu_hours is not None
        else len(seats) * resources.gpus * minutes
    )
    return WorkshopPlan(
        name=request.name,
        courses=request.courses,
        start=max(request.start, facts.now),
        end=request.end,
        seats=seats,
        resources=resources,
        trainers=tuple(dict.fromkeys(request.trainers)),
        cpu_minutes=len(seats) * resources.cpus * minutes,
        gpu_minutes=gpu_minutes if resources.gpus else 0,
        nodes=nodes,
        presets=_locked_presets(request, facts, resources),
        pooled=facts.pool is not None,
        codes=request.codes,
    )
