"""The start-estimate endpoint on the hub, against the real Slurm."""

import subprocess

import httpx
import pytest

pytestmark = pytest.mark.integration


def _estimate(hub_client, token, **params):
    return httpx.get(
        f"{hub_client.base}/services/factoryhub/estimate",
        params=params,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def _job_count() -> int:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True
    ).stdout
    return len(out.split())


def test_free_request_starts_now(hub_client):
    token = hub_client.login_token("tlearner1")
    r = _estimate(hub_client, token, partition="cpu", cpus="1")
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "now" and r.json()["message"] == "starts now"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"partition": "gpu", "gpus": "5"}, "the gpu partition allows at most 4 GPUs per job"),
        ({"partition": "debug", "walltime": "02:00:00"}, "at most 30 minutes"),
        ({"partition": "cpu\n#SBATCH --uid=0"}, "is not offered here"),
        ({"cpus": "-1"}, "cpus"),
    ],
)
def test_refused_requests_are_400_and_ask_nothing_of_slurm(hub_client, params, message):
    token = hub_client.login_token("tlearner1")
    before = _job_count()
    r = _estimate(hub_client, token, **params)
    assert r.status_code == 400 and message in r.json()["message"]
    assert _job_count() == before  # no sbatch --test-only (it would use up a job id)


def test_anonymous_callers_get_no_estimate(hub_client):
    r = httpx.get(f"{hub_client.base}/services/factoryhub/estimate", follow_redirects=False)
    assert r.status_code in (302, 403)


def test_cross_site_requests_are_refused(hub_client):
    token = hub_client.login_token("tlearner1")
    r = httpx.get(
        f"{hub_client.base}/services/factoryhub/estimate",
        headers={"Authorization": f"token {token}", "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
