"""Where workshops are kept, and who writes what.

- The **records** (`<name>.json`, `factoryhub.workshoprecord.Workshop`): written by root only
  (`factoryhub workshop create/end/purge`) in `/etc/factoryhub/workshops/<hub id>/`, a folder
  root owns (0750, group: the hub's account's group) so the hub and its service read them and
  no learner does. They hold the access code's hash, never the code.
- The **seat claims** (who joined on which seat, under which display name): written by the hub
  only, when a learner joins, in an SQLite database in the hub's own state directory. A claim
  is one `BEGIN IMMEDIATE` transaction with the seat as primary key, so no seat is ever given
  twice, whatever the number of joins at once. Root reads it (for the report) from a copy it
  opened without following links. Claims are kept by the workshop's key (name and creation
  time), so a later workshop of the same name starts with every seat free. Beside them, one
  random secret per workshop, from which the hub derives each claim's rejoin key
  (`factoryhub.workshoprecord.rejoin_key`): no key is stored.
- The **trainers' files** (handout, archives, report): under `<catalogue's parent>/workshops/
  <name>/`, root's, readable by the workshop's trainer group only.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .site import Site
from .sqlitefiles import create_private
from .workshop import NAME, TIME_FORMAT
from .workshoprecord import (
    JoinRefused,
    Workshop,
    rejoin_key,
    rejoin_keys_match,
    workshop_from_json,
)

RECORDS_ROOT = Path("/etc/factoryhub/workshops")
CLAIMS_FILE = "workshop-seats.sqlite"


def records_dir(site: Site, root: Path = RECORDS_ROOT) -> Path:
    return root / site.hub.id


def trainer_files_dir(site: Site, name: str) -> Path:
    """The trainers' folder of workshop `name` (beside the catalogue, outside the hub's state)."""
    return Path(site.hub.catalogue_dir).parent / "workshops" / name


def claims_path(site: Site) -> Path:
    return Path(site.hub.state_dir) / CLAIMS_FILE


def load_workshops(folder: Path) -> dict[str, Workshop]:
    """Every workshop on record in `folder` (a damaged record is left out, never fatal)."""
    found = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        if not NAME.fullmatch(path.stem):
            continue
        try:
            found[path.stem] = workshop_from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return found


def load_workshop(folder: Path, name: str) -> Workshop | None:
    """The workshop `name` on record (one file read: a join reads it per request)."""
    if not NAME.fullmatch(name):
        return None
    try:
        return workshop_from_json((folder / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


_INDEX: dict[str, tuple[int, dict[str, Workshop]]] = {}


def workshop_of(folder: Path, user: str) -> Workshop | None:
    """The workshop whose seat `user` is, among those not purged (a pool account is a seat
    only while its workshop holds it). The records are read again only when the folder
    changed (each record is written by a rename into it), so the hub asks this per request."""
    try:
        changed = folder.stat().st_mtime_ns
    except OSError:
        return None
    cached = _INDEX.get(str(folder))
    if cached is None or cached[0] != changed:
        seats = {
            seat: workshop
            for workshop in load_workshops(folder).values()
            if workshop.state != "purged"
            for seat in workshop.seats
        }
        _INDEX[str(folder)] = cached = (changed, seats)
    return cached[1].get(user)


@dataclass(frozen=True)
class Claim:
    seat: str
    display_name: str
    claimed: str  # TIME_FORMAT


class SeatClaims:
    """The hub's record of who holds which seat (SQLite, one transaction per claim)."""

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        # private from the start: it holds the rejoin secrets (the state directory is the
        # hub's own, 0700, too)
        create_private(self.path)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS claims (workshop TEXT NOT NULL, seat TEXT NOT NULL,"
                " display_name TEXT NOT NULL, claimed TEXT NOT NULL,"
                " PRIMARY KEY (workshop, seat))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS rejoin_secrets (workshop TEXT PRIMARY KEY,"
                " secret TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def claim(
        self, workshop: Workshop, name: str, now: datetime, only: str | None = None
    ) -> str | None:
        """Give the first free seat of `workshop` (or the seat `only`) to `name`; None when
        every seat (that seat) is taken. A name someone already joined with is refused
        (`JoinRefused`): whoever comes back rejoins with their key, not with a name."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: claims run one at a time
            rows = db.execute(
                "SELECT seat, display_name FROM claims WHERE workshop = ?", (workshop.key,)
            ).fetchall()
            if any(shown.casefold() == name.casefold() for _, shown in rows):
                raise JoinRefused(
                    f"Someone has already joined as {name!r}. If that was you, enter the"
                    " rejoin key you were given to get your seat back; otherwise add your"
                    " surname or an initial."
                )
            taken = {seat for seat, _ in rows}
            candidates = workshop.seats if only is None else (only,)
            seat = next((s for s in candidates if s not in taken), None)
            if seat is not None:
                db.execute(
                    "INSERT INTO claims VALUES (?, ?, ?, ?)",
                    (workshop.key, seat, name, now.strftime(TIME_FORMAT)),
                )
            db.execute("COMMIT")
            return seat
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def claims(self, workshop: Workshop) -> dict[str, Claim]:
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT seat, display_name, claimed FROM claims WHERE workshop = ?",
                (workshop.key,),
            ).fetchall()
        finally:
            db.close()
        return {seat: Claim(seat, shown, at) for seat, shown, at in rows}

    def secret(self, workshop: Workshop) -> str:
        """The workshop's rejoin secret, made on first use (kept by the hub only)."""
        db = self._connect()
        try:
            db.execute(
                "INSERT OR IGNORE INTO rejoin_secrets VALUES (?, ?)",
                (workshop.key, secrets.token_hex(32)),
            )
            (secret,) = db.execute(
                "SELECT secret FROM rejoin_secrets WHERE workshop = ?", (workshop.key,)
            ).fetchone()
        finally:
            db.close()
        return secret

    def rejoin_key(self, workshop: Workshop, seat: str) -> str | None:
        """The rejoin key of `seat`'s claim; None while nobody holds it."""
        claim = self.claims(workshop).get(seat)
        if claim is None:
            return None
        return rejoin_key(self.secret(workshop), workshop.key, seat, claim.claimed)

    def seat_of_rejoin_key(self, workshop: Workshop, typed: str) -> Claim | None:
        """The claim whose rejoin key `typed` is (every claim compared), None for none."""
        secret = self.secret(workshop)
        found = None
        for seat, claim in self.claims(workshop).items():
            key = rejoin_key(secret, workshop.key, seat, claim.claimed)
            if rejoin_keys_match(key, typed):
                found = claim
        return found
