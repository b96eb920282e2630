"""Start, find and stop long-running processes by pid file, idempotently, without systemd."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def running_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that process is alive (and not a zombie), else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return None if stat.rsplit(")", 1)[1].split()[0] == "Z" else pid


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
    pid = running_pid(pidfile)
    if pid:
        return pid
    logfile.parent.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(user) if user else None
    with open(logfile, "ab") as log:
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
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_daemon(pidfile: Path, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the process in `pidfile` and wait for it to exit; True if one was running."""
    pid = running_pid(pidfile)
    if not pid:
        return False
    os.kill(pid, sig)
    try:
        wait_for(lambda: running_pid(pidfile) != pid, timeout, f"exit of pid {pid}")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True
