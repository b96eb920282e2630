"""Which idle sessions are stopped, and why (pure).

The loop, the hub's REST API and the stopping are jupyterhub-idle-culler's (a hub service,
`factoryhub.service.culler`); the decision is ours, through the culler's `cull_arbiter_hook`:
`cull_reason` reads the server model the hub gives the culler and site.toml's [culling]:

- trainers' and admins' sessions (`exempt_staff`), and the users, server names and
  reservations (workshops) [culling] lists, are never stopped. Staff are site.toml's [hub]
  trainers and admin_users (`staff_of`) and whom the hub itself makes so (`is_hub_staff`):
  JupyterHub admins, and single sign-on's trainers (the hub's trainers' group);
- a session holding GPUs is stopped after `gpu_idle_minutes` without activity, any other
  after `idle_minutes`: of two idle sessions started together, the GPU one goes first and its
  GPUs show as free in the next start estimate;
- any session older than `max_age_hours` (0: no limit).

Idle means no activity in the hub's record of the server: the proxy's traffic and what the
session reports (kernels, terminals, and in a GPU session a GPU busier than
`gpu_busy_percent`, `factoryhub.gpu_usage`).

Each stop is one `CullRecord`: logged by the culler, and kept for the learner, whose spawn
form says what was stopped and why (`cull_notice`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .durations import describe_minutes
from .identity import is_trainer_in
from .site import CullingSettings, Site

USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")  # the names a record file may carry
NOTICE_HOURS = 24.0  # how long the form tells a learner about a stopped session
KEEP_RECORDS = 20  # records kept per learner
RECORDS_DIR = "culls"  # in the hub's state directory: one file per learner


@dataclass(frozen=True)
class ServerView:
    """What the culler's server model says of one session."""

    user: str
    name: str
    gpus: int
    reservation: str
    inactive_minutes: float | None  # None: the hub knows no activity and no start
    age_minutes: float | None


def _minutes(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds() / 60


def server_view(server: Mapping, inactive: timedelta | None, now: datetime) -> ServerView:
    """A `ServerView` of the hub's server model (its ``full_name`` is ``user/server``, its
    ``user_options`` the checked request the spawner stored)."""
    user, _, name = str(server.get("full_name", "")).partition("/")
    options = server.get("user_options") or {}
    try:
        gpus = int(options.get("gpus") or 0)
    except (TypeError, ValueError):
        gpus = 0
    started = server.get("started")
    age = None
    if isinstance(started, str) and started:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
        age = now - start
    return ServerView(
        user=user,
        name=name,
        gpus=max(gpus, 0),
        reservation=str(options.get("reservation") or ""),
        inactive_minutes=_minutes(inactive),
        age_minutes=_minutes(age),
    )


def staff_of(site: Site) -> frozenset[str]:
    """The trainers and admins site.toml names ([hub] trainers, admin_users)."""
    return frozenset({*site.hub.trainers, *site.hub.admin_users})


def is_hub_staff(user_model: Mapping) -> bool:
    """Whether JupyterHub's user model (the REST API's) is an admin's, or a trainer's by the
    hub's trainers' group: how single sign-on's trainers and admins, whom site.toml cannot
    name, are known (`factoryhub.identity.hub_groups`; admins are also the hub's admins under
    PAM)."""
    groups = user_model.get("groups")
    trainer = isinstance(groups, list) and is_trainer_in(g for g in groups if isinstance(g, str))
    return user_model.get("admin") is True or trainer


def exemption(view: ServerView, rules: CullingSettings, staff: Iterable[str]) -> str | None:
    """Why this session is never stopped, or None."""
    if rules.exempt_staff and view.user in set(staff):
        return f"{view.user} is a trainer or admin"
    if view.user in rules.exempt_users:
        return f"{view.user} is exempt ([culling] exempt_users)"
    if view.name and view.name in rules.exempt_servers:
        return f"server {view.name} is exempt ([culling] exempt_servers)"
    if view.reservation and view.reservation in rules.exempt_reservations:
        return f"it runs in the exempt reservation {view.reservation}"
    return None


def _describe(minutes: float) -> str:
    return describe_minutes(max(1, round(minutes)))


def cull_reason(
    view: ServerView,
    rules: CullingSettings,
    staff: Iterable[str],
    granted: Iterable[Exemption] = (),
    now: datetime | None = None,
) -> str | None:
    """The sentence saying why this session is stopped now, or None to keep it (`granted`:
    exemptions trainers and admins gave, in force at `now`)."""
    if not rules.enabled or exemption(view, rules, staff) is not None:
        return None
    if now is not None and any(e.covers(view, now) for e in granted):
        return None
    idle = view.inactive_minutes
    if idle is not None and view.gpus and idle >= rules.gpu_idle_minutes:
        gpus = f"{view.gpus} GPU{'s' if view.gpus != 1 else ''}"
        return (
            f"it held {gpus} and was idle for {_describe(idle)} (sessions with GPUs are"
            f" stopped after {_describe(rules.gpu_idle_minutes)} idle, so others can use them)"
        )
    if idle is not None and idle >= rules.idle_minutes:
        return (
            f"it was idle for {_describe(idle)} (sessions are stopped after"
            f" {_describe(rules.idle_minutes)} idle)"
        )
    age = view.age_minutes
    if rules.max_age_hours and age is not None and age >= rules.max_age_hours * 60:
        return (
            f"it ran for {_describe(age)}, the longest a session may run here"
            f" ({_describe(rules.max_age_hours * 60)})"
        )
    return None


@dataclass(frozen=True)
class CullRecord:
    """One stopped session: who, which server, when (ISO, UTC) and why."""

    user: str
    server: str
    at: str
    reason: str
    gpus: int = 0

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_line(cls, line: str) -> CullRecord | None:
        """A record of a records file; None for a line that is not one."""
        try:
            data = json.loads(line)
            record = cls(**{k: data[k] for k in ("user", "server", "at", "reason", "gpus")})
            datetime.fromisoformat(record.at)
        except (ValueError, KeyError, TypeError):
            return None
        return record


def records_text(lines: Iterable[str], record: CullRecord) -> str:
    """A learner's records file with `record` added: the last `KEEP_RECORDS` lines."""
    kept = [line for line in lines if line.strip()][-(KEEP_RECORDS - 1) :]
    return "\n".join([*kept, record.to_line()]) + "\n"


def cull_notice(lines: Iterable[str], now: datetime, hours: float = NOTICE_HOURS) -> str:
    """What the spawn form tells the learner about their last stopped session, if it was
    stopped within `hours` ("" otherwise)."""
    records = [r for r in map(CullRecord.from_line, lines) if r is not None]
    if not records:
        return ""
    last = records[-1]
    at = datetime.fromisoformat(last.at)
    if now - at > timedelta(hours=hours):
        return ""
    server = f"Your session {last.server!r}" if last.server else "Your last session"
    local = at.astimezone().strftime("%H:%M")
    return (
        f"{server} was stopped at {local} because {last.reason}. Notebooks saved before"
        " then are in your home; start again when you need it."
    )


def records_path(site: Site, user: str) -> Path | None:
    """Where `user`'s stopped sessions are recorded (None for a name no file may carry)."""
    if not USER_NAME.fullmatch(user):
        return None
    return Path(site.hub.state_dir) / RECORDS_DIR / f"{user}.jsonl"


def read_records(site: Site, user: str) -> list[str]:
    """The lines of `user`'s records (none when there are none or the file cannot be read)."""
    path = records_path(site, user)
    if path is None:
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(fd, encoding="utf-8", errors="replace") as records:
        return records.read(64 * 1024).splitlines()


def write_record(site: Site, record: CullRecord) -> None:
    """Add `record` to its learner's file (written aside and renamed: never half a file)."""
    path = records_path(site, record.user)
    if path is None:
        return
    path.parent.mkdir(mode=0o700, exist_ok=True)
    text = records_text(read_records(site, record.user), record)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


EXEMPTIONS_FILE = "exemptions.json"  # in the records' folder: sessions kept for a while
MAX_EXEMPT_HOURS = 72


class ExemptionError(ValueError):
    """An exemption that cannot be granted; the message says why."""


@dataclass(frozen=True)
class Exemption:
    """A trainer's or admin's word that one learner's session (or all of them: server "*")
    is not stopped until `until` (ISO, UTC)."""

    user: str
    server: str
    until: str
    by: str

    def covers(self, view: ServerView, now: datetime) -> bool:
        if datetime.fromisoformat(self.until) <= now or self.user != view.user:
            return False
        return self.server in ("*", view.name)


_SERVER = re.compile(r"\*|[A-Za-z0-9_-]{0,40}", re.ASCII)


def new_exemption(raw: object, by: str, now: datetime) -> Exemption:
    """An exemption from a request's JSON ``{"user", "server"?, "hours"}`` (checked)."""
    if not isinstance(raw, dict) or set(raw) - {"user", "server", "hours"}:
        raise ExemptionError('send {"user": NAME, "server": NAME or "*", "hours": N}')
    user, server, hours = raw.get("user"), raw.get("server", "*"), raw.get("hours")
    if not isinstance(user, str) or not USER_NAME.fullmatch(user):
        raise ExemptionError("user: not a user name")
    if not isinstance(server, str) or not _SERVER.fullmatch(server):
        raise ExemptionError('server: a server name, "" for the default one, or "*"')
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise ExemptionError(f"hours: a number from 1 to {MAX_EXEMPT_HOURS}")
    if not 0 < hours <= MAX_EXEMPT_HOURS:
        raise ExemptionError(f"hours: a number from 1 to {MAX_EXEMPT_HOURS}")
    return Exemption(user, server, (now + timedelta(hours=hours)).isoformat(), by)


def parse_exemptions(text: str) -> list[Exemption]:
    """The exemptions file (a JSON list); anything unreadable counts as none."""
    try:
        items = json.loads(text or "[]")
        found = [Exemption(*(str(i[k]) for k in ("user", "server", "until", "by"))) for i in items]
        for item in found:
            datetime.fromisoformat(item.until)  # a broken date: the file counts as none
        return found
    except (ValueError, TypeError, KeyError):
        return []


def exemptions_text(current: Iterable[Exemption], added: Exemption, now: datetime) -> str:
    """The file with `added`, and without those that have run out (nor, for a learner's own
    "keep", their earlier keep of the same server: pressing it again replaces it)."""
    kept = [
        e
        for e in current
        if datetime.fromisoformat(e.until) > now
        and not (added.by == added.user and (e.user, e.server, e.by) == _key(added))
    ]
    return json.dumps([asdict(e) for e in [*kept, added]], indent=1)


def exemptions_path(site: Site) -> Path:
    return Path(site.hub.state_dir) / RECORDS_DIR / EXEMPTIONS_FILE


def read_exemptions(site: Site) -> list[Exemption]:
    try:
        fd = os.open(exemptions_path(site), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(fd, encoding="utf-8", errors="replace") as found:
        return parse_exemptions(found.read(256 * 1024))


def add_exemption(site: Site, exemption: Exemption, now: datetime) -> None:
    """Grant `exemption` (written aside and renamed, like the records)."""
    path = exemptions_path(site)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    text = exemptions_text(read_exemptions(site), exemption, now)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


def _key(exemption: Exemption) -> tuple[str, str, str]:
    return exemption.user, exemption.server, exemption.by


@dataclass(frozen=True)
class IdleOutlook:
    """When the culler would stop one session if nothing happens, as the session's JupyterLab
    is told: `rule` "gpu" or "idle" (which limit applies; "" when it is never stopped for
    idleness, `exempt` saying why), the limit and the warning lead, the seconds left (None:
    the hub knows no activity yet) and the end of the latest keep or exemption covering it."""

    rule: str
    gpus: int
    limit_minutes: float
    warn_minutes: float
    seconds_left: float | None
    kept_until: str = ""
    exempt: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def idle_limit(view: ServerView, rules: CullingSettings) -> tuple[str, float]:
    """The idle rule that stops this session and its limit in minutes."""
    if view.gpus:
        return "gpu", rules.gpu_idle_minutes
    return "idle", rules.idle_minutes


def idle_outlook(
    view: ServerView,
    rules: CullingSettings,
    staff: Iterable[str],
    granted: Iterable[Exemption],
    now: datetime,
) -> IdleOutlook:
    """`view`'s outlook under `cull_reason`'s idle rules: it is stopped once idle for its
    limit and past every keep or exemption covering it (whichever comes later)."""
    rule, limit = idle_limit(view, rules)
    never = exemption(view, rules, staff) or ("" if rules.enabled else "culling is off")
    if never:
        return IdleOutlook("", view.gpus, limit, rules.warn_minutes, None, exempt=never)
    covering = [e.until for e in granted if e.covers(view, now)]
    kept_until = max(covering, key=datetime.fromisoformat) if covering else ""
    if view.inactive_minutes is None:
        return IdleOutlook(rule, view.gpus, limit, rules.warn_minutes, None, kept_until)
    idle_end = now + timedelta(minutes=limit - view.inactive_minutes)
    stop = max(idle_end, datetime.fromisoformat(kept_until)) if kept_until else idle_end
    left = max(0.0, (stop - now).total_seconds())
    return IdleOutlook(rule, view.gpus, limit, rules.warn_minutes, left, kept_until)


def keep_session(view: ServerView, rules: CullingSettings, now: datetime) -> Exemption:
    """A learner's own "Keep my session": their server kept for one more idle period of its
    rule, as if they had just been active (granted by themselves; `exemptions_text` replaces
    their earlier keep of the same server)."""
    _, limit = idle_limit(view, rules)
    return Exemption(view.user, view.name, (now + timedelta(minutes=limit)).isoformat(), view.user)
