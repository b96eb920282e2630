"""Keep one child process running: restart it when it dies, stop it when told (F3, F15).

What systemd's `Restart=on-failure` does where systemd is not PID 1 (containers, CI).
configurable-http-proxy runs under this supervisor, so a proxy that crashes or is killed is back
within a second; the hub re-adds its routes at its next route check (`last_activity_interval`,
a few seconds on FactoryHub). JupyterHub runs under another, so a hub killed with -9 is started
again at once and re-adopts its sessions from its database. SIGTERM or SIGINT stop the child
(SIGTERM: JupyterHub shuts down gracefully, sessions kept) and then the supervisor.

With ``--every SECONDS`` it runs a command periodically instead, what a systemd timer does:
root's `factoryhub workshop-orders` every 15 s (`factoryhub.demo.hubprocess`), so that a
workshop a trainer orders on the web page is made within a minute. A run that fails is logged
and the next comes as usual; SIGTERM or SIGINT stop the supervisor, and a run under way is left
to finish (an order stopped half-way would be worse than one that ends after its supervisor).

    python -m factoryhub.demo.supervise CHILD_PIDFILE -- ARGV...
    python -m factoryhub.demo.supervise --every SECONDS -- ARGV...
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

FASTEST_RESTART = 0.2  # seconds between restarts while the child keeps running
SLOWEST_RESTART = 10.0  # back-off cap for a child that dies right after starting


def next_delay(previous: float, lived: float) -> float:
    """Wait longer each time the child dies young; start over after a good run (pure)."""
    if lived > 30:
        return FASTEST_RESTART
    return min(max(previous * 2, FASTEST_RESTART), SLOWEST_RESTART)


def supervise(argv: list[str], child_pidfile: Path) -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = 0.0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        staged = child_pidfile.with_suffix(".new")
        staged.write_text(str(child.pid))
        staged.replace(child_pidfile)  # readers never see a half-written file
        if stopping:  # told to stop while this child was being started
            child.terminate()
        child.wait()
        if stopping:
            break
        delay = next_delay(delay, time.monotonic() - started)
        print(
            f"supervise: {argv[0]} exited ({child.returncode}); restarting in {delay:g} s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(delay)
    child_pidfile.unlink(missing_ok=True)
    return 0


def wait_before_next(every: float, took: float) -> float:
    """Seconds from the end of a run to the start of the next: runs start `every` seconds
    apart, and one that took longer is followed after a short pause, never at once (pure)."""
    return max(every - took, min(every, 1.0))


def _log(line: str) -> None:
    """A line to the log; a log that cannot be written (its disk full) stops nothing."""
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    with contextlib.suppress(OSError):
        print(f"{stamp} {line}", file=sys.stderr, flush=True)


def run_periodically(argv: list[str], every: float) -> int:
    """Run `argv` every `every` seconds until SIGTERM or SIGINT; a failing run is logged."""
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    what = shlex.join(argv)[:200]
    while not stopping:
        started = time.monotonic()
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        except OSError as exc:
            _log(f"supervise: cannot run {what}: {exc}")
            child = None
        while child is not None and not stopping and child.poll() is None:
            time.sleep(0.2)
        if child is not None and child.returncode not in (None, 0):
            _log(f"supervise: {what} exited ({child.returncode}); next run in {every:g} s")
        pause = wait_before_next(every, time.monotonic() - started)
        deadline = time.monotonic() + pause
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


def main(args: list[str]) -> int:
    if len(args) >= 4 and args[0] == "--every" and args[2] == "--":
        try:
            every = float(args[1])
        except ValueError:
            every = 0.0
        if every >= 1:
            return run_periodically(args[3:], every)
    elif len(args) >= 3 and args[1] == "--":
        return supervise(args[2:], Path(args[0]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
