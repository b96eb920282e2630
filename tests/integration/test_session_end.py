"""The session knows its end and warns before it, on both start paths, without losing a kernel.

- A session started as an immediate allocation has no batch shell for Slurm to signal (Slurm
  would signal every process of the step, kernels too): its own clock warns.
- A queued session is a batch job: Slurm's warning signal (SIGUSR1 ahead of the end, up to a
  minute early) reaches the server, which takes it instead of dying from it.

With a 3-minute walltime the warning is due halfway."""

import subprocess

import httpx
import pytest
from realsite import job_of, kernel_in, server_job, squeue_row, wait_until

pytestmark = pytest.mark.integration
NODES = "nodename=cn[01-02]"


def _session(hub_client, user: str, token: str) -> dict:
    url = f"{hub_client.base}/user/{user}/factoryhub/session"
    r = httpx.get(url, headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _queued_start(hub_client, user: str, token: str, options: dict) -> None:
    """Start a session that cannot start at once (nodes drained), then let it run: the queue
    path, a batch job."""
    subprocess.run(["scontrol", "update", NODES, "state=drain", "reason=fh-test"], check=True)
    try:
        with hub_client.api(token) as api:
            r = api.post(f"/users/{user}/server", json={"user_options": options})
            assert r.status_code == 202, r.text
        wait_until(lambda: server_job(user, "PD"), 10, "the queued job")
    finally:
        subprocess.run(["scontrol", "update", NODES, "state=resume"], check=True)
    wait_until(lambda: (hub_client.server(user, token) or {}).get("ready"), 60, "queued ready")


async def test_walltime_warning_on_both_paths_keeps_kernels_and_time_left_is_known(hub_client):
    short = {"walltime": "00:03:00"}
    tlearner3, tlearner2 = hub_client.login_token("tlearner3"), hub_client.login_token("tlearner2")
    events = hub_client.start_events("tlearner3", tlearner3, options=short)
    assert any("Room in cpu now" in e["message"] for e in events)  # the immediate path
    _queued_start(hub_client, "tlearner2", tlearner2, short)
    jobs = {"tlearner3": job_of("tlearner3"), "tlearner2": job_of("tlearner2")}
    info = _session(hub_client, "tlearner3", tlearner3)
    assert info["job_id"] == jobs["tlearner3"] and 0 < info["seconds_left"] <= 180
    async with (
        kernel_in(hub_client.base, "/user/tlearner3/", tlearner3) as tlearner3_kernel,
        kernel_in(hub_client.base, "/user/tlearner2/", tlearner2) as tlearner2_kernel,
    ):
        await tlearner3_kernel("answer = 41")
        await tlearner2_kernel("answer = 41")
        wait_until(
            lambda: _session(hub_client, "tlearner3", tlearner3)["warned"], 150, "tlearner3's clock"
        )
        wait_until(
            lambda: _session(hub_client, "tlearner2", tlearner2)["slurm_signal"],
            150,
            "tlearner2's signal",
        )
        assert not _session(hub_client, "tlearner3", tlearner3)["slurm_signal"]  # no step signalled
        for user, token, kernel in (
            ("tlearner3", tlearner3, tlearner3_kernel),
            ("tlearner2", tlearner2, tlearner2_kernel),
        ):
            assert squeue_row(jobs[user])["state"] == "RUNNING"  # the warning killed nothing
            assert hub_client.server(user, token)["ready"]
            assert (await kernel("print(answer + 1)")).strip() == "42"  # nor the kernel
    hub_client.stop("tlearner3", tlearner3)
    hub_client.stop("tlearner2", tlearner2)
