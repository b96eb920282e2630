"""Start, find and stop long-running processes by pid file, idempotently, without systemd."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def running_pid(pidfile: Path, owner: str | None = None) -> int | None:
    """The pid in `pidfile` if that process is alive (and not a zombie), else None; with
    `owner`, only a process of that account counts (the file lies in a folder that account
    may write to: root never signals a pid it planted)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    if owner is not None:
        try:
            owner_uid = pwd.getpwnam(owner).pw_uid
        except KeyError:  # an account not made yet runs nothing
            return None
        if uid != owner_uid:
            return None
    return None if stat.rsplit(")", 1)[1].split()[0] == "Z" else pid


def open_nofollow(path: Path, flags: int, mode: int = 0o640) -> int:
    """A descriptor of `path` that is never a symbolic link's target (`OSError` if `path` is
    a link): root opens files in folders an unprivileged daemon account owns."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def write_pidfile(path: Path, pid: int) -> None:
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as pidfile:
        pidfile.write(f"{pid}\n")


def wait_for(check, timeout: float, what: str, interval: float = 0.1) -> None:
    """Call `check()` until it is truthy; raise `TimeoutError` naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:g} s")
        time.sleep(interval)


def run_daemon(argv: Sequence[str], pidfile: Path, timeout: float = 15.0) -> int:
    """Run a program that daemonizes itself and writes `pidfile`; no-op when already up."""
    pid = running_pid(pidfile)
    if pid:
        return pid
    subprocess.run(list(argv), check=True)
    wait_for(lambda: running_pid(pidfile), timeout, " ".join(argv))
    return running_pid(pidfile) or 0


def spawn_daemon(
    argv: Sequence[str],
    pidfile: Path,
    logfile: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start a foreground program detached from us (own session), logging to `logfile`; as
    `user` (its uid, gid and groups) when given. The log is opened here, by the caller."""
    pid = running_pid(pidfile, user)
    if pid:
        return pid
    logfile.parent.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(user) if user else None
    with os.fdopen(open_nofollow(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=os.getgrouplist(user, account.pw_gid) if account else None,
        )
    write_pidfile(pidfile, proc.pid)
    return proc.pid


def stop_daemon(
    pidfile: Path, timeout: float = 15.0, sig: int = signal.SIGTERM, owner: str | None = None
) -> bool:
    """Signal the process in `pidfile` (only a process of `owner`, when given) and wait for it
    to exit; True if one was running."""
    pid = running_pid(pidfile, owner)
    if not pid:
        return False
    os.kill(pid, sig)
    try:
        wait_for(lambda: running_pid(pidfile, owner) != pid, timeout, f"exit of pid {pid}")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True
