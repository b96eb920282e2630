"""Root's work in folders an unprivileged daemon account owns (the hub's state directory):
the account may plant links and write pid files, and root must neither follow the one nor
signal whatever the other names (issue 13: the hub account is not root)."""

import os
import signal
import subprocess
import sys

import pytest

from factoryhub.demo import daemons


@pytest.fixture
def planted(tmp_path):
    """A file of root's the account would like root to write to, and a link to it."""
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    return target


def test_a_log_planted_as_a_link_is_not_opened(tmp_path, planted):
    log = tmp_path / "hub.log"
    log.symlink_to(planted)
    with pytest.raises(OSError):
        daemons.spawn_daemon(["/bin/true"], tmp_path / "hub.pid", log)
    assert planted.read_text() == "root:x:0:0\n"


def test_a_pid_file_planted_as_a_link_is_not_written(tmp_path, planted):
    pidfile = tmp_path / "hub.pid"
    pidfile.symlink_to(planted)
    with pytest.raises(OSError):
        daemons.write_pidfile(pidfile, 1234)
    assert planted.read_text() == "root:x:0:0\n"


def test_root_signals_only_a_process_of_the_named_account(tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pidfile = tmp_path / "hub.pid"
    pidfile.write_text(f"{victim.pid}\n")  # a pid the account wrote: a process of root's
    try:
        assert daemons.running_pid(pidfile) == victim.pid
        assert daemons.running_pid(pidfile, owner="nobody") is None
        assert not daemons.stop_daemon(pidfile, owner="nobody", sig=signal.SIGTERM)
        assert victim.poll() is None  # untouched
    finally:
        victim.kill()
        victim.wait()
    assert os.path.exists(pidfile)
