"""A workshop reservation: offered to its members only, and their sessions run in it."""

import subprocess

import pytest
from realsite import job_of

pytestmark = pytest.mark.integration


@pytest.fixture
def workshop():
    name = "fhtest-workshop"
    subprocess.run(
        [
            "scontrol",
            "create",
            "reservation",
            f"ReservationName={name}",
            "Users=tlearner1",
            "StartTime=now",
            "Duration=30",
            "Nodes=cn02",
            "Flags=IGNORE_JOBS",
        ],
        check=True,
        capture_output=True,
    )
    yield name
    subprocess.run(["scontrol", "delete", f"reservation={name}"], check=False)


def _reservation_of(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
    return next(f.split("=", 1)[1] for f in out.stdout.split() if f.startswith("Reservation="))


def test_member_runs_in_the_reservation_others_are_refused(hub_client, workshop):
    tlearner3 = hub_client.login_token("tlearner3")
    with hub_client.api(tlearner3) as api:
        r = api.post("/users/tlearner3/server", json={"user_options": {"reservation": workshop}})
    assert r.status_code == 400
    assert f"reservation: '{workshop}' is not available to you" in r.json()["message"]

    tlearner1 = hub_client.login_token("tlearner1")
    hub_client.start(
        "tlearner1", tlearner1, options={"reservation": workshop, "account": "ai-research"}
    )
    job_id = job_of("tlearner1")
    assert _reservation_of(job_id) == workshop
    hub_client.stop("tlearner1", tlearner1)
