"""Idle culling on the real site: jupyterhub-idle-culler runs as the test hub's service
factoryhub-culler and stops idle sessions, an idle GPU session before an idle CPU session
started before it; the stop is recorded and the learner's next spawn form says why.

The test shortens the test site's [culling] thresholds (in the copy of site.toml the hub and
its services read, which the culler's arbiter reads again when it changes) and exempts every
other test account, so no other test's session can be stopped; the site's own thresholds are
back in the `finally`."""

import subprocess
import time
import tomllib

import httpx
import pytest
import tomli_w
from realsite import TEST_ACCOUNTS, job_id_in, wait_until

from factoryhub.culling import read_exemptions
from factoryhub.identity import TRAINERS

pytestmark = pytest.mark.integration

GPU_LEARNER, CPU_LEARNER = "tlearner1", "tlearner2"


def _in_queue(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip() not in ("", "COMPLETED", "CANCELLED")


def test_an_idle_gpu_session_is_stopped_before_an_idle_cpu_session(real_hub, hub_client):
    culler = subprocess.run(
        ["pgrep", "-u", "factoryhub", "-f", "factoryhub.service.culler"],
        capture_output=True,
        text=True,
    )
    assert culler.stdout.strip(), "the culler service is not running"
    site_file = real_hub.hub_site
    original = site_file.read_text()
    tokens = {user: hub_client.login_token(user) for user in (GPU_LEARNER, CPU_LEARNER)}
    try:
        # The CPU session starts first: it is culled later all the same.
        cpu_job = job_id_in(hub_client.start(CPU_LEARNER, tokens[CPU_LEARNER]))
        gpu_options = {"partition": "gpu", "gpus": 1}
        gpu_job = job_id_in(hub_client.start(GPU_LEARNER, tokens[GPU_LEARNER], options=gpu_options))
        started = time.monotonic()
        raw = tomllib.loads(original)
        others = [u for u in TEST_ACCOUNTS if u not in (GPU_LEARNER, CPU_LEARNER)]
        raw["culling"].update(gpu_idle_minutes=0.25, idle_minutes=0.75, exempt_users=others)
        site_file.write_text(tomli_w.dumps(raw))

        def stopped(user: str) -> bool:
            return hub_client.server(user, tokens[user]) is None

        wait_until(lambda: stopped(GPU_LEARNER), 60, "the idle GPU session stopped", 1)
        gpu_after = time.monotonic() - started
        assert not stopped(CPU_LEARNER), "the CPU session went first"
        assert _in_queue(cpu_job)
        wait_until(lambda: not _in_queue(gpu_job), 60, "the GPU session's job ended", 1)
        wait_until(lambda: stopped(CPU_LEARNER), 90, "the idle CPU session stopped", 1)
        cpu_after = time.monotonic() - started
        # idle since before `started`: 15 s GPU threshold, less what had passed by then
        assert 10 <= gpu_after < cpu_after, (gpu_after, cpu_after)

        form = hub_client.spawn_page(GPU_LEARNER)
        assert 'id="fh-culled"' in form
        assert "Your last session was stopped at" in form
        assert "because it held 1 GPU and was idle for" in form
        assert "sessions with GPUs are stopped after 30 minutes idle" not in form  # 0.25 min
        cpu_form = hub_client.spawn_page(CPU_LEARNER)
        assert "because it was idle for" in cpu_form and "held 1 GPU" not in cpu_form
        log = (real_hub.state_dir / "hub.log").read_text(errors="replace")
        assert f"stopping {GPU_LEARNER}/: it held 1 GPU" in log
    finally:
        site_file.write_text(original)
        for user, token in tokens.items():
            if hub_client.server(user, token) is not None:
                hub_client.stop(user, token)


def test_trainers_exempt_a_session_through_the_service_and_learners_cannot(real_hub, hub_client):
    url = f"{hub_client.base}/services/factoryhub/api/culling/exemptions"

    def call(user: str, method: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"token {hub_client.login_token(user)}"}
        return httpx.request(method, url, json=body, headers=headers, timeout=30)

    body = {"user": "tlearner3", "server": "*", "hours": 1}
    assert call(CPU_LEARNER, "POST", {**body, "user": CPU_LEARNER}).status_code == 403
    assert call(CPU_LEARNER, "GET").status_code == 403
    refused = call("ttrainer", "POST", {**body, "hours": 500})
    assert refused.status_code == 400 and "hours" in refused.json()["message"]
    granted = call("ttrainer", "POST", body)
    assert granted.status_code == 201, granted.text
    assert (granted.json()["user"], granted.json()["by"]) == ("tlearner3", "ttrainer")
    listed = call("tadmin", "GET").json()["exemptions"]
    assert granted.json() in listed
    # the file the culler's arbiter reads on each look
    stored = read_exemptions(real_hub.site)
    assert any(e.user == "tlearner3" and e.by == "ttrainer" for e in stored)


def test_a_trainer_by_the_hubs_trainers_group_is_not_culled(real_hub, hub_client):
    """Single sign-on's trainers are members of the hub's trainers' group, not names in
    site.toml: the culler asks the hub (with its own role) and keeps their idle sessions; out
    of the group, the same idle session is stopped on the next look. (Not tlearner3: the
    exemption test above keeps its sessions for an hour.)"""
    user = CPU_LEARNER
    site_file = real_hub.hub_site
    original = site_file.read_text()
    admin = hub_client.api(hub_client.login_token("tadmin"))
    members = f"/groups/{TRAINERS}/users"
    token = hub_client.login_token(user)
    try:
        made = admin.post(f"/groups/{TRAINERS}")
        assert made.status_code in (201, 409), made.text  # 409: the group exists already
        added = admin.post(members, json={"users": [user]})
        assert added.status_code == 200, added.text
        hub_client.start(user, token, options={"partition": "cpu"})
        raw = tomllib.loads(original)
        others = [u for u in TEST_ACCOUNTS if u != user]
        raw["culling"].update(gpu_idle_minutes=0.25, idle_minutes=0.25, exempt_users=others)
        site_file.write_text(tomli_w.dumps(raw))
        time.sleep(30)  # 15 s idle, then looks every 5 s: three looks past the threshold
        assert hub_client.server(user, token) is not None, "the trainer's session was stopped"
        removed = admin.request("DELETE", members, json={"users": [user]})
        assert removed.status_code == 200, removed.text
        wait_until(lambda: hub_client.server(user, token) is None, 60, "the session culled", 1)
        log = (real_hub.state_dir / "hub.log").read_text(errors="replace")
        assert f"stopping {user}/: it was idle for" in log
    finally:
        site_file.write_text(original)
        admin.request("DELETE", members, json={"users": [user]})
        admin.close()
        if hub_client.server(user, token) is not None:
            hub_client.stop(user, token)
