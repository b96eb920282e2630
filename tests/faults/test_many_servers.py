"""F3 (hub killed with N ready servers: all re-adopted) and L2 in small (one scheduler query per
poll interval for all servers, counted by slurmctld itself with `sdiag`)."""

import os
import re
import signal
import subprocess
import time

import httpx
import pytest
from realsite import job_of, squeue_row, wait_until

from factoryhub.daemons import running_pid
from factoryhub.hubprocess import start_hub

pytestmark = pytest.mark.integration

LEARNERS = ("alice", "bob", "carol")


def _job_info_rpcs() -> int:
    out = subprocess.run(["sdiag"], capture_output=True, text=True, check=True).stdout
    return sum(
        int(n) for n in re.findall(r"REQUEST_JOB_INFO(?:_SINGLE)?\s+\(\s*\d+\)\s+count:(\d+)", out)
    )


@pytest.fixture
def ready_servers(hub_client):
    tokens = {user: hub_client.login_token(user) for user in LEARNERS}
    for user, token in tokens.items():
        hub_client.start(user, token)
    hub_client.start("alice", tokens["alice"], name="second")
    yield tokens
    for user, token in tokens.items():
        hub_client.stop(user, token)
    hub_client.stop("alice", tokens["alice"], name="second")


def test_l2_one_scheduler_query_per_poll_for_all_servers(ready_servers):
    before = _job_info_rpcs()
    time.sleep(10)  # five poll intervals of the test site (2 s), four servers polled
    queries = _job_info_rpcs() - before
    print(f"slurmctld job-info RPCs in 10 s with 4 servers polled: {queries}")
    # One squeue per interval for all four servers is ~5; one per server would be ~20.
    assert 1 <= queries <= 8, queries


def test_f3_hub_killed_with_ready_servers_readopts_them_all(hub_client, real_hub, ready_servers):
    jobs = {user: job_of(user) for user in LEARNERS}
    os.kill(running_pid(real_hub.hub_pidfile), signal.SIGKILL)
    wait_until(lambda: not running_pid(real_hub.hub_pidfile), 10, "hub gone")
    start_hub(real_hub)
    routes = hub_client.routes()
    for user, token in ready_servers.items():
        assert hub_client.server(user, token)["ready"]
        assert job_of(user) == jobs[user] and squeue_row(jobs[user])["state"] == "RUNNING"
        assert f"/user/{user}" in routes
        r = httpx.get(
            f"{hub_client.base}/user/{user}/api/status", headers={"Authorization": f"token {token}"}
        )
        assert r.status_code == 200
    assert hub_client.server("alice", ready_servers["alice"], "second")["ready"]


def test_l1_l3_small_many_start_together_and_stop_together(hub_client):
    """Six sessions requested in the same moment all become ready; stopped in the same moment
    they leave no job, no route and no server record behind."""
    from concurrent.futures import ThreadPoolExecutor

    tokens = {user: hub_client.login_token(user) for user in LEARNERS}
    servers = [(user, name) for user in LEARNERS for name in ("", "l3")]
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda s: hub_client.start(s[0], tokens[s[0]], name=s[1]), servers))
        jobs = [job_of(user, name) for user, name in servers]

        def stop(s):
            path = f"/users/{s[0]}/servers/{s[1]}" if s[1] else f"/users/{s[0]}/server"
            with hub_client.api(tokens[s[0]]) as api:
                return api.delete(path).status_code

        assert set(pool.map(stop, servers)) <= {202, 204}
    wait_until(
        lambda: all(hub_client.server(u, tokens[u], n) is None for u, n in servers),
        60,
        "every record cleared",
    )
    assert all(squeue_row(j).get("state", "gone") in ("CANCELLED", "gone") for j in jobs)
    routes = hub_client.routes()
    assert not [r for r in routes if r.startswith("/user/")], routes
