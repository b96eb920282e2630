"""A workshop on record: what `workshop create` made (the plan, the access code's hash, its
state), and what a seat's session may be (the locked preset). Pure.

The record is written by root (`factoryhub workshop …`) and read by the hub (join, the lock)
and the hub service (the trainers' pages): it holds the codes' salted hashes, never a code.

Coming back to a seat: at join the hub gives each learner a **rejoin key** for their seat
(`rejoin_key`: an HMAC of the claim under a secret only the hub keeps, so the hub can show it
again to the seat and check it, and stores no key). With it, from any browser, the learner
gets the same seat and home back; the workshop's code and a display name alone never do. With
per-seat codes, a seat's own code is its rejoin key too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from .durations import DurationError, format_minutes, parse_walltime
from .request import RequestError
from .workshop import MIN_LEFT_MINUTES, TIME_FORMAT, SeatResources, WorkshopPlan, account_name

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud in a room
CODE_LENGTH = 10  # ~50 bits: guessing over HTTP is hopeless, so one fast hash suffices
_DISPLAY_NAME_MAX = 40
STATES = ("active", "ended", "purged")


class JoinRefused(ValueError):
    """A join the hub will not grant; `str()` is the sentence shown on the join page."""


def new_code(choice=secrets.choice) -> str:
    """A fresh access code, `XXXXX-XXXXX`."""
    raw = "".join(choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalised_code(text: str) -> str:
    """What a person typed, as the code is compared: capitals, no spaces or dashes."""
    return re.sub(r"[\s-]", "", text[:64]).upper()


def code_hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{normalised_code(code)}".encode()).hexdigest()


def seat_code_salt(salt: str, seat: str) -> str:
    """Each seat's code is hashed with the record's salt and the seat's name."""
    return f"{salt}:{seat}"


def _in_alphabet(digest: bytes) -> str:
    number = int.from_bytes(digest, "big")
    letters = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[digit])
    raw = "".join(letters)
    return f"{raw[:5]}-{raw[5:]}"


def rejoin_key(secret: str, workshop_key: str, seat: str, claimed: str) -> str:
    """The seat's rejoin key, `XXXXX-XXXXX`: the same for the same claim, unguessable without
    the hub's `secret` (a new workshop, or a new claim of the seat, gives another key)."""
    message = f"rejoin|{workshop_key}|{seat}|{claimed}".encode()
    return _in_alphabet(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def rejoin_keys_match(key: str, typed: str) -> bool:
    return bool(typed) and hmac.compare_digest(normalised_code(key), normalised_code(typed))


def display_name(text: str) -> str:
    """A learner's name for the trainers' pages: 1 to 40 printable characters, no control or
    format characters (escaped wherever it is shown, but never a line break in a CSV)."""
    value = " ".join(text.split())
    if not value:
        raise JoinRefused("Enter the name the trainers should see (your first name will do).")
    if len(value) > _DISPLAY_NAME_MAX:
        raise JoinRefused(f"Your name may have at most {_DISPLAY_NAME_MAX} characters.")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise JoinRefused("Your name may only have letters, digits, spaces and punctuation.")
    return value


@dataclass(frozen=True)
class Workshop:
    """A workshop as kept on record."""

    name: str
    hub_id: str
    courses: tuple[str, ...]
    start: str  # TIME_FORMAT, local time
    end: str
    seats: tuple[str, ...]
    partition: str
    cpus: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    trainers: tuple[str, ...]
    cpu_minutes: int
    gpu_minutes: int
    presets: dict[str, dict[str, object]] = field(default_factory=dict)
    code_salt: str = ""
    code_sha256: str = ""  # "" with per-seat codes only: no code admits to any seat
    codes: str = "workshop"  # or "per-seat"
    seat_code_sha256: dict[str, str] = field(default_factory=dict)  # seat -> its code's hash
    pooled: bool = False  # the seats are the site's pool accounts: purge returns them
    state: str = "active"  # active, ended, purged
    created: str = ""
    ended: str = ""

    @property
    def account(self) -> str:
        return account_name(self.name)

    @property
    def reservation(self) -> str:
        return account_name(self.name)

    @property
    def key(self) -> str:
        """This workshop, not an earlier one of the same name (seat claims are kept by it)."""
        return f"{self.name}@{self.created}"

    @property
    def start_time(self) -> datetime:
        return datetime.strptime(self.start, TIME_FORMAT)

    @property
    def end_time(self) -> datetime:
        return datetime.strptime(self.end, TIME_FORMAT)

    def code_matches(self, code: str) -> bool:
        return bool(self.code_sha256) and hmac.compare_digest(
            code_hash(code, self.code_salt), self.code_sha256
        )

    def seat_of_code(self, code: str) -> str | None:
        """The seat whose own code `code` is (per-seat codes), None for any other text."""
        found = None
        for seat, digest in self.seat_code_sha256.items():  # every one compared: no timing
            if hmac.compare_digest(code_hash(code, seat_code_salt(self.code_salt, seat)), digest):
                found = seat
        return found if found in self.seats else None

    def with_state(self, state: str, when: datetime) -> Workshop:
        return replace(self, state=state, ended=self.ended or when.strftime(TIME_FORMAT))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def from_plan(
    plan: WorkshopPlan,
    hub_id: str,
    code: str,
    salt: str,
    now: datetime,
    seat_codes: Mapping[str, str] | None = None,
) -> Workshop:
    """The record of `plan`: `code` the workshop's ("" with per-seat codes only), `seat_codes`
    each seat's own (per-seat codes), both kept as salted hashes."""
    r: SeatResources = plan.resources
    seat_codes = seat_codes or {}
    return Workshop(
        name=plan.name,
        hub_id=hub_id,
        courses=plan.courses,
        start=plan.start.strftime(TIME_FORMAT),
        end=plan.end.strftime(TIME_FORMAT),
        seats=plan.seats,
        partition=r.partition,
        cpus=r.cpus,
        memory_gb=r.memory_gb,
        gpus=r.gpus,
        walltime_minutes=r.walltime_minutes,
        trainers=plan.trainers,
        cpu_minutes=plan.cpu_minutes,
        gpu_minutes=plan.gpu_minutes,
        presets=plan.presets,
        code_salt=salt,
        code_sha256=code_hash(code, salt) if code else "",
        codes=plan.codes,
        seat_code_sha256={
            seat: code_hash(seat_codes[seat], seat_code_salt(salt, seat))
            for seat in plan.seats
            if seat in seat_codes
        },
        pooled=plan.pooled,
        created=now.strftime(TIME_FORMAT),
    )


def workshop_from_json(text: str) -> Workshop:
    data = json.loads(text)
    for key in ("courses", "seats", "trainers"):
        data[key] = tuple(data.get(key, ()))
    known = {f for f in Workshop.__dataclass_fields__}
    return Workshop(**{k: v for k, v in data.items() if k in known})


# -- the locked preset -----------------------------------------------------------------------

LOCKED_FIELDS = ("partition", "cpus", "memory_gb", "gpus", "walltime", "environment")


class LockRefused(RequestError):
    """A seat's request that differs from the workshop's preset; `field` names the field
    (a `RequestError`: the spawner refuses it as any request, HTTP 400 with the sentence)."""


def locked_options(
    workshop: Workshop, options: Mapping[str, object], now: datetime
) -> dict[str, object]:
    """The only request a seat may make: its course's preset (the workshop's first course
    unless another of its courses is named), on the workshop's reservation, charged to its
    account, the walltime cut to what is left of the slot. A field the learner sent that
    differs is refused with a sentence; none sent is filled in."""
    if workshop.state != "active":
        raise LockRefused(f"The workshop {workshop.name} has ended; its seats are closed.")
    course = options.get("course") or workshop.courses[0]
    if course not in workshop.presets:
        ours = ", ".join(workshop.courses)
        raise LockRefused(
            f"course: this seat of workshop {workshop.name} runs its courses only ({ours})",
            "course",
        )
    left = int((workshop.end_time - now).total_seconds() // 60)
    if left < MIN_LEFT_MINUTES:
        raise LockRefused(f"The workshop {workshop.name} is over: its slot has ended.")
    if now < workshop.start_time:
        raise LockRefused(
            f"The workshop {workshop.name} starts at {workshop.start_time:%H:%M}; start your"
            " session then."
        )
    preset = dict(workshop.presets[course])
    preset_minutes = _minutes(preset.get("walltime"), workshop.walltime_minutes)
    locked = {**preset, "walltime": format_minutes(min(preset_minutes, left))}
    locked.update(course=course, account=workshop.account, reservation=workshop.reservation, qos="")
    for key in LOCKED_FIELDS:
        sent = options.get(key)
        if sent in (None, ""):
            continue
        if key == "walltime":
            same = _minutes(sent, -1) in (preset_minutes, min(preset_minutes, left))
        else:
            same = str(sent) == str(preset.get(key))
        if not same:
            raise LockRefused(
                f"{key}: a workshop seat runs the course's preset ({key} = {preset.get(key)});"
                f" it cannot be changed (asked for {str(sent)[:40]!r})",
                key,
            )
    for key in ("account", "reservation", "qos", "gpu_type"):
        sent = options.get(key)
        if sent not in (None, "") and sent != locked.get(key):
            raise LockRefused(
                f"{key}: a workshop seat is charged to {workshop.account} on its reservation;"
                f" {key} cannot be chosen",
                key,
            )
    if not locked["qos"]:
        del locked["qos"]
    return locked


def _minutes(walltime: object, default: int) -> int:
    try:
        return parse_walltime(str(walltime))
    except DurationError:
        return default
