"""What Slurm's commands print, as data: the formats FactoryHub asks for, the errors it
classifies, and pure parsers (tested with real Slurm output, no Slurm needed)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .durations import DurationError, parse_minutes

_UNAVAILABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "zero bytes were transmitted",
    "transport endpoint is not connected",
    "connection refused",
    "slurm_receive_msg",
    "rate limit",
    "communication connection failure",
)


class SlurmError(RuntimeError):
    """Slurm refused or failed a command; the message is Slurm's own, trimmed."""


class SchedulerUnavailable(SlurmError):
    """The controller could not be reached or did not answer in time: state unknown, keep."""


class UnknownJob(SlurmError):
    """The controller answered and does not know the job (it left the queue long ago)."""


@dataclass(frozen=True)
class JobInfo:
    """What the hub knows of one job (from `squeue --json`, see `factoryhub.jobrecords`).
    `name` and `comment` are set by the job's owner: untrusted text."""

    job_id: str
    state: str
    reason: str
    nodes: str
    name: str
    user: str
    time_left: str
    start: str  # expected or actual start, local ISO time, or "N/A"
    comment: str
    submit: str = "N/A"
    end: str = "N/A"  # when the job ends (its walltime), local ISO time


@dataclass(frozen=True)
class Completed:
    """A finished command."""

    returncode: int
    stdout: str
    stderr: str


def classify_failure(argv: list[str], result: Completed) -> SlurmError:
    """The error a failed Slurm command means; pure, tested with real Slurm messages."""
    text = (result.stderr or result.stdout).strip()
    lowered = text.lower()
    message = f"{Path(argv[0]).name} failed (exit {result.returncode}): {text[:500]}"
    if "invalid job id specified" in lowered:
        return UnknownJob(message)
    if not text or any(marker in lowered for marker in _UNAVAILABLE):
        return SchedulerUnavailable(message if text else f"{message}no output")
    return SlurmError(message)


_JOB_ID = re.compile(r"^(\d+)(;[\w.-]+)?$")


def parse_job_id(text: str) -> str:
    """The job id from `sbatch --parsable` output (``123`` or ``123;cluster``)."""
    match = _JOB_ID.match(text.strip())
    if not match:
        raise SlurmError(f"sbatch printed no job id: {text.strip()[:200]!r}")
    return match.group(1)


@dataclass(frozen=True)
class QosLimits:
    """One QoS's limits as `sacctmgr show qos` has them; None where there is no limit."""

    name: str
    max_walltime_minutes: int | None = None
    max_cpus_per_job: int | None = None
    max_gpus_per_job: int | None = None
    max_memory_mb_per_job: int | None = None
    max_gpus_per_user: int | None = None


@dataclass(frozen=True)
class Associations:
    """The Slurm accounts and QoS a user may charge, as the accounting database has them: the
    user's defaults first, and the limits of each QoS named."""

    accounts: tuple[str, ...] = ()
    qos: tuple[str, ...] = ()
    limits: tuple[QosLimits, ...] = ()

    def limits_of(self, qos: str) -> QosLimits | None:
        return next((q for q in self.limits if q.name == qos), None)


def _defaults_first(names: dict[str, None], default: str) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda name: name != default))


def parse_associations(text: str) -> Associations:
    """`sacctmgr --noheader --parsable2 show user withassoc where name=<u>
    format=DefaultAccount,Account,QOS,DefaultQOS`: one row per association, its QoS
    comma-separated; names kept once, in order, the user's default account and QoS first."""
    accounts: dict[str, None] = {}
    qos: dict[str, None] = {}
    default_account = default_qos = ""
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        default_account, account, names, default_qos = fields
        if account:
            accounts[account] = None
        qos.update(dict.fromkeys(n for n in names.split(",") if n))
    return Associations(
        _defaults_first(accounts, default_account), _defaults_first(qos, default_qos)
    )


def parse_all_associations(text: str) -> dict[str, Associations]:
    """`sacctmgr --noheader --parsable2 show user withassoc
    format=User,DefaultAccount,Account,QOS,DefaultQOS` for every user: user → associations."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        user, bar, rest = line.strip().partition("|")
        if user and bar:
            rows.setdefault(user, []).append(rest)
    return {user: parse_associations("\n".join(lines)) for user, lines in rows.items()}


_MEMORY_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_tres(text: str) -> dict[str, int]:
    """A TRES list such as ``cpu=8,gres/gpu=2,mem=16G`` as numbers (memory in MB); entries
    that are not numbers are left out (pure)."""
    tres: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        match = re.fullmatch(r"(\d+)([KMGT]?)", value.strip())
        if not name or not match:
            continue
        number, unit = int(match.group(1)), match.group(2)
        tres[name.strip()] = int(number * _MEMORY_MB[unit]) if name == "mem" else number
    return tres


QOS_FORMAT = "format=Name,MaxWall,MaxTRES,MaxTRESPU"


def parse_qos_limits(text: str) -> tuple[QosLimits, ...]:
    """`sacctmgr --noheader --parsable2 show qos format=Name,MaxWall,MaxTRES,MaxTRESPU`."""
    limits = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4 or not fields[0]:
            continue
        name, wall, per_job, per_user = fields
        job, user = parse_tres(per_job), parse_tres(per_user)
        limits.append(
            QosLimits(
                name=name,
                max_walltime_minutes=_minutes_or_none(wall),
                max_cpus_per_job=job.get("cpu"),
                max_gpus_per_job=job.get("gres/gpu"),
                max_memory_mb_per_job=job.get("mem"),
                max_gpus_per_user=user.get("gres/gpu"),
            )
        )
    return tuple(limits)


def _minutes_or_none(text: str) -> int | None:
    try:
        return parse_minutes(text) if text.strip() else None
    except DurationError:
        return None


# salloc's own line, whole (as fh-act-as's `granted_job` reads it): the first such line wins
_GRANTED = re.compile(r"^salloc: Granted job allocation ([0-9]+)$", re.MULTILINE)


def parse_allocation(text: str) -> str | None:
    """The job id from `salloc`'s "Granted job allocation N", None when there is none."""
    match = _GRANTED.search(text)
    return match.group(1) if match else None


def parse_position(text: str, job_id: str) -> int | None:
    """Where `job_id` is in a priority-sorted list of job ids (1-based), None if absent."""
    ids = text.split()
    return ids.index(job_id) + 1 if job_id in ids else None


def parse_ping(text: str) -> bool:
    """True when `scontrol ping` reports a controller UP."""
    return bool(re.search(r"\bis UP\b", text))


def parse_node_addresses(text: str) -> dict[str, str]:
    """NodeName → NodeAddr from `scontrol show node --oneliner`."""
    addresses: dict[str, str] = {}
    for line in text.splitlines():
        fields = parse_fields(line)
        if "NodeName" in fields:
            addresses[fields["NodeName"]] = fields.get("NodeAddr") or fields["NodeName"]
    return addresses


@dataclass(frozen=True)
class UserJob:
    """One of a learner's jobs as `squeue` lists it."""

    job_id: str
    state: str
    reason: str
    nodes: str
    name: str
    partition: str
    cpus: str
    tres: str  # generic resources per node, e.g. "gres:gpu:h100:2" or "N/A"
    time_used: str
    time_limit: str
    time_left: str
    start: str
    submit: str
    qos: str = ""

    @property
    def gpus(self) -> int:
        return gpus_of(self.tres)[0]


_GRES = re.compile(r"gpu(?::([A-Za-z0-9_.-]+))?:(\d+)")


def gpus_of(tres: str) -> tuple[int, str]:
    """GPU count and type from squeue's %b (e.g. ``gres:gpu:h100:2``, ``gres/gpu=1``)."""
    match = _GRES.search(tres.replace("gres/gpu=", "gpu:").replace("gres:", ""))
    if not match:
        return 0, ""
    return int(match.group(2)), match.group(1) or ""


def parse_fields(text: str) -> dict[str, str]:
    """`Key=Value` pairs of one `scontrol show … --oneliner` line."""
    return dict(re.findall(r"(\w+)=(\S*)", text))


def parse_consumed_energy(text: str) -> dict[str, float]:
    """JobID → joules from `sacct --parsable2 --format=JobID,ConsumedEnergyRaw`."""
    energy: dict[str, float] = {}
    for line in text.splitlines():
        job_id, _, joules = line.partition("|")
        if job_id.isdigit() and joules.strip().isdigit():
            energy[job_id] = float(joules)
    return energy
