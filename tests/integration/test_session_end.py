"""The session knows its end and survives Slurm's walltime warning (SIGUSR1 ahead of the end).

With a 3-minute walltime the warning comes halfway (Slurm sends it up to a minute early); an
unprepared Python server would die from SIGUSR1."""

import httpx
import pytest
from realsite import job_of, squeue_row, wait_until

pytestmark = pytest.mark.integration


def test_walltime_warning_is_taken_and_time_left_is_known(hub_client):
    token = hub_client.login_token("carol")
    hub_client.start("carol", token, options={"walltime": "00:03:00"})
    job_id = job_of("carol")
    url = f"{hub_client.base}/user/carol/factoryhub/session"
    headers = {"Authorization": f"token {token}"}

    def session():
        r = httpx.get(url, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    info = session()
    assert info["job_id"] == job_id and 0 < info["seconds_left"] <= 180
    warned = wait_until(lambda: session()["warned"], 120, "Slurm's walltime warning", interval=2)
    assert warned
    assert squeue_row(job_id)["state"] == "RUNNING"  # the signal did not kill the session
    assert hub_client.server("carol", token)["ready"]
    hub_client.stop("carol", token)
