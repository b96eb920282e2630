"""A published course starts with its preset through the REST API too: the GPU course becomes a
job with its GPU, CPUs and memory, and its notebooks are in the learner's home."""

import subprocess
from pathlib import Path

import httpx
import pytest
from realsite import job_of, squeue_row

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_gpu_course_preset_through_the_api(hub_client):
    hub_client.publish_course(REPO / "notebooks" / "pytorch-gpu")
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token, name="dl", options={"course": "pytorch-gpu"})
    job = job_of("tlearner1", "dl")
    assert squeue_row(job)["gres"] == "gres:gpu:h100:1"
    detail = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "NumCPUs=4" in detail and "mem=16G" in detail
    r = httpx.get(
        f"{hub_client.base}/user/tlearner1/dl/api/contents/courses/pytorch-gpu",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert "01-digits-on-gpu.ipynb" in {item["name"] for item in r.json()["content"]}
    with hub_client.api(token) as api:
        refused = api.post(
            "/users/tlearner1/servers/x", json={"user_options": {"course": "../etc"}}
        )
    assert refused.status_code == 400 and "not in the catalogue" in refused.json()["message"]
    hub_client.stop("tlearner1", token, name="dl")
