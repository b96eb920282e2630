"""Root's work in an account's own directories (a trainer's `~/.factoryhub/validate`), done as
that account: `runuser -u <account>` with a clean environment, argv lists only.

Root never opens, creates or changes a path the account controls: whatever links the account
has planted there are followed with the account's rights, not root's. What root reads back (a
result file, a log) comes through a pipe, bounded in size and time, so a huge file or a FIFO
cannot fill root's memory or hang it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
from pathlib import Path

from factoryhub.course import CourseError

RUNUSER = "/usr/sbin/runuser"
READ_SECONDS = 20  # a read that takes longer is a FIFO or a trick: give up
UNPACK_SECONDS = 300
# Unpack a tar from stdin into "$1", created (with its parents) as the account.
_UNPACK = 'umask 077 && mkdir -p -- "$1" && exec tar -x -f - -C "$1"'


def clean_environment(user: str) -> dict[str, str]:
    """Only what these commands need; nothing of root's environment."""
    account = pwd.getpwnam(user)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": account.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "LANG": "C.UTF-8",
    }


def as_account(user: str, argv: list[str]) -> list[str]:
    """`argv` run as `user`: through runuser when root runs it for another account."""
    if os.geteuid() == 0 and pwd.getpwnam(user).pw_uid != 0:
        return [RUNUSER, "-u", user, "--", *argv]
    return list(argv)


def unpack(user: str, directory: Path, archive: bytes) -> None:
    """Create `directory` as `user` and unpack the tar `archive` into it, as `user`."""
    argv = as_account(user, ["/bin/sh", "-c", _UNPACK, "sh", str(directory)])
    try:
        done = subprocess.run(
            argv,
            input=archive,
            capture_output=True,
            env=clean_environment(user),
            cwd="/",
            timeout=UNPACK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CourseError(f"preparing {directory} as {user} took too long") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()[-300:]
        raise CourseError(f"cannot prepare {directory} as {user}: {why}")


def _read_argv(user: str, path: Path, limit: int, tail: bool) -> list[str]:
    tool = "tail" if tail else "head"
    command = ["timeout", "-s", "KILL", str(READ_SECONDS), tool, "-c", str(limit), "--", str(path)]
    return as_account(user, command)


def read_as(user: str, path: Path, limit: int, tail: bool = False) -> bytes | None:
    """At most `limit` bytes of `path` (its end when `tail`), read as `user`; None when the
    file cannot be read."""
    try:
        done = subprocess.run(
            _read_argv(user, path, limit, tail),
            capture_output=True,
            env=clean_environment(user),
            cwd="/",
            timeout=READ_SECONDS + 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return done.stdout[:limit] if done.returncode == 0 else None


async def read_as_async(user: str, path: Path, limit: int, tail: bool = False) -> bytes | None:
    """`read_as` without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        *_read_argv(user, path, limit, tail),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
        env=clean_environment(user),
        cwd="/",
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), READ_SECONDS + 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    return out[:limit] if proc.returncode == 0 else None
