"""A workshop ordered from the trainers' web page (pure): the form's fields checked into the
argv of `factoryhub workshop create|end` — the same command, never a second implementation.

The hub service runs unprivileged, and creating or ending a workshop needs root (Unix
accounts, `sacctmgr`, reservations, archives). So the page previews a creation by running the
command itself with ``--dry-run`` (which reads only), and **queues** the real order; root's
`factoryhub workshop-orders` (a timer, or an admin by hand) checks each queued order again
with `parse_order` and runs the command. No text of the form reaches a shell: every field is
checked here, and the command gets them as separate arguments.

Admins order any workshop. A trainer (site.toml's [hub] trainers, or single sign-on's trainers'
group) orders a creation only with themselves among its trainers and within the site's bounds
(`[workshops] trainer_max_seats`, `trainer_max_gpu_hours`), and an end only of a workshop they
train (`check_trainer_order`); the page checks this when the order is made, and root again
before it runs one a trainer made.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from .course import COURSE_NAME
from .site import Site
from .workshop import MAX_SEATS, NAME, WorkshopRefused, parse_when

ACTIONS = ("create", "end")
ROLES = ("admin", "trainer")  # who ordered: an admin (any workshop) or a trainer (bounded)
MAX_COURSES = 5
MAX_TRAINERS = 10
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
ORDER_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}", re.ASCII)
_HOURS = re.compile(r"\d{1,6}(?:\.\d{1,2})?", re.ASCII)  # a GPU budget: 12, 7.5


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
    gpu_hours: str = ""  # the account's GPU budget as the form gave it; "": the command's own

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
        if self.gpu_hours:
            args += ["--gpu-hours", self.gpu_hours]
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
            "gpu_hours": self.gpu_hours,
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
    gpu_hours = _one(fields, "gpu_hours")
    if gpu_hours and not _HOURS.fullmatch(gpu_hours):
        raise OrderError("gpu_hours: a number of hours such as 40 or 7.5, or empty")
    return WorkshopOrder("create", name, courses, start, end, int(seats), trainers, gpu_hours)


@dataclass(frozen=True)
class TrainerBounds:
    """What a trainer may order (site.toml ``[workshops]``); admins are not bounded."""

    max_seats: int
    max_gpu_hours: float
    max_hours: float = 12.0  # a slot's length
    max_workshops: int = 3  # their workshops not yet ended

    @classmethod
    def of(cls, site: Site) -> TrainerBounds:
        w = site.workshops
        return cls(
            w.trainer_max_seats,
            w.trainer_max_gpu_hours,
            w.trainer_max_hours,
            w.trainer_max_workshops,
        )


def with_trainer(order: WorkshopOrder, trainer: str) -> WorkshopOrder:
    """A trainer's creation with the trainer first among its trainers (the page adds them)."""
    if order.action != "create" or trainer in order.trainers:
        return order
    if len(order.trainers) >= MAX_TRAINERS:
        raise OrderError(f"trainers: at most {MAX_TRAINERS}, you included")
    return replace(order, trainers=(trainer, *order.trainers))


def seat_gpus(order: WorkshopOrder, presets: Mapping[str, Mapping[str, object]]) -> int:
    """The GPUs a seat gets: the most any of the order's courses' presets asks for (a course
    not in the catalogue counts 0 here; the command itself refuses it)."""
    counts = [presets.get(course, {}).get("gpus", 0) for course in order.courses]
    return max([c for c in counts if isinstance(c, int) and not isinstance(c, bool)] or [0])


def slot_minutes(order: WorkshopOrder, now: datetime) -> int:
    """The slot's length from now or its start (as `plan_workshop` reckons it)."""
    start = max(parse_when(order.start, now), now.replace(microsecond=0))
    return max(int((parse_when(order.end, now) - start).total_seconds() // 60), 0)


def held_gpu_hours(order: WorkshopOrder, gpus_per_seat: int, now: datetime) -> float:
    """The GPU-hours the workshop's reservation holds back from everyone else: seats × GPUs
    × the slot, whatever budget the order names."""
    return order.seats * gpus_per_seat * slot_minutes(order, now) / 60


def gpu_hours(order: WorkshopOrder, gpus_per_seat: int, now: datetime) -> float:
    """The GPU budget the workshop's account gets: the order's own, else what its
    reservation holds (`held_gpu_hours`)."""
    if order.gpu_hours:
        return float(order.gpu_hours)
    return held_gpu_hours(order, gpus_per_seat, now)


def check_trainer_order(
    order: WorkshopOrder,
    trainer: str,
    bounds: TrainerBounds,
    *,
    gpus_per_seat: int,
    trains: Collection[str],
    now: datetime,
    open_workshops: int = 0,
) -> None:
    """`OrderError` with a sentence when trainer `trainer` may not order `order`: a creation
    without them among its trainers or over the site's bounds, an end of a workshop they do
    not train (`trains`: the names of the workshops whose trainers name them;
    `open_workshops`: how many of those are not yet ended)."""
    if order.action == "end":
        if order.name not in trains:
            raise OrderError(f"name: you are not a trainer of workshop {order.name}")
        return
    if trainer not in order.trainers:
        raise OrderError("trainers: a workshop you order has you among its trainers")
    if bounds.max_seats == 0:
        raise OrderError("this site's admins create its workshops; ask them (support)")
    if order.seats > bounds.max_seats:
        raise OrderError(
            f"seats: a trainer may order at most {bounds.max_seats} on this site; ask an"
            " admin for a larger workshop"
        )
    if open_workshops >= bounds.max_workshops:
        raise OrderError(
            f"you train {open_workshops} workshops not yet ended; a trainer may have at most"
            f" {bounds.max_workshops} on this site: end one first, or ask an admin"
        )
    if slot_minutes(order, now) > bounds.max_hours * 60:
        raise OrderError(
            f"end: a trainer's workshop lasts at most {bounds.max_hours:g} hours on this site;"
            " order a shorter slot, or ask an admin"
        )
    budget = gpu_hours(order, gpus_per_seat, now)
    if budget > bounds.max_gpu_hours:
        raise OrderError(
            f"gpu_hours: this workshop's budget would be {budget:g} GPU-hours; a trainer may"
            f" order at most {bounds.max_gpu_hours:g} on this site (fewer seats, a shorter"
            " slot or a smaller GPU budget), or ask an admin"
        )
    held = held_gpu_hours(order, gpus_per_seat, now)
    if held > bounds.max_gpu_hours:
        raise OrderError(
            f"seats: this workshop's reservation would hold {held:g} GPU-hours ({order.seats}"
            f" seats × {gpus_per_seat} GPUs × the slot), whatever its budget; a trainer may"
            f" hold at most {bounds.max_gpu_hours:g} on this site (fewer seats or a shorter"
            " slot), or ask an admin"
        )


def on_record(workshops: Mapping[str, object], now: datetime) -> dict[str, object]:
    """`check_order_rights`' view of the workshops on record: each one's trainers, and which
    are still open (not ended, nor past their slot) for a trainer's bound."""
    return {
        "trainers_of": {n: w.trainers for n, w in workshops.items()},
        "active": {n for n, w in workshops.items() if w.state == "active" and w.end_time > now},
    }


def check_order_rights(
    order: WorkshopOrder,
    by: str,
    role: str,
    bounds: TrainerBounds,
    *,
    presets: Mapping[str, Mapping[str, object]],
    trainers_of: Mapping[str, Collection[str]],
    now: datetime,
    active: Collection[str] | None = None,
) -> None:
    """Whether `by`, an admin or a trainer (`role`), may order `order`: an admin anything, a
    trainer as `check_trainer_order` says. `presets`: the catalogue's course presets;
    `trainers_of`: each workshop on record and its trainers; `active`: the names of those not
    yet ended, nor past their slot (None: every one on record)."""
    if role == "admin":
        return
    if role != "trainer":
        raise OrderError("only the site's trainers and admins order workshops")
    trains = {name for name, trainers in trainers_of.items() if by in trainers}
    check_trainer_order(
        order,
        by,
        bounds,
        gpus_per_seat=seat_gpus(order, presets),
        trains=trains,
        now=now,
        open_workshops=len(trains if active is None else trains & set(active)),
    )
