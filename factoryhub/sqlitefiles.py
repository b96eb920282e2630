"""The SQLite files FactoryHub keeps itself (the service's tickets and announcements, the
workshops' progress, the hub's seat claims): private from the moment they exist, never reached
through a link, and one connection per use that commits or rolls back."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path


def create_private(path: str | Path) -> None:
    """Make `path` an empty file only its owner may read (0600) unless it is there already;
    a link (or anything but a regular file) in its place is refused, never followed."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY, 0o600))
    except FileExistsError:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise OSError(f"{path} is not a regular file: it is not opened") from None


@contextlib.contextmanager
def transaction(
    path: str | Path, *, rows: bool = False, timeout: float = 10
) -> Iterator[sqlite3.Connection]:
    """A connection to `path` for one use: committed when the block ends, rolled back when it
    raises, closed either way; rows as `sqlite3.Row` when `rows`."""
    db = sqlite3.connect(path, timeout=timeout)
    if rows:
        db.row_factory = sqlite3.Row
    try:
        with db:
            yield db
    finally:
        db.close()
