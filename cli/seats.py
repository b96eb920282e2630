"""The embedded site's pool of seat accounts (`ws-<name>-NN`, real Unix accounts made for each
workshop), the workshop's trainer group, and the seats' archives. Root runs this; it works in a
seat's home only as the seat (the seat is a learner: its links, FIFOs and files are hostile).

Seat accounts have no password (nobody logs in with one: the hub logs a learner in on a seat
after the access code), private homes, and the hub's login group, which `fh-act-as` requires.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from factoryhub.workshop import SEAT

ARCHIVE_TIMEOUT = 600  # seconds one seat's tar may take


class SeatError(RuntimeError):
    """A seat account or archive step that failed; the message says which and why."""


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SeatError(f"{' '.join(argv[:3])}: {result.stderr.strip()[:300]}")


def _seat(name: str) -> str:
    if not SEAT.fullmatch(name):  # never anything but a seat account: no user is touched
        raise SeatError(f"{name[:40]!r} is not a seat account")
    return name


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def create_seat(name: str, login_group: str) -> None:
    """A new seat account with a private home, in the hub's login group, no password."""
    _run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", login_group, _seat(name)])
    os.chmod(pwd.getpwnam(name).pw_dir, 0o700)


def disable_seat(name: str, login_group: str) -> None:
    """No login, no act-as (out of the login group), an expired account; its home stays."""
    _run(["usermod", "--lock", "--expiredate", "1", _seat(name)])
    members = grp.getgrnam(login_group).gr_mem
    if name in members:
        _run(["gpasswd", "--delete", name, login_group])


def delete_seat(name: str) -> None:
    """The seat account and its home (after the retention period, or a create rolled back)."""
    if user_exists(_seat(name)):
        _run(["userdel", "--remove", name])


def create_trainer_group(group: str, trainers: tuple[str, ...]) -> None:
    _run(["groupadd", group])
    for trainer in trainers:
        _run(["usermod", "--append", "--groups", group, trainer])


def delete_group(group: str) -> None:
    if group_exists(group):
        _run(["groupdel", group])


@dataclass(frozen=True)
class SeatArchive:
    seat: str
    file: str
    bytes: int
    sha256: str


def archive_home(seat: str, into: Path) -> SeatArchive:
    """The seat's home as `<into>/<seat>.tar`, read by `tar` running as the seat (links are
    stored as links, never followed; what the seat cannot read is not read), written by root
    into a file it creates itself."""
    home = pwd.getpwnam(_seat(seat)).pw_dir
    target = into / f"{seat}.tar"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "wb") as out:
        result = subprocess.run(
            [
                "runuser",
                "-u",
                seat,
                "--",
                "tar",
                "--create",
                "--file=-",
                "--numeric-owner",
                f"--directory={home}",
                ".",
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=ARCHIVE_TIMEOUT,
            check=False,
            cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )
    if result.returncode not in (0, 1):  # 1: a file changed while read, archived as read
        raise SeatError(f"archiving {seat}'s home: {result.stderr.decode(errors='replace')[:300]}")
    digest = hashlib.sha256()
    with open(target, "rb") as done:
        for block in iter(lambda: done.read(1 << 20), b""):
            digest.update(block)
    return SeatArchive(seat, target.name, target.stat().st_size, digest.hexdigest())
