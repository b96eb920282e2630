"""Maintenance windows, read from Slurm's maintenance reservations (`Flags=MAINT`) in the live
capacity the hub already reads (`scontrol show reservation`, public on this site), said in
words and held against a request (pure).

Slurm starts no job on a node whose maintenance begins before the job's walltime ends: a
session that would overlap the window waits until it is over. So the form says when a
partition's nodes go into maintenance and when a session started now would end, and the
estimate says "after the maintenance" when the request cannot end in time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .capacity import Capacity
from .durations import describe_minutes

MARGIN_MINUTES = 5  # a session should end this long before the window, to save and stop
HORIZON = timedelta(hours=24)  # windows the form mentions: under way, or starting within this


@dataclass(frozen=True)
class MaintenanceWindow:
    """One maintenance reservation: when, and which nodes."""

    name: str
    start: datetime
    end: datetime
    nodes: frozenset[str]


def expand_hostlist(text: str) -> list[str]:
    """A Slurm host list as names: ``gn[01-02],cn01`` → gn01, gn02, cn01 (pure)."""
    names = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]*)\])?", text):
        prefix, ranges = match.group(1), match.group(2)
        if ranges is None:
            names.append(prefix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                continue
            for number in range(int(low), int(high or low) + 1):
                names.append(f"{prefix}{number:0{len(low)}d}")
    return names


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def maintenance_windows(capacity: Capacity, now: datetime) -> list[MaintenanceWindow]:
    """The MAINT reservations not yet over, earliest first."""
    windows = []
    for reservation in capacity.reservations:
        start, end = _time(reservation.start), _time(reservation.end)
        if not reservation.maintenance or start is None or end is None or end <= now:
            continue
        nodes = frozenset(expand_hostlist(reservation.nodes))
        windows.append(MaintenanceWindow(reservation.name, start, end, nodes))
    return sorted(windows, key=lambda w: w.start)


def _partition_nodes(capacity: Capacity, partition: str) -> frozenset[str]:
    return frozenset(n.name for n in capacity.nodes_of(partition))


def blocking_window(
    capacity: Capacity, partition: str, walltime_minutes: int, now: datetime
) -> MaintenanceWindow | None:
    """The window that keeps a session of `walltime_minutes` from starting now in
    `partition`: one covering all its nodes, under way or beginning before the session would
    end; None when it can start (as far as maintenance goes)."""
    nodes = _partition_nodes(capacity, partition)
    ends = now + timedelta(minutes=walltime_minutes)
    for window in maintenance_windows(capacity, now):
        if nodes and nodes <= window.nodes and window.start < ends:
            return window
    return None


def _clock(moment: datetime, now: datetime) -> str:
    return f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%-d %b %H:%M}"


def _which(partition: str, window: MaintenanceWindow, nodes: frozenset[str]) -> str:
    if nodes <= window.nodes:
        return f"The {partition} nodes go"
    some = sorted(nodes & window.nodes)
    return f"{', '.join(some)} of the {partition} nodes {'goes' if len(some) == 1 else 'go'}"


def maintenance_notice(
    capacity: Capacity, partition: str, walltime_minutes: int, now: datetime, what: str = "session"
) -> str | None:
    """What the form says of the next maintenance of `partition`'s nodes, if one is under way
    or begins within `HORIZON`: "The gpu nodes go into maintenance at 14:00 (until 16:00); a
    session started now would end at 13:30, before it." (or what to ask for instead)."""
    nodes = _partition_nodes(capacity, partition)
    for window in maintenance_windows(capacity, now):
        if not nodes & window.nodes or window.start - now > HORIZON:
            continue
        until = _clock(window.end, now)
        which = _which(partition, window, nodes)
        if window.start <= now:
            which = which.replace(" go", " are", 1).replace(" goes", " is", 1)
            return f"{which} in maintenance until {until}; a {what} there starts after it."
        head = f"{which} into maintenance at {_clock(window.start, now)} (until {until})"
        ends = now + timedelta(minutes=walltime_minutes)
        if ends <= window.start:
            return f"{head}; a {what} started now would end at {_clock(ends, now)}, before it."
        latest = window.start - timedelta(minutes=MARGIN_MINUTES)
        fits = int((latest - now).total_seconds() // 60)
        if fits < 1:
            return f"{head}; a {what} there starts after it."
        return (
            f"{head}; a {what} started now would have to end by {_clock(latest, now)}: ask"
            f" for at most {describe_minutes(fits)}, or it starts after the maintenance."
        )
    return None
