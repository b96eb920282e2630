"""The hub service's own database (SQLite in the hub's state directory): support tickets and
announcements. The hub service (account `factoryhub`) writes it; the hub's spawn form, run by
the same account, only reads the announcements. Every value goes in as a bound parameter."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .announcements import Announcement, NewAnnouncement, current
from .site import Site
from .sqlitefiles import create_private, transaction
from .support import SupportContext, SupportRequest, parse_context

DB_NAME = "factoryhub-service.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    text TEXT NOT NULL,
    context TEXT NOT NULL,
    mailed INTEGER NOT NULL DEFAULT 0,
    answer TEXT NOT NULL DEFAULT '',
    answered_by TEXT NOT NULL DEFAULT '',
    answered_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tickets_user ON tickets (user);
CREATE TABLE IF NOT EXISTS announcements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    partition TEXT NOT NULL,
    posted TEXT NOT NULL,
    expires TEXT NOT NULL,
    author TEXT NOT NULL
);
"""
# added later (a workshop's or a user's announcements): columns an older file lacks
_ANNOUNCEMENT_SCOPES = ("workshop", "user")


def db_path(site: Site) -> Path:
    return Path(site.hub.state_dir) / DB_NAME


@dataclass(frozen=True)
class Ticket:
    """A support request as kept, with its number, status and answer."""

    number: int
    user: str
    created: datetime
    status: str
    request: SupportRequest
    mailed: bool
    answer: str = ""
    answered_by: str = ""
    answered_at: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "user": self.user,
            "created": self.created.isoformat(),
            "status": self.status,
            "mailed": self.mailed,
            "answer": self.answer,
            "answered_by": self.answered_by,
            "answered_at": self.answered_at,
            **self.request.to_json(),
        }


def _ticket(row: sqlite3.Row) -> Ticket:
    try:
        context = parse_context(json.loads(row["context"]))
    except ValueError:  # kept by an older version: shown without it
        context = SupportContext()
    return Ticket(
        number=row["number"],
        user=row["user"],
        created=datetime.fromisoformat(row["created"]),
        status=row["status"],
        request=SupportRequest(row["text"], context),
        mailed=bool(row["mailed"]),
        answer=row["answer"],
        answered_by=row["answered_by"],
        answered_at=row["answered_at"],
    )


def _announcement(row: sqlite3.Row) -> Announcement:
    columns = set(row.keys())  # a file the service has not yet given the scope columns
    return Announcement(
        id=row["id"],
        text=row["text"],
        partition=row["partition"],
        posted=datetime.fromisoformat(row["posted"]),
        expires=datetime.fromisoformat(row["expires"]),
        author=row["author"],
        workshop=row["workshop"] if "workshop" in columns else "",
        user=row["user"] if "user" in columns else "",
    )


class ServiceDB:
    """Tickets and announcements in one SQLite file, created private (0600) on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        create_private(self.path)
        with self._db() as db:
            db.executescript(_SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(announcements)")}
            for column in _ANNOUNCEMENT_SCOPES:
                if column not in have:
                    db.execute(
                        f"ALTER TABLE announcements ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
                    )

    def _db(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, rows=True)

    # tickets

    def add_ticket(self, user: str, request: SupportRequest, now: datetime) -> int:
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO tickets (user, created, text, context) VALUES (?, ?, ?, ?)",
                (user, now.isoformat(), request.text, json.dumps(request.context.to_json())),
            )
            return int(cursor.lastrowid)

    def tickets_since(self, user: str, since: datetime) -> int:
        """How many tickets `user` filed since `since`."""
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM tickets WHERE user = ? AND created >= ?",
                (user, since.isoformat()),
            ).fetchone()
        return int(row[0])

    def mark_mailed(self, number: int) -> None:
        with self._db() as db:
            db.execute("UPDATE tickets SET mailed = 1 WHERE number = ?", (number,))

    def ticket(self, number: int) -> Ticket | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM tickets WHERE number = ?", (number,)).fetchone()
        return _ticket(row) if row else None

    def tickets(self, user: str | None = None, limit: int = 200) -> list[Ticket]:
        """The newest tickets of `user` (None: everyone's, for support staff)."""
        query = "SELECT * FROM tickets"
        args: tuple = ()
        if user is not None:
            query, args = query + " WHERE user = ?", (user,)
        with self._db() as db:
            rows = db.execute(f"{query} ORDER BY number DESC LIMIT ?", (*args, limit)).fetchall()
        return [_ticket(row) for row in rows]

    def answer(self, number: int, staff: str, text: str, status: str, now: datetime) -> bool:
        with self._db() as db:
            if text:
                cursor = db.execute(
                    "UPDATE tickets SET answer = ?, answered_by = ?, answered_at = ?, status = ?"
                    " WHERE number = ?",
                    (text, staff, now.isoformat(), status, number),
                )
            else:
                cursor = db.execute(
                    "UPDATE tickets SET status = ? WHERE number = ?", (status, number)
                )
            return cursor.rowcount == 1

    # announcements

    def announce(self, new: NewAnnouncement, author: str, now: datetime) -> Announcement:
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO announcements"
                " (text, partition, posted, expires, author, workshop, user)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    new.text,
                    new.partition,
                    now.isoformat(),
                    new.expires.isoformat(),
                    author,
                    new.workshop,
                    new.user,
                ),
            )
            number = int(cursor.lastrowid)
        return Announcement(
            number, new.text, new.partition, now, new.expires, author, new.workshop, new.user
        )

    def withdraw(self, number: int) -> bool:
        with self._db() as db:
            cursor = db.execute("DELETE FROM announcements WHERE id = ?", (number,))
            return cursor.rowcount == 1

    def announcements(
        self,
        now: datetime,
        partition: str | None = None,
        user: str | None = None,
        workshops: tuple[str, ...] = (),
    ) -> list[Announcement]:
        """The current ones for a viewer: a workshop's for its seats (`workshops`), a user's
        for that `user` only."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM announcements WHERE expires > ?", (now.isoformat(),)
            ).fetchall()
        return current([_announcement(row) for row in rows], now, partition, user, workshops)


def read_announcements(site: Site, now: datetime | None = None) -> list[Announcement]:
    """The current announcements for a page of the hub (read only; none while the service has
    not made its database yet, or when it cannot be read: a page never fails for them)."""
    path = db_path(site)
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM announcements").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return current([_announcement(row) for row in rows], now or datetime.now(UTC))
