"""Slurm time strings, both ways: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
``D-HH:MM:SS`` (as `sbatch --time` reads them) to minutes, and minutes back to ``D-HH:MM:SS``.

Two readers, on purpose: `parse_minutes` reads what Slurm prints and what admins copy from it
(``MaxTime=30:00`` is 30 minutes) exactly as Slurm does; `parse_walltime` reads what a learner
types, and refuses Slurm's ``MM:SS`` form, which people read as ``HH:MM`` (``1:30`` would be a
90-second session, not an hour and a half).

Only ASCII digits are accepted: Python's ``int()`` would take Arabic-Indic or full-width digits,
Slurm would not.
"""

from __future__ import annotations

import re

_DAYS = re.compile(r"(\d{1,3})-(\d{1,2})(?::(\d{1,2}))?(?::(\d{1,2}))?", re.ASCII)
_CLOCK = re.compile(r"(\d{1,6})(?::(\d{1,2}))?(?::(\d{1,2}))?", re.ASCII)
_MINUTES_SECONDS = re.compile(r"(\d{1,6}):(\d{1,2})", re.ASCII)  # Slurm's MM:SS


class DurationError(ValueError):
    """Text that is not a Slurm time."""


def parse_minutes(text: str) -> int:
    """Minutes in a Slurm time string, seconds rounded up (Slurm does the same)."""
    return -(-parse_seconds(text) // 60)


def parse_walltime(text: str) -> int:
    """Minutes in a walltime a person typed: plain minutes (``90``), ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM`` or ``D-HH:MM:SS``. Slurm's ``MM:SS`` is refused with what it would
    mean to Slurm and how to write the hours and minutes the person most likely meant."""
    if match := _MINUTES_SECONDS.fullmatch(text.strip()):
        first, second = (int(g) for g in match.groups())
        shown = text.strip()
        if second > 59:
            raise DurationError(
                f"{shown!r} is not a walltime: Slurm reads M:S as minutes:seconds;"
                " use minutes (90) or HH:MM:SS (01:30:00)"
            )
        minutes = first * 60 + second
        raise DurationError(
            f"{shown!r} would mean {first} min {second} s to Slurm (minutes:seconds);"
            f" for {first} h {second} min write {format_minutes(minutes)} or {minutes}"
        )
    return parse_minutes(text)


def parse_seconds(text: str) -> int:
    """Seconds in a Slurm time string (also what `squeue` prints for elapsed and left)."""
    value = text.strip()
    if match := _DAYS.fullmatch(value):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        parts = [days, hours, minutes, seconds]
    elif match := _CLOCK.fullmatch(value):
        parts = [int(g) for g in match.groups() if g is not None]
        days = 0
        # MM, MM:SS, HH:MM:SS as Slurm reads them.
        hours, minutes, seconds = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    else:
        raise DurationError(
            f"{text[:40]!r} is not a time; use minutes (90), HH:MM:SS (01:30:00) or D-HH:MM:SS"
        )
    clock_minutes_bounded = bool(days) or (match.re is _CLOCK and len(parts) == 3)
    if seconds > 59 or (hours > 23 and bool(days)) or (minutes > 59 and clock_minutes_bounded):
        raise DurationError(f"{text[:40]!r} has hours above 23 or minutes or seconds above 59")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_minutes(minutes: int) -> str:
    """``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day) for `sbatch --time`."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{clock}" if days else clock


def describe_seconds(seconds: int) -> str:
    """A short clock for people: ``42 s``, ``12 min``, ``2 h 30 min``."""
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    return describe_minutes(seconds // 60).replace(" minutes", " min").replace(" minute", " min")


def describe_minutes(minutes: int) -> str:
    """A duration for people: ``45 minutes``, ``2 h 30 min``, ``1 day 4 h``."""
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    return f"{hours} h" + (f" {mins} min" if mins else "")
