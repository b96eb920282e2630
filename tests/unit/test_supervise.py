"""The proxy's supervisor: back-off for a child that dies young, restarts, clean stop."""

import os
import signal
import subprocess
import sys
import time

from factoryhub.demo.supervise import FASTEST_RESTART, SLOWEST_RESTART, next_delay


def test_back_off_grows_for_a_crashing_child_and_resets_after_a_good_run():
    delay = 0.0
    delays = []
    for _ in range(8):
        delay = next_delay(delay, lived=0.1)
        delays.append(delay)
    assert delays[0] == FASTEST_RESTART and delays[-1] == SLOWEST_RESTART
    assert delays == sorted(delays)
    assert next_delay(SLOWEST_RESTART, lived=60) == FASTEST_RESTART


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_killed_child_is_restarted_and_sigterm_stops_both(tmp_path):
    pidfile = tmp_path / "child.pid"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "factoryhub.demo.supervise", str(pidfile), "--", "sleep", "600"],
        stderr=subprocess.PIPE,
        cwd=tmp_path,  # not the checkout, whose factoryhub/ folder would shadow the package
    )
    first = wait_for(lambda: pidfile.exists() and int(pidfile.read_text()))
    os.kill(first, signal.SIGKILL)
    second = wait_for(
        lambda: pidfile.exists() and int(pidfile.read_text()) != first and int(pidfile.read_text())
    )
    assert os.path.exists(f"/proc/{second}")
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=10) == 0
    wait_for(lambda: not os.path.exists(f"/proc/{second}"))  # stopped and reaped
    assert not pidfile.exists()
