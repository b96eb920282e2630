"""A hub killed with -9 comes back by itself (F3 with nobody at the keyboard): its supervisor
(`factoryhub.demo.supervise` here; systemd's Restart=on-failure where systemd is PID 1) starts
it again, and it re-adopts the running session: listed ready with the same Slurm job, its route
in the proxy, the learner's server reachable through it, the hub service answering again. The
test never calls `start_hub`: an unsupervised hub stays down and fails it."""

import os
import signal
import time

import httpx
import pytest
from realsite import job_of, squeue_row, wait_until

from factoryhub.demo.daemons import running_pid
from factoryhub.demo.embedded import HUB_USER

pytestmark = pytest.mark.faults

BACK_WITHIN = 30  # seconds from kill -9 until the hub answers again (measured: see the print)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def test_a_hub_killed_with_minus_9_is_back_by_itself_and_keeps_the_session(hub_client, real_hub):
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token)
    job_id = job_of("tlearner1")
    supervisor = running_pid(real_hub.hub_supervisor_pidfile, HUB_USER)
    killed = running_pid(real_hub.hub_pidfile, HUB_USER)
    assert supervisor and killed and supervisor != killed

    os.kill(killed, signal.SIGKILL)
    started = time.monotonic()
    wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "the killed hub gone")
    wait_until(
        lambda: _answers(f"{hub_client.base}/hub/api/"), BACK_WITHIN, "the hub answering again"
    )
    back = time.monotonic() - started
    estimate = f"http://127.0.0.1:{real_hub.site.hub.service_port}/services/factoryhub/estimate"
    wait_until(lambda: _answers(estimate), 20, "the hub service started by the new hub")
    service = time.monotonic() - started
    print(f"hub answered again {back:.1f} s after kill -9, its service {service:.1f} s")

    restarted = running_pid(real_hub.hub_pidfile, HUB_USER)
    assert restarted and restarted != killed
    assert running_pid(real_hub.hub_supervisor_pidfile, HUB_USER) == supervisor
    server = hub_client.server("tlearner1", token)  # the learner's token still valid
    assert server and server["ready"], server
    assert job_of("tlearner1") == job_id  # the same job: none cancelled, none added
    assert squeue_row(job_id)["state"] == "RUNNING"
    assert "/user/tlearner1" in hub_client.routes()
    r = httpx.get(
        f"{hub_client.base}/user/tlearner1/api/status",
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text[:200]
    hub_client.login_token("tlearner1")  # the login page works again (PAM, through the proxy)
    hub_client.stop("tlearner1", token)
    assert squeue_row(job_id).get("state", "gone") in ("CANCELLED", "COMPLETING", "gone")


def test_stopping_the_hub_stops_its_supervisor_too(real_hub):
    """`factoryhub demo stop` must stop the hub for good, not have its supervisor restart it;
    the next start brings both back."""
    from factoryhub.demo.hubprocess import start_hub, stop_hub

    stop_hub(real_hub, proxy=False)
    assert not running_pid(real_hub.hub_supervisor_pidfile, HUB_USER)
    time.sleep(2)  # ten times the supervisor's fastest restart
    assert not running_pid(real_hub.hub_pidfile, HUB_USER)
    assert not _answers(f"http://127.0.0.1:{real_hub.site.hub.hub_port}/hub/api/")
    start_hub(real_hub)
    assert running_pid(real_hub.hub_supervisor_pidfile, HUB_USER)
    assert running_pid(real_hub.hub_pidfile, HUB_USER)
