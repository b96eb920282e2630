"""Announcements: a short text from the site's admins, for everyone or for one partition's
users, shown on the hub's pages, in the spawn form and inside JupyterLab until it expires
(pure: the model and its checks; `servicedb` keeps them)."""

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

    @property
    def audience(self) -> str:
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
        }


@dataclass(frozen=True)
class NewAnnouncement:
    """A checked request to post one."""

    text: str
    partition: str
    expires: datetime


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


def current(
    announcements: Iterable[Announcement], now: datetime, partition: str | None = None
) -> list[Announcement]:
    """Those not expired, for everyone or for `partition` (None: every partition), newest
    first."""
    shown = [
        a
        for a in announcements
        if a.expires > now and (not a.partition or partition is None or a.partition == partition)
    ]
    return sorted(shown, key=lambda a: a.posted, reverse=True)


def service_url(site: Site) -> str:
    """The hub service's public address, through the hub's proxy (for sessions and the CLI)."""
    return f"{site.hub.url.rstrip('/')}/services/{SERVICE_NAME}/"
