"""A hub restart (graceful, or killed with -9) keeps every server and its job: no cancel, no
orphan, the route intact (F3, F4 of shared/reliability.md, foundation part); a session whose
job ended while the hub was down is cleared when it comes back. test_postgres.py runs the
tests that take `hub_client` and `real_hub` alone again, with a hub on PostgreSQL."""

import os
import signal
import subprocess

import httpx
import pytest
from realsite import squeue_row, wait_until

from factoryhub.demo.daemons import running_pid
from factoryhub.demo.hubprocess import start_hub, stop_hub

pytestmark = pytest.mark.integration


def _kill_hub(hub) -> None:
    pid = running_pid(hub.hub_pidfile)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: running_pid(hub.hub_pidfile) != pid, 10, "hub killed")


@pytest.mark.parametrize("how", ["graceful", "kill -9"])
def test_hub_restart_keeps_the_server_and_its_job(hub_client, real_hub, how):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token)
    job_id = hub_client.job_of("tlearner2")
    if how == "graceful":
        stop_hub(real_hub, proxy=False)
    else:
        _kill_hub(real_hub)
    assert squeue_row(job_id)["state"] == "RUNNING"
    start_hub(real_hub)

    server = wait_until(lambda: hub_client.server("tlearner2", token), 30, "server re-adopted")
    assert server["ready"]
    assert hub_client.job_of("tlearner2") == job_id  # the same job, none cancelled, none added
    assert squeue_row(job_id)["state"] == "RUNNING"
    assert "/user/tlearner2" in hub_client.routes()
    r = httpx.get(
        f"{hub_client.base}/user/tlearner2/api/status", headers={"Authorization": f"token {token}"}
    )
    assert r.status_code == 200
    hub_client.stop("tlearner2", token)
    assert squeue_row(job_id).get("state", "gone") in ("CANCELLED", "gone")


def test_a_session_that_ended_while_the_hub_was_down_is_cleared(hub_client, real_hub):
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token)
    job_id = hub_client.job_of("tlearner1")
    stop_hub(real_hub, proxy=False)
    subprocess.run(["scancel", job_id], check=True)
    wait_until(lambda: squeue_row(job_id).get("state") != "RUNNING", 30, "job ended")
    start_hub(real_hub)

    wait_until(lambda: hub_client.server("tlearner1", token) is None, 30, "record cleared")
    wait_until(lambda: "/user/tlearner1" not in hub_client.routes(), 15, "route removed")
    hub_client.start("tlearner1", token)  # the learner starts again, no admin needed
    assert hub_client.job_of("tlearner1") != job_id
    hub_client.stop("tlearner1", token)


def test_an_upgrade_from_a_root_run_hub_re_adopts_its_sessions(hub_client, real_hub):
    """Before issue 13 the hub ran as root: its database, cookie secret and step logs were
    root's. The unprivileged hub takes them over and keeps every session."""
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token)
    job_id = hub_client.job_of("tlearner2")
    stop_hub(real_hub, proxy=False)
    for folder, dirs, files in os.walk(real_hub.state_dir):
        for name in dirs + files:  # as a root-run hub left them
            os.chown(os.path.join(folder, name), 0, 0, follow_symlinks=False)
    start_hub(real_hub)

    server = wait_until(lambda: hub_client.server("tlearner2", token), 30, "server re-adopted")
    assert server["ready"] and hub_client.job_of("tlearner2") == job_id
    assert "/user/tlearner2" in hub_client.routes()
    r = httpx.get(
        f"{hub_client.base}/user/tlearner2/api/status", headers={"Authorization": f"token {token}"}
    )
    assert r.status_code == 200
    hub_client.stop("tlearner2", token)
