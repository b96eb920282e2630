"""A workshop ordered from the trainers' web page (pure): the form's fields checked into the
argv of `factoryhub workshop create|end` — the same command, never a second implementation.

The hub service runs unprivileged, and creating or ending a workshop needs root (Unix
accounts, `sacctmgr`, reservations, archives). So the page previews a creation by running the
command itself with ``--dry-run`` (which reads only), and **queues** the real order; root's
`factoryhub workshop-orders` (a timer, or an admin by hand) checks each queued order again
with `parse_order` and runs the command. No text of the form reaches a shell: every field is
checked here, and the command gets them as separate arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .course import COURSE_NAME
from .workshop import MAX_SEATS, NAME, WorkshopRefused, parse_when

ACTIONS = ("create", "end")
MAX_COURSES = 5
MAX_TRAINERS = 10
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
ORDER_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}", re.ASCII)


class OrderError(ValueError):
    """An order the page refuses; the message says which field and why."""


@dataclass(frozen=True)
class WorkshopOrder:
    action: str
    name: str
    courses: tuple[str, ...] = ()
    start: str = ""
    end: str = ""
    seats: int = 0
    trainers: tuple[str, ...] = ()

    def argv(self, site_path: str, dry_run: bool = False) -> list[str]:
        """The `factoryhub` command's arguments for this order."""
        head = ["workshop", "--site", site_path, self.action, self.name]
        if self.action == "end":
            return head
        args = [*head, "--start", self.start, "--end", self.end, "--seats", str(self.seats)]
        for course in self.courses:
            args += ["--course", course]
        for trainer in self.trainers:
            args += ["--trainer", trainer]
        return [*args, "--dry-run"] if dry_run else args

    def fields(self) -> dict[str, str]:
        """The order as the form's fields (what is queued; `parse_order` reads it back)."""
        return {
            "action": self.action,
            "name": self.name,
            "courses": " ".join(self.courses),
            "start": self.start,
            "end": self.end,
            "seats": str(self.seats),
            "trainers": " ".join(self.trainers),
        }


def _one(fields: Mapping[str, object], key: str) -> str:
    value = fields.get(key, "")
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else ""
    if not isinstance(value, str):
        raise OrderError(f"{key}: expected text")
    return value.strip()[:200]


def _names(text: str, pattern: re.Pattern, most: int, what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", text) if part))
    if len(names) > most:
        raise OrderError(f"{what}: at most {most}")
    for name in names:
        if not pattern.fullmatch(name):
            raise OrderError(f"{what}: {name[:40]!r} is not a name")
    return names


def parse_order(fields: Mapping[str, object], now: datetime) -> WorkshopOrder:
    """The form's (or a queued order's) fields as an order; `OrderError` says what is wrong."""
    action = _one(fields, "action")
    if action not in ACTIONS:
        raise OrderError(f"action: one of {', '.join(ACTIONS)}")
    name = _one(fields, "name")
    if not NAME.fullmatch(name):
        raise OrderError("name: 2 to 16 lower-case letters and digits, starting with a letter")
    if action == "end":
        return WorkshopOrder("end", name)
    courses = _names(_one(fields, "courses"), COURSE_NAME, MAX_COURSES, "courses")
    if not courses:
        raise OrderError("courses: name at least one published course")
    start, end = _one(fields, "start"), _one(fields, "end")
    for key, value in (("start", start), ("end", end)):
        try:
            parse_when(value, now)
        except WorkshopRefused as refused:
            raise OrderError(f"{key}: {refused.reasons[0]}") from None
    seats = _one(fields, "seats")
    if not seats.isascii() or not seats.isdigit() or not 1 <= int(seats) <= MAX_SEATS:
        raise OrderError(f"seats: a whole number from 1 to {MAX_SEATS}")
    trainers = _names(_one(fields, "trainers"), _USER, MAX_TRAINERS, "trainers")
    return WorkshopOrder("create", name, courses, start, end, int(seats), trainers)
