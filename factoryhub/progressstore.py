"""Where the hub service keeps the workshop seats' progress: an SQLite file of its own in the
hub's state directory (the service's account writes it; nothing of a learner's is read to fill
it). Kept by the workshop's key and the seat, so a later workshop of the same name starts at
zero. Every value is a bound parameter; every count is capped (`workshopprogress`)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from .site import Site
from .sqlitefiles import create_private, transaction
from .workshopprogress import (
    MAX_CELLS,
    MAX_EXERCISES,
    MAX_NOTEBOOKS,
    ProgressReport,
    SeatProgress,
)

PROGRESS_FILE = "workshop-progress.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    workshop TEXT NOT NULL, seat TEXT NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (workshop, seat, kind, item)
);
CREATE TABLE IF NOT EXISTS cells (
    workshop TEXT NOT NULL, seat TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (workshop, seat)
);
"""
_CAPS = {"notebook": MAX_NOTEBOOKS, "exercise": MAX_EXERCISES, "completed": MAX_NOTEBOOKS}


def progress_path(site: Site) -> Path:
    return Path(site.hub.state_dir) / PROGRESS_FILE


class ProgressStore:
    """Progress per (workshop key, seat), created private (0600) on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        create_private(self.path)
        with self._db() as db:
            db.executescript(_SCHEMA)

    def _db(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path)

    def add(self, workshop: str, seat: str, report: ProgressReport) -> SeatProgress:
        """Add `report` to `seat`'s progress in `workshop`; the seat's progress after it."""
        with self._db() as db:
            for kind, items in (
                ("notebook", report.notebooks_opened),
                ("exercise", report.exercises_passed),
                ("completed", report.notebooks_completed),
            ):
                (have,) = db.execute(
                    "SELECT COUNT(*) FROM seen WHERE workshop = ? AND seat = ? AND kind = ?",
                    (workshop, seat, kind),
                ).fetchone()
                room = max(0, _CAPS[kind] - have)
                for item in items[:room]:
                    db.execute(
                        "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                        (workshop, seat, kind, item),
                    )
            if report.cells_run:
                db.execute(
                    "INSERT INTO cells VALUES (?, ?, MIN(?, ?)) ON CONFLICT (workshop, seat)"
                    " DO UPDATE SET count = MIN(count + excluded.count, ?)",
                    (workshop, seat, report.cells_run, MAX_CELLS, MAX_CELLS),
                )
        return self.progress(workshop).get(seat, SeatProgress())

    def progress(self, workshop: str) -> dict[str, SeatProgress]:
        """Every seat of `workshop` that reported anything."""
        found: dict[str, dict[str, int]] = {}
        with self._db() as db:
            for seat, kind, count in db.execute(
                "SELECT seat, kind, COUNT(*) FROM seen WHERE workshop = ? GROUP BY seat, kind",
                (workshop,),
            ):
                found.setdefault(seat, {})[kind] = count
            for seat, count in db.execute(
                "SELECT seat, count FROM cells WHERE workshop = ?", (workshop,)
            ):
                found.setdefault(seat, {})["cells"] = count
        return {
            seat: SeatProgress(
                notebooks_opened=counts.get("notebook", 0),
                cells_run=counts.get("cells", 0),
                exercises_passed=counts.get("exercise", 0),
                notebooks_completed=counts.get("completed", 0),
            )
            for seat, counts in found.items()
        }
