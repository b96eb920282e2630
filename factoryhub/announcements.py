"""Announcements: a short text from the site's admins, for everyone or for one partition's
users, shown on the hub's pages, in the spawn form and inside JupyterLab until it expires
(pure: the model and its checks; `servicedb` keeps them).

Two scopes are narrower: a **workshop**'s message (posted by its trainers from the cohort
page, `parse_workshop_message`) is shown to that workshop's seats only, and a note for one
**user** (e.g. "trainer T can now see your session") to that user only. Neither is shown on
the hub's pages or to anyone else: `current` leaves them out unless the viewer is named."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .estimate import SERVICE_NAME
from .site import Site
from .support import SupportError, clean_text

MAX_TEXT = 500
MAX_DAYS = 30
_LASTING = re.compile(r"(\d{1,5})\s*([mhd])")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class AnnouncementError(SupportError):
    """An announcement that cannot be posted; the message names the field."""


@dataclass(frozen=True)
class Announcement:
    """One announcement as kept (times in UTC)."""

    id: int
    text: str
    partition: str  # "" for everyone
    posted: datetime
    expires: datetime
    author: str
    workshop: str = ""  # a workshop's key (name@created): its seats only
    user: str = ""  # one user only

    @property
    def audience(self) -> str:
        if self.user:
            return f"user {self.user}"
        if self.workshop:
            return f"workshop {self.workshop.split('@', 1)[0]}"
        return f"users of the {self.partition} partition" if self.partition else "everyone"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "text": self.text,
            "partition": self.partition,
            "audience": self.audience,
            "posted": self.posted.isoformat(),
            "expires": self.expires.isoformat(),
            "author": self.author,
            "workshop": self.workshop.split("@", 1)[0],
        }


@dataclass(frozen=True)
class NewAnnouncement:
    """A checked request to post one."""

    text: str
    partition: str
    expires: datetime
    workshop: str = ""
    user: str = ""


def parse_lasting(value: str) -> timedelta:
    """How long an announcement lasts: ``30m``, ``2h``, ``3d``."""
    match = _LASTING.fullmatch(value.strip())
    if not match:
        raise AnnouncementError(f"for: {value[:20]!r} is not a duration such as 30m, 2h or 3d")
    return int(match.group(1)) * _UNIT[match.group(2)]


def _expiry(raw: Mapping, now: datetime) -> datetime:
    until, lasting = raw.get("until"), raw.get("for")
    if (until is None) == (lasting is None):
        raise AnnouncementError("give either until (a date and time) or for (e.g. 2h)")
    if lasting is not None:
        if not isinstance(lasting, str):
            raise AnnouncementError("for: a duration such as 30m, 2h or 3d")
        expires = now + parse_lasting(lasting)
    else:
        try:
            expires = datetime.fromisoformat(str(until)[:40])
        except ValueError:
            raise AnnouncementError(
                f"until: {str(until)[:40]!r} is not an ISO date and time"
            ) from None
        expires = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
    if expires <= now:
        raise AnnouncementError("until: that time has passed")
    if expires > now + timedelta(days=MAX_DAYS):
        raise AnnouncementError(f"until: at most {MAX_DAYS} days ahead")
    return expires.astimezone(UTC)


def parse_announcement(raw: object, site: Site, now: datetime) -> NewAnnouncement:
    """``{"text", "partition"?, "for" | "until"}`` checked against the site."""
    if not isinstance(raw, dict):
        raise AnnouncementError("expected a JSON object with text and for or until")
    if unknown := sorted(set(raw) - {"text", "partition", "for", "until"}):
        raise AnnouncementError(f"unknown field {unknown[0][:40]!r}")
    try:
        text = clean_text(raw.get("text"), "text", MAX_TEXT)
    except SupportError as exc:
        raise AnnouncementError(str(exc)) from None
    partition = raw.get("partition") or ""
    if partition and partition not in site.partitions:
        offered = ", ".join(site.partitions)
        raise AnnouncementError(f"partition: {str(partition)[:40]!r} is not one of {offered}")
    return NewAnnouncement(text.replace("\n", " "), partition, _expiry(raw, now))


def parse_workshop_message(
    raw: object, workshop: str, end: datetime, now: datetime
) -> NewAnnouncement:
    """A trainer's message to workshop `workshop` (its key): ``{"text"}``, shown to its seats
    until the workshop's slot ends (`end`, UTC)."""
    if not isinstance(raw, dict) or set(raw) - {"text"}:
        raise AnnouncementError("expected a JSON object with text only")
    try:
        text = clean_text(raw.get("text"), "text", MAX_TEXT)
    except SupportError as exc:
        raise AnnouncementError(str(exc)) from None
    if end <= now:
        raise AnnouncementError("this workshop's slot is over: nobody would see the message")
    return NewAnnouncement(text.replace("\n", " "), "", end, workshop=workshop)


def _for_viewer(a: Announcement, user: str | None, workshops: Iterable[str]) -> bool:
    if a.user:
        return a.user == user
    if a.workshop:
        return a.workshop in workshops
    return True


def current(
    announcements: Iterable[Announcement],
    now: datetime,
    partition: str | None = None,
    user: str | None = None,
    workshops: Iterable[str] = (),
) -> list[Announcement]:
    """Those not expired, for everyone or for `partition` (None: every partition), newest
    first; a workshop's only for its seats (`workshops`: the viewer's workshops' keys), a
    user's only for `user`."""
    workshops = set(workshops)
    shown = [
        a
        for a in announcements
        if a.expires > now
        and (not a.partition or partition is None or a.partition == partition)
        and _for_viewer(a, user, workshops)
    ]
    return sorted(shown, key=lambda a: a.posted, reverse=True)


def service_url(site: Site) -> str:
    """The hub service's public address, through the hub's proxy (for sessions and the CLI)."""
    return f"{site.hub.url.rstrip('/')}/services/{SERVICE_NAME}/"
