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
  time), so a later workshop of the same name starts with every seat free.
- The **trainers' files** (handout, archives, report): under `<catalogue's parent>/workshops/
  <name>/`, root's, readable by the workshop's trainer group only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .site import Site
from .workshop import NAME, TIME_FORMAT, workshop_of_seat
from .workshoprecord import Workshop, workshop_from_json

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


def workshop_of(folder: Path, user: str) -> Workshop | None:
    """The workshop whose seat `user` is (by its name and the record's seat list)."""
    name = workshop_of_seat(user)
    if name is None:
        return None
    workshop = load_workshop(folder, name)
    return workshop if workshop is not None and user in workshop.seats else None


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
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS claims (workshop TEXT NOT NULL, seat TEXT NOT NULL,"
                " display_name TEXT NOT NULL, claimed TEXT NOT NULL,"
                " PRIMARY KEY (workshop, seat))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def claim(self, workshop: Workshop, name: str, now: datetime) -> str | None:
        """Give the first free seat of `workshop` to `name`; None when every seat is taken."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: claims run one at a time
            taken = {
                row[0]
                for row in db.execute("SELECT seat FROM claims WHERE workshop = ?", (workshop.key,))
            }
            seat = next((s for s in workshop.seats if s not in taken), None)
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
