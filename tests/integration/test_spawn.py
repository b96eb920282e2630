"""A learner's JupyterLab as a Slurm job of the learner, through the real hub and proxy."""

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from realsite import (
    _xsrf,
    job_id_in,
    job_of,
    run_in_kernel,
    server_job,
    squeue_row,
    wait_until,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


async def test_session_runs_as_the_learner_inside_slurm(hub_client):
    token = hub_client.login_token("tlearner1")
    events = hub_client.start("tlearner1", token, options={"partition": "cpu", "cpus": 1})
    messages = " | ".join(e["message"] for e in events)
    # The cpu partition has room: an immediate allocation, no wait for the scheduler's tick.
    assert "Room in cpu now: started as Slurm job" in messages and "Server ready" in messages
    state = hub_client.hub.state_dir
    assert state.exists()
    job_id = job_id_in(events)
    row = squeue_row(job_id)
    assert row["state"] == "RUNNING" and row["user"] == "tlearner1"
    assert row["name"] == "fh:test:tlearner1:"

    # The JupyterLab API answers through configurable-http-proxy.
    base = hub_client.base
    r = httpx.get(f"{base}/user/tlearner1/api/status", headers={"Authorization": f"token {token}"})
    assert r.status_code == 200, r.text
    assert "/user/tlearner1" in hub_client.routes()

    out = await run_in_kernel(
        base,
        "/user/tlearner1/",
        token,
        "import getpass, os; print(getpass.getuser(), os.environ['SLURM_JOB_ID'])",
    )
    user, kernel_job = out.split()
    assert user == "tlearner1" and kernel_job == job_id

    hub_client.stop("tlearner1", token)
    assert squeue_row(job_id).get("state", "gone") in ("CANCELLED", "COMPLETED", "gone")
    assert "/user/tlearner1" not in hub_client.routes()


async def test_gpu_named_server_gets_its_gpus(hub_client):
    token = hub_client.login_token("tlearner2")
    events = hub_client.start(
        "tlearner2", token, name="gpu", options={"partition": "gpu", "gpus": 2, "cpus": 2}
    )
    job_id = job_id_in(events)
    assert squeue_row(job_id)["gres"] == "gres:gpu:h100:2"
    out = await run_in_kernel(
        hub_client.base,
        "/user/tlearner2/gpu/",
        token,
        "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])",
    )
    assert out.strip() == "0,1"
    hub_client.stop("tlearner2", token, name="gpu")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpus": "2; reboot"}, "cpus"),
        ({"partition": "gpu", "gpus": 9}, "the gpu partition allows at most 4 GPUs per job"),
        ({"command": "/bin/sh"}, "unknown option 'command'"),
        ({"walltime": "99:00:00", "partition": "debug"}, "at most 30 minutes"),
    ],
)
def test_bad_request_is_a_400_and_submits_nothing(hub_client, options, message):
    token = hub_client.login_token("tlearner3")
    before = squeue_ids("tlearner3")
    with hub_client.api(token) as api:
        r = api.post("/users/tlearner3/server", json={"user_options": options})
        assert r.status_code == 400, r.text
        assert message in r.json()["message"]
        stored = api.get("/users/tlearner3").json()["servers"].get("", {}).get("user_options")
    assert squeue_ids("tlearner3") == before
    assert not stored  # the raw options were not kept


def test_job_cancelled_outside_the_hub_is_noticed(hub_client):
    token = hub_client.login_token("tlearner3")
    events = hub_client.start("tlearner3", token)
    job_id = job_id_in(events)
    import subprocess

    subprocess.run(["scancel", job_id], check=True)
    # poll_interval is 2 s in the test site; JupyterHub polls with jitter.
    wait_until(lambda: hub_client.server("tlearner3", token) is None, 20, "hub noticed the cancel")
    assert "/user/tlearner3" not in hub_client.routes()
    hub_client.start("tlearner3", token)  # the learner can start again, no admin needed
    hub_client.stop("tlearner3", token)


def _stubborn_servers(user: str) -> list[str]:
    found = subprocess.run(["pgrep", "-u", user, "-x", "-f", "sleep 271"], capture_output=True)
    return found.stdout.decode().split()


def test_a_server_that_ignores_sigterm_does_not_outlive_its_stopped_session(hub_client):
    """Stopping a session cancels its job; Slurm sends SIGTERM to the step, then SIGKILL after
    KillWait (10 s). A server that does not stop on SIGTERM (in CI a JupyterLab's shutdown
    hung) must still be gone with its job: the step's shell used to die from the SIGTERM and
    leave the server to init, where proctrack/linuxproc no longer sees it."""
    user = "tlearner3"
    token = hub_client.login_token(user)
    assert not _stubborn_servers(user)
    with hub_client.api(token) as api:
        r = api.post(f"/users/{user}/server", json={"user_options": {"environment": "stubborn"}})
        assert r.status_code == 202, r.text
    job_id = wait_until(lambda: server_job(user, "R"), 30, "the session's job running")
    wait_until(lambda: _stubborn_servers(user), 30, "the stubborn server running")
    hub_client.stop(user, token)
    wait_until(
        lambda: squeue_row(job_id).get("state", "gone") in ("CANCELLED", "COMPLETED", "gone"),
        60,
        "the job ended",
    )
    wait_until(lambda: not _stubborn_servers(user), 30, "the server gone with its job", 1)


def test_a_link_starts_nothing_only_the_forms_xsrf_post_does(hub_client):
    # A page on any site can send the learner's browser to the catalogue's "Start course" link
    # (a GPU course here): that GET shows the prefilled form and starts nothing.
    hub_client.publish_course(REPO / "notebooks" / "pytorch-gpu")
    token = hub_client.login_token("tlearner3")
    hub_client.remove_named_servers("tlearner3", token)  # earlier tests' spawn pages made some
    before = squeue_ids("tlearner3")
    link = "/hub/spawn/tlearner3/dl?opt-course=pytorch-gpu&next=https://evil.example/"
    with hub_client._logged_in("tlearner3") as web:
        for url in (
            link,
            "/hub/spawn/tlearner3/dl?course=pytorch-gpu",
            "/hub/spawn/tlearner3/g?partition=gpu&gpus=2",
        ):
            r = web.get(url)
            assert r.status_code == 200 and 'id="spawn_form"' in r.text, (url, r.status_code)
        page = web.get(link).text
        assert 'id="fh-confirm"' in page and 'name="course" value="pytorch-gpu"' in page
        assert '<option value="gpu" selected>' in page
        refused = web.get("/hub/spawn/tlearner3/dl?walltime=1:30")
        assert refused.status_code == 400 and "01:30:00 or 90" in refused.text
        assert squeue_ids("tlearner3") == before
        assert hub_client.server("tlearner3", token, "dl") is None
        assert hub_client.server("tlearner3", token, "g") is None

        # A cross-site form POST has no XSRF token: refused, nothing queued.
        forged = web.post(link, data={"course": "pytorch-gpu"}, follow_redirects=False)
        assert forged.status_code == 403
        assert (
            squeue_ids("tlearner3") == before
            and hub_client.server("tlearner3", token, "dl") is None
        )

        # The learner presses Start: the form's POST carries the token and starts the preset;
        # the hub never follows next= off-site.
        started = web.post(link, data={"course": "pytorch-gpu", "_xsrf": _xsrf(web)})
        assert started.status_code == 200, started.text[:300]
        assert urlsplit(str(started.url)).hostname == urlsplit(hub_client.base).hostname
    wait_until(
        lambda: (hub_client.server("tlearner3", token, "dl") or {}).get("ready"), 180, "ready"
    )
    assert squeue_row(job_of("tlearner3", "dl"))["gres"] == "gres:gpu:h100:1"
    hub_client.stop("tlearner3", token, name="dl")


def squeue_ids(user: str) -> set[str]:
    import subprocess

    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i"], capture_output=True, text=True
    ).stdout
    return set(out.split())
