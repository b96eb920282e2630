"""A learner's resource request: the only way one exists is `parse_request`.

Raw options come from the spawn form (lists of strings) or the REST API (`user_options` JSON).
Both are bounded in size, checked key by key against the site, and turned into a frozen
`ResourceRequest`, or rejected with a message that names the field and the limit. Nothing here
calls the scheduler; the live limits of the scheduler overlay the site's in a later step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from factoryhub.durations import (
    DurationError,
    describe_minutes,
    format_minutes,
    parse_minutes,
    parse_walltime,
)
from factoryhub.site import Partition, Site
from factoryhub.slurmoutput import Associations, QosLimits

MAX_OPTIONS_BYTES = 4096
FIELDS = (
    "partition",
    "cpus",
    "memory_gb",
    "gpus",
    "gpu_type",
    "walltime",
    "environment",
    "account",
    "qos",
    "reservation",
    "course",
)
_DIGITS = re.compile(r"\d{1,7}", re.ASCII)


class RequestError(ValueError):
    """A request that cannot be submitted; `str()` is the message shown to the learner."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QosLimitError(RequestError):
    """A request over a limit of its QoS (not of its partition): another QoS may take it."""


@dataclass(frozen=True)
class UserAccess:
    """What this learner may name: accounts and QoS (site or sacctmgr), live reservations;
    where they come from the accounting database (`accounting`), each QoS's limits too."""

    accounts: tuple[str, ...] = ()
    qos: tuple[str, ...] = ()
    reservations: tuple[str, ...] = ()
    accounting: bool = False
    qos_limits: tuple[QosLimits, ...] = ()


def access_for(
    site: Site, user: str, reservations: tuple = (), associations: Associations | None = None
) -> UserAccess:
    """The accounts, QoS and active reservations `user` may use (pure): accounts and QoS from
    the accounting database's `associations` where the site has one, from site.toml's
    [access] otherwise."""
    accounting = associations is not None
    if associations is None:
        associations = Associations(site.access.accounts_of(user), site.access.qos_of(user))
    return UserAccess(
        accounts=associations.accounts,
        qos=associations.qos,
        reservations=tuple(r.name for r in reservations if r.active and r.admits(user)),
        accounting=accounting,
        qos_limits=associations.limits,
    )


@dataclass(frozen=True)
class ResourceRequest:
    """What a session asks Slurm for; every value already checked against the site."""

    partition: str
    cpus: int
    memory_gb: int
    walltime_minutes: int
    environment: str
    gpus: int = 0
    gpu_type: str = ""
    account: str = ""
    qos: str = ""
    reservation: str = ""
    course: str = ""  # a published course whose preset this is, synced into the session

    def to_options(self) -> dict[str, object]:
        """The request as `user_options` (plain JSON) that `parse_request` reads back as is."""
        options = asdict(self)
        options["walltime"] = format_minutes(options.pop("walltime_minutes"))
        return options


def _single(value: object, field: str) -> object:
    """Form fields arrive as one-element lists; JSON values as themselves."""
    if isinstance(value, list):
        if len(value) != 1:
            raise RequestError(f"{field}: give exactly one value", field)
        return value[0]
    return value


def _integer(value: object, field: str, low: int, high: int, limit_text: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestError(f"{field}: expected a whole number", field)
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            raise RequestError(f"{field}: {value[:20]!r} is not a whole number", field)
        value = int(value.strip())
    if value < low:
        raise RequestError(f"{field}: at least {low}", field)
    if value > high:
        raise RequestError(f"{field}: {limit_text}", field)
    return value


def _choice(value: object, field: str, allowed: Mapping[str, object] | tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        names = ", ".join(sorted(allowed)) or "none"
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise RequestError(f"{field}: {shown!r} is not offered here (choose from: {names})", field)
    return value


def _walltime(value: object, max_text: str, partition: str, typed: bool = True) -> int:
    """Minutes of a walltime: one a person `typed` (form, REST, widget, course) in the forms
    nobody misreads; the site's own default as Slurm reads it."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RequestError("walltime: expected a time such as 01:00:00", "walltime")
    try:
        minutes = parse_walltime(value) if typed else parse_minutes(value)
    except DurationError as exc:
        raise RequestError(f"walltime: {exc}", "walltime") from None
    longest = parse_minutes(max_text)
    if minutes < 1:
        raise RequestError("walltime: at least 1 minute", "walltime")
    if minutes > longest:
        raise RequestError(
            f"walltime: the {partition} partition allows at most {describe_minutes(longest)}"
            f" ({max_text})",
            "walltime",
        )
    return minutes


def _gpu_type(value: object, gpus: int, partition: str, offered: tuple[str, ...]) -> str:
    """The GPU type: one the partition offers, and only with GPUs (empty: its first)."""
    if value in ("", None):
        return offered[0] if gpus and offered else ""
    if not offered:
        raise RequestError(
            f"gpu_type: the {partition} partition has no GPUs; choose a GPU partition", "gpu_type"
        )
    chosen = _choice(value, "gpu_type", offered)
    if not gpus:
        raise RequestError(
            f"gpu_type: {chosen} asked for with no GPUs; ask for at least 1 GPU or leave the"
            " GPU type empty",
            "gpu_type",
        )
    return chosen


def bounded_options(raw: object) -> dict[str, object]:
    """Reject options that are not a small JSON object of known keys, before reading them."""
    if not isinstance(raw, Mapping):
        raise RequestError("options must be a JSON object")
    try:
        size = len(json.dumps(raw, default=str))
    except (TypeError, ValueError):
        raise RequestError("options must be plain JSON values") from None
    if size > MAX_OPTIONS_BYTES:
        raise RequestError(f"options are too large ({size} bytes; at most {MAX_OPTIONS_BYTES})")
    unknown = sorted(str(key)[:40] for key in raw if key not in FIELDS)
    if unknown:
        raise RequestError(f"unknown option {unknown[0]!r} (known: {', '.join(FIELDS)})")
    return {key: _single(value, key) for key, value in raw.items()}


LIVE_FIELDS = ("account", "qos", "reservation")  # checked against what the scheduler says
_SLURM_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}", re.ASCII)


def without_live_fields(options: dict[str, object]) -> dict[str, object]:
    """`options` less the fields only the live scheduler can check (accounts and QoS from
    `sacctmgr`, reservations from `scontrol`), once their form is known to be a Slurm name:
    anything else is refused here, before any scheduler call."""
    for field in LIVE_FIELDS:
        value = options.get(field)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or not _SLURM_NAME.fullmatch(value):
            shown = value[:40] if isinstance(value, str) else type(value).__name__
            raise RequestError(f"{field}: {shown!r} is not a name Slurm uses", field)
    return {k: v for k, v in options.items() if k not in LIVE_FIELDS}


def _entitled(options: dict[str, object], field: str, allowed: tuple[str, ...]) -> str:
    """An account, QoS or reservation the user may name; the first allowed one by default
    (none for reservations, which are opt-in)."""
    default = allowed[0] if allowed and field != "reservation" else ""
    value = options.get(field, default)
    if value in ("", None) and (field == "reservation" or not allowed):
        return ""  # none named: Slurm's default (for accounts and QoS, the user's own)
    if not isinstance(value, str) or value not in allowed:
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        yours = ", ".join(allowed) or "none"
        raise RequestError(f"{field}: {shown!r} is not available to you (yours: {yours})", field)
    return value


def _course_preset(
    options: dict[str, object], courses: Mapping[str, Mapping[str, object]]
) -> dict[str, object]:
    """A course's preset under the learner's explicit choices; the name must be published."""
    name = options.get("course")
    if name in (None, ""):
        return options
    if not isinstance(name, str) or name not in courses:
        shown = name[:40] if isinstance(name, str) else type(name).__name__
        published = ", ".join(sorted(courses)) or "none"
        raise RequestError(f"course: {shown!r} is not in the catalogue ({published})", "course")
    return {**courses[name], **options}


@dataclass(frozen=True)
class DraftRequest:
    """A request read and checked against the site (pure, no scheduler call): every resource
    field final, the live fields (account, QoS, reservation) only known to be Slurm names.
    `resolve` holds them against what the scheduler says the learner may use."""

    partition: str
    cpus: int
    memory_gb: int
    walltime_minutes: int
    environment: str
    gpus: int
    gpu_type: str
    course: str
    named: Mapping[str, object]  # the live fields as given (absent: the default)

    @property
    def reservation(self) -> str:
        value = self.named.get("reservation")
        return value if isinstance(value, str) else ""

    def resolve(self, access: UserAccess, *, reservations_known: bool = True) -> ResourceRequest:
        """The request with its account, QoS and reservation checked against `access` (pure).
        With `reservations_known` False the reservation is left out (its check waits for the
        live reservations); accounts, QoS and QoS limits are checked all the same."""
        if access.accounting and not access.accounts:
            raise RequestError(
                "account: you have no Slurm account on this site yet; ask your support team"
                " to add you to a project",
                "account",
            )
        named = dict(self.named)
        if not reservations_known:
            named.pop("reservation", None)
        request = ResourceRequest(
            account=_entitled(named, "account", access.accounts),
            qos=_entitled(named, "qos", access.qos),
            reservation=_entitled(named, "reservation", access.reservations),
            partition=self.partition,
            cpus=self.cpus,
            memory_gb=self.memory_gb,
            walltime_minutes=self.walltime_minutes,
            environment=self.environment,
            gpus=self.gpus,
            gpu_type=self.gpu_type,
            course=self.course,
        )
        check_qos_limits(request, access.qos_limits)
        return request


def _workshops_only(name: str, site: Site) -> RequestError:
    others = ", ".join(site.learner_partitions()) or "none"
    return RequestError(
        f"partition: {name} is kept for workshops; only a workshop's seats start sessions"
        f" there (choose one of: {others})",
        "partition",
    )


def draft_request(
    raw: object,
    site: Site,
    courses: Mapping[str, Mapping[str, object]] | None = None,
    *,
    workshop_seat: bool = False,
) -> DraftRequest:
    """Read raw options once (form, REST, widget, course preset) and check every field the
    site alone can judge; raise `RequestError` naming the field. `courses` maps each published
    course to its preset; a request naming one starts from that preset. A partition kept for
    workshops (`workshops_only`) is refused unless the request is a `workshop_seat`'s."""
    options = _course_preset(bounded_options(raw), courses or {})
    defaults = site.session
    name = _choice(options.get("partition", defaults.partition), "partition", site.partitions)
    part = site.partition(name)
    if part.workshops_only and not workshop_seat:
        raise _workshops_only(name, site)
    cpus = _integer(
        options.get("cpus", defaults.cpus),
        "cpus",
        1,
        part.max_cpus,
        f"the {name} partition allows at most {part.max_cpus} CPUs per session",
    )
    memory = _integer(
        options.get("memory_gb", defaults.memory_gb),
        "memory_gb",
        1,
        part.max_memory_gb,
        f"the {name} partition allows at most {part.max_memory_gb} GB per session",
    )
    gpus = _integer(
        options.get("gpus", 0),
        "gpus",
        0,
        part.max_gpus,
        f"the {name} partition allows at most {part.max_gpus} GPUs per job"
        if part.max_gpus
        else f"the {name} partition has no GPUs; choose a GPU partition",
    )
    gpu_type = _gpu_type(options.get("gpu_type", ""), gpus, name, part.gpu_types)
    typed = "walltime" in options
    walltime = options.get("walltime", part.default_walltime or defaults.walltime)
    environment = _choice(
        options.get("environment", defaults.environment), "environment", site.environments
    )
    without_live_fields(options)  # the live fields' form: Slurm names, or refused here
    return DraftRequest(
        partition=name,
        cpus=cpus,
        memory_gb=memory,
        walltime_minutes=_walltime(walltime, part.max_walltime, name, typed),
        environment=environment,
        gpus=gpus,
        gpu_type=gpu_type,
        course=str(options.get("course") or ""),
        named={k: options[k] for k in LIVE_FIELDS if k in options},
    )


def parse_request(
    raw: object,
    site: Site,
    access: UserAccess | None = None,
    courses: Mapping[str, Mapping[str, object]] | None = None,
) -> ResourceRequest:
    """Turn raw options into a `ResourceRequest` or raise `RequestError`; missing keys default.

    `access` says which accounts, QoS and reservations the learner may name; without it only
    the site-wide ones ("*") are offered and no reservation. One `draft_request` and one
    `resolve`: callers that fetch the learner's access between the two use them directly.
    """
    return draft_request(raw, site, courses).resolve(access or access_for(site, ""))


def check_qos_limits(request: ResourceRequest, limits: tuple[QosLimits, ...]) -> None:
    """Raise `RequestError` when `request` exceeds a per-job limit of its QoS (pure)."""
    qos = request.qos
    limit = next((q for q in limits if q.name == qos), None)
    if limit is None:
        return
    checks = (
        ("walltime", request.walltime_minutes, limit.max_walltime_minutes),
        ("cpus", request.cpus, limit.max_cpus_per_job),
        ("gpus", request.gpus, limit.max_gpus_per_job),
        ("memory_gb", request.memory_gb * 1024, limit.max_memory_mb_per_job),
    )
    for field, asked, most in checks:
        if most is not None and asked > most:
            raise QosLimitError(
                f"{field}: the QoS {qos} allows at most {_amount(field, most)}", field
            )
    if limit.max_gpus_per_user is not None and request.gpus > limit.max_gpus_per_user:
        raise QosLimitError(
            f"gpus: the QoS {qos} allows at most {limit.max_gpus_per_user} GPUs at once per user",
            "gpus",
        )


def _amount(field: str, most: int) -> str:
    if field == "walltime":
        return f"{describe_minutes(most)} ({format_minutes(most)}) per job"
    if field == "memory_gb":
        return f"{most // 1024} GB per job"
    return f"{most} {'GPUs' if field == 'gpus' else 'CPUs'} per job"


@dataclass(frozen=True)
class Limits:
    """What one partition allows a job under one QoS: the lower of the two per limit."""

    cpus: int
    memory_gb: int
    gpus: int
    walltime_minutes: int

    def _gpus(self) -> str:
        return f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else "no GPUs"

    def label(self, name: str, part: Partition) -> str:
        return (
            f"{part.label or name} (up to {self.cpus} CPUs, {self._gpus()},"
            f" {describe_minutes(self.walltime_minutes)})"
        )


def effective_limits(part: Partition, qos: QosLimits | None) -> Limits:
    """The partition's per-job limits, lowered by the QoS's per-job limits where they are
    lower (pure): what the form offers is what the scheduler will accept."""
    walltime = parse_minutes(part.max_walltime)
    if qos is None:
        return Limits(part.max_cpus, part.max_memory_gb, part.max_gpus, walltime)

    def lower(own: int, other: int | None) -> int:
        return own if other is None else min(own, other)

    memory = None if qos.max_memory_mb_per_job is None else qos.max_memory_mb_per_job // 1024
    return Limits(
        cpus=lower(part.max_cpus, qos.max_cpus_per_job),
        memory_gb=lower(part.max_memory_gb, memory),
        gpus=lower(part.max_gpus, qos.max_gpus_per_job),
        walltime_minutes=lower(walltime, qos.max_walltime_minutes),
    )


def qos_label(name: str, access: UserAccess) -> str:
    """A QoS with its per-job limits from the accounting database, e.g. "normal (per job: at
    most 2 GPUs, 12 h)"."""
    limit = qos_limits_of(name, access)
    if limit is None:
        return name
    parts = []
    if limit.max_gpus_per_job is not None:
        parts.append(f"{limit.max_gpus_per_job} GPUs")
    if limit.max_cpus_per_job is not None:
        parts.append(f"{limit.max_cpus_per_job} CPUs")
    if limit.max_memory_mb_per_job is not None:
        parts.append(f"{limit.max_memory_mb_per_job // 1024} GB")
    if limit.max_walltime_minutes is not None:
        parts.append(describe_minutes(limit.max_walltime_minutes))
    return f"{name} (per job: at most {', '.join(parts)})" if parts else name


def qos_limits_of(name: str, access: UserAccess) -> QosLimits | None:
    """The per-job limits of the QoS `name` as the accounting database has them, if any."""
    return next((q for q in access.qos_limits if q.name == name), None)
