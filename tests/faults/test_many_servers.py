"""F3 (hub killed with N ready servers: all re-adopted), L2 in small (one scheduler query per
poll interval for all servers, counted by slurmctld itself with `sdiag`), and L1, L3, L4 with
50 learners."""

import os
import re
import secrets
import signal
import subprocess
import time

import httpx
import pytest
from realsite import job_of, squeue_row, wait_until

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.demo.daemons import running_pid
from factoryhub.demo.hubprocess import start_hub

pytestmark = pytest.mark.faults

LEARNERS = ("tlearner1", "tlearner2", "tlearner3")


def _hub_lines_about(hub, users: list[str]) -> list[str]:
    """The hub log's warnings and errors naming one of `users` (what a failure shows)."""
    lines = (hub.state_dir / "hub.log").read_text(errors="replace").splitlines()
    return [line for line in lines if line[:3] in ("[W ", "[E ") and any(u in line for u in users)]


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
    hub_client.start("tlearner1", tokens["tlearner1"], name="second")
    yield tokens
    for user, token in tokens.items():
        hub_client.stop(user, token)
    hub_client.stop("tlearner1", tokens["tlearner1"], name="second")


def test_l2_one_scheduler_query_per_poll_for_all_servers(ready_servers):
    before = _job_info_rpcs()
    time.sleep(10)  # five poll intervals of the test site (2 s), four servers polled
    queries = _job_info_rpcs() - before
    print(f"slurmctld job-info RPCs in 10 s with 4 servers polled: {queries}")
    # One squeue per interval for all four servers is ~5; one per server would be ~20.
    assert 1 <= queries <= 8, queries


def test_f3_hub_killed_with_ready_servers_readopts_them_all(hub_client, real_hub, ready_servers):
    jobs = {user: job_of(user) for user in LEARNERS}
    killed = running_pid(real_hub.hub_pidfile)
    os.kill(killed, signal.SIGKILL)
    # its supervisor starts it again: gone means this pid is no longer the hub
    wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "hub gone")
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
    assert hub_client.server("tlearner1", ready_servers["tlearner1"], "second")["ready"]


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


def test_l1_l4_l3_fifty_learners_start_survive_a_hub_kill_and_stop(hub_client, real_hub):
    """L1: 50 learners press start in the same second: all ready (or told to retry with 429),
    no orphan. L4: the hub killed (-9) and restarted with the 50 running: all re-adopted. L3:
    50 stops at once: no job, no route, no record left."""
    from concurrent.futures import ThreadPoolExecutor

    users = [f"learner{i:02d}" for i in range(1, 51)]
    accounts = tuple(DemoAccount(u, secrets.token_urlsafe(12)) for u in users)
    ensure_accounts(accounts, "factoryhub", real_hub.site.access)
    admin = hub_client.login_token("tadmin")
    with hub_client.api(admin) as api:
        assert api.post("/users", json={"usernames": users}).status_code in (201, 409)

    def press_start(user: str) -> int:
        with hub_client.api(admin) as api:
            return api.post(f"/users/{user}/server", json={"user_options": {}}).status_code

    def ready(user: str) -> bool:
        return bool((hub_client.server(user, admin) or {}).get("ready"))

    pressed = time.monotonic()
    with ThreadPoolExecutor(len(users)) as pool:
        answers = dict(zip(users, pool.map(press_start, users), strict=True))
    assert set(answers.values()) <= {201, 202, 429}, answers
    started = [u for u, status in answers.items() if status != 429]
    waits: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while len(waits) < len(started) and time.monotonic() < deadline:
        with ThreadPoolExecutor(10) as pool:
            for user, is_ready in zip(started, pool.map(ready, started), strict=True):
                if is_ready and user not in waits:
                    waits[user] = time.monotonic() - pressed
        time.sleep(1)
    late = sorted(set(started) - set(waits))
    assert not late, (late, _hub_lines_about(real_hub, late[:3]))
    times = sorted(waits.values())
    print(f"L1: {len(started)} of 50 ready (429: {50 - len(started)}); p95 {times[-3]:.1f} s")
    jobs = {u: job_of(u) for u in started}  # exactly one live job each: no orphan

    killed = running_pid(real_hub.hub_pidfile)
    os.kill(killed, signal.SIGKILL)
    # its supervisor starts it again: gone means this pid is no longer the hub
    wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "hub gone")
    start_hub(real_hub)
    routes = hub_client.routes()
    with ThreadPoolExecutor(10) as pool:
        assert all(pool.map(ready, started))
    assert all(f"/user/{u}" in routes for u in started)
    assert {u: job_of(u) for u in started} == jobs
    assert all(squeue_row(j)["state"] == "RUNNING" for j in jobs.values())

    def stop(user: str) -> int:
        with hub_client.api(admin) as api:
            return api.delete(f"/users/{user}/server").status_code

    with ThreadPoolExecutor(len(started)) as pool:
        assert set(pool.map(stop, started)) <= {202, 204}
    wait_until(
        lambda: all(hub_client.server(u, admin) is None for u in started), 120, "records cleared"
    )
    assert all(squeue_row(j).get("state", "gone") in ("CANCELLED", "gone") for j in jobs.values())
    assert not [r for r in hub_client.routes() if r.startswith("/user/learner")]
