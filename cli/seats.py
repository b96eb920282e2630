"""Seat accounts: those FactoryHub makes for a workshop (`ws-<name>-NN`, the embedded site's
default) or takes from the site's pool of training accounts (`[workshops] account_pool`), the
workshop's trainer group, and the seats' archives. Root runs this; it reads a seat's home only
as the seat and cleans it without following a link (the seat is a learner: its links, FIFOs
and files are hostile).

Seat accounts have no password (nobody logs in with one: the hub logs a learner in on a seat
after the access code), private homes, and the hub's login group, which `fh-act-as` requires.
A pool account is only enabled for its workshop (in the login group, not expired) and returned
disabled with an empty home; it is never deleted.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from factoryhub.workshop import SEAT

ARCHIVE_TIMEOUT = 600  # seconds one seat's tar may take
FIRST_LEARNER_UID = 1000  # a pool account below this is a system account: never touched


class SeatError(RuntimeError):
    """A seat account or archive step that failed; the message says which and why."""


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SeatError(f"{' '.join(argv[:3])}: {result.stderr.strip()[:300]}")


def _seat(name: str, pool: Collection[str] = ()) -> str:
    """`name` when it is a seat account FactoryHub made or one of the site's pool; nothing
    else is ever touched."""
    if SEAT.fullmatch(name):
        return name
    if name in pool and pwd.getpwnam(name).pw_uid >= FIRST_LEARNER_UID:
        return name
    raise SeatError(
        f"{name[:40]!r} is not a seat account (neither ws-<name>-NN nor in this site's"
        " [workshops] account_pool); it is left alone"
    )


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


def enable_pool_seat(name: str, login_group: str, pool: Collection[str]) -> None:
    """A pool account taken for a workshop: not expired, in the hub's login group, its home
    private (its password, if it has one, stays as the centre set it)."""
    _run(["usermod", "--expiredate", "", "--append", "--groups", login_group, _seat(name, pool)])
    home = pwd.getpwnam(name).pw_dir
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if os.fstat(fd).st_uid == pwd.getpwnam(name).pw_uid:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def disable_seat(name: str, login_group: str, pool: Collection[str] = ()) -> None:
    """No login, no act-as (out of the login group), an expired account; its home stays."""
    _run(["usermod", "--lock", "--expiredate", "1", _seat(name, pool)])
    members = grp.getgrnam(login_group).gr_mem
    if name in members:
        _run(["gpasswd", "--delete", name, login_group])


def end_processes(name: str, pool: Collection[str] = (), rounds: int = 5) -> None:
    """No process of the seat left running: a job's child started with `setsid` outlives the
    job where Slurm tracks processes by parentage (proctrack/linuxproc), and would otherwise
    live on as the account the pool gives the next learner. `kill -KILL -1` run as the seat
    signals all of its processes at once (forks included: the kernel walks the list under its
    lock); checked, and again a few times, until none is left."""
    account = pwd.getpwnam(_seat(name, pool))
    if account.pw_uid < FIRST_LEARNER_UID:
        raise SeatError(f"{name[:40]!r} is a system account; its processes are left alone")
    for _ in range(rounds):
        subprocess.run(
            ["/usr/bin/kill", "-KILL", "-1"],
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            capture_output=True,
            check=False,
            timeout=30,
        )
        left = subprocess.run(  # a killed process waiting for its parent to reap it is none
            ["pgrep", "-U", str(account.pw_uid), "--runstates", "D,R,S,T,t,W,P,I"],
            capture_output=True,
            check=False,
        )
        if left.returncode == 1:  # none matched
            return
        time.sleep(0.5)
    raise SeatError(f"{name}'s processes are still running after {rounds} rounds of SIGKILL")


def delete_seat(name: str) -> None:
    """The seat account and its home (after the retention period, or a create rolled back).
    Only a seat FactoryHub made: a pool account is never deleted."""
    if user_exists(_seat(name)):
        _run(["userdel", "--remove", name])


def clean_home(name: str, pool: Collection[str], scratch: str = "") -> int:
    """Empty a pool account's home, and its folder under the scratch tier (`scratch`, the
    tier's path; the next holder would see it too), for its next workshop (after the archive),
    as root but without following any link. Returns how many entries were removed."""
    account = pwd.getpwnam(_seat(name, pool))
    removed = _empty_folder(account.pw_dir, account)
    if scratch and os.path.lexists(folder := f"{scratch}/{name}"):
        removed += _empty_folder(folder, account)
    return removed


def _empty_folder(path: str, account: pwd.struct_passwd) -> int:
    """Remove everything in `path`, a folder of `account`'s: it is opened with O_NOFOLLOW and
    everything in it is removed relative to that descriptor (`shutil.rmtree`'s fd-based walk,
    which unlinks a link and never enters it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if os.fstat(fd).st_uid != account.pw_uid:
            raise SeatError(f"{path} is not {account.pw_name}'s own folder; left alone")
        if not shutil.rmtree.avoids_symlink_attacks:
            raise SeatError("this Python cannot remove a tree without following links")
        removed = 0
        for entry in os.listdir(fd):
            info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry, dir_fd=fd)
            else:
                os.unlink(entry, dir_fd=fd)
            removed += 1
        os.fchmod(fd, 0o700)
        return removed
    finally:
        os.close(fd)


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


def archive_home(seat: str, into: Path, pool: Collection[str] = ()) -> SeatArchive:
    """The seat's home as `<into>/<seat>.tar`, read by `tar` running as the seat (links are
    stored as links, never followed; what the seat cannot read is not read), written by root
    into a file it creates itself."""
    home = pwd.getpwnam(_seat(seat, pool)).pw_dir
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
                # what the seat made unreadable to itself (a chmod 000 folder) is left out,
                # not a failure: a learner must not be able to stop `end` for everyone
                "--ignore-failed-read",
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
