"""The hub's database URL, as JupyterHub's `db_url` takes it: SQLite in the hub's state
directory, or the site's PostgreSQL with the password read from `[hub] db_password_file`.

Read when the hub loads its config (as the hub's account), so `jupyterhub upgrade-db` with
the same config reaches the same database. The password goes into the URL JupyterHub hands to
SQLAlchemy and to alembic's upgrade (which reads the URL alone); JupyterHub redacts it in what
it logs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from factoryhub.hubdatabase import password_of
from factoryhub.site import Site

log = logging.getLogger(__name__)
SQLITE = "sqlite:///"


def hub_db_url(site: Site) -> str:
    """JupyterHub's `db_url` for `site`; SystemExit with a sentence when the password file
    cannot be used (missing, unreadable, readable by everyone, not one line)."""
    hub = site.hub
    if not hub.db_url:
        return f"sqlite:///{Path(hub.state_dir) / 'jupyterhub.sqlite'}"
    if not hub.db_password_file:
        return hub.db_url  # libpq finds a password itself (~/.pgpass) or needs none (peer)
    password = _read_password(Path(hub.db_password_file))
    url = make_url(hub.db_url).set(password=password)
    return url.render_as_string(hide_password=False)


def _read_password(path: Path) -> str:
    where = f"hub.db_password_file {path}"
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"{where} cannot be read by the hub: {exc}") from None
    if mode & stat.S_IROTH:
        raise SystemExit(
            f"{where} is readable by every account: make it the hub account's alone "
            "(chmod 0600) or its group's (chmod 0640)"
        )
    try:
        return password_of(text)
    except ValueError as exc:
        raise SystemExit(f"{where} {exc}") from None


def write_ahead_log(url: str) -> None:
    """Put the hub's SQLite database in write-ahead-log mode (the file keeps it). JupyterHub
    commits on its event loop, for every API request's token activity and every server's
    activity report; with SQLite's default journal a commit creates, syncs and deletes a
    journal file, in WAL mode it appends and syncs once (0.94 ms → 0.19 ms per commit here,
    `synchronous` left FULL, so a commit is as durable as before). Nothing for PostgreSQL."""
    if not url.startswith(SQLITE):
        return
    path = Path(url[len(SQLITE) :])
    if not _ours(path.parent) or (path.exists() and not _ours(path)):
        return  # only where the hub itself opens the file (not root building a config)
    try:
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        log.warning("the hub's database %s stays in SQLite's default journal mode: %s", path, exc)


def _ours(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.geteuid()
    except OSError:
        return False
