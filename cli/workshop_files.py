"""The files `factoryhub workshop` keeps as root: the records (for the hub), the trainers'
folder, and the hub's seat claims read without following links. Root writes only into folders
it owns, a new file each time (renamed into place); it reads the hub's one file by descriptor."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

from factoryhub.demo.embedded import HUB_USER
from factoryhub.site import Site
from factoryhub.workshop import trainer_group
from factoryhub.workshoppool import pool_accounts
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopstore import SeatClaims, claims_path, records_dir, trainer_files_dir


class Failed(Exception):
    """A step failed; the message is the sentence for the support centre."""


def write_atomic(path: Path, text: str, mode: int, owner: tuple[int, int] = (0, 0)) -> None:
    """`text` into `path` atomically (a new file beside it, renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chown(tmp, *owner)
    os.replace(tmp, path)


def root_folder(path: Path, mode: int, group: int = 0) -> Path:
    """A folder root owns (made, or re-owned if root made it before)."""
    path.mkdir(parents=True, exist_ok=True)
    info = os.lstat(path)
    if info.st_uid != 0 or not path.is_dir() or path.is_symlink():
        raise Failed(f"{path} is not root's own folder; left alone")
    os.chown(path, 0, group)
    os.chmod(path, mode)
    return path


def save_record(site: Site, workshop: Workshop) -> None:
    """The record, root's folder, a file only the hub's account (and root) reads."""
    folder = root_folder(records_dir(site), 0o755)
    hub = pwd.getpwnam(HUB_USER)
    write_atomic(
        folder / f"{workshop.name}.json", workshop.to_json(), 0o600, (hub.pw_uid, hub.pw_gid)
    )


def trainer_folder(site: Site, name: str) -> Path:
    root_folder(trainer_files_dir(site, name).parent, 0o755)
    return root_folder(
        trainer_files_dir(site, name), 0o750, grp.getgrnam(trainer_group(name)).gr_gid
    )


def site_pool(site: Site) -> tuple[str, ...]:
    """The site's pool of training accounts (checked when site.toml was read)."""
    return pool_accounts(site.workshops.account_pool)


@contextlib.contextmanager
def hub_file_copy(path: Path) -> Iterator[Path | None]:
    """A private copy of one of the hub's SQLite files (None when there is none), made from a
    descriptor root opened without following links and checked to be the hub account's."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        yield None
        return
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        hub = pwd.getpwnam(HUB_USER).pw_uid
        if info.st_uid != hub or not (info.st_mode & 0o170000 == 0o100000):
            raise Failed(f"{path} is not the hub account's own file; not read")
        data = source.read(64 << 20)
    copy = Path(f"/run/factoryhub-{path.stem}-{os.getpid()}.sqlite")
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def seat_names_claimed(site: Site, workshop: Workshop) -> dict[str, str]:
    """Display names per seat from the hub's claims database (a copy: `hub_file_copy`)."""
    with hub_file_copy(claims_path(site)) as copy:
        if copy is None:
            return {}
        return {s: c.display_name for s, c in SeatClaims(copy).claims(workshop).items()}
