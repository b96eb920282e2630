"""Accounts and QoS from the embedded site's accounting database (MariaDB + slurmdbd): what
`sacctmgr` grants is what the form offers, its QoS limits are checked before anything is
submitted, and Slurm itself enforces them behind FactoryHub."""

import asyncio
import subprocess

import pytest
from realsite import job_id_in, squeue_row

from factoryhub.reasons import explain_refusal
from factoryhub.scheduler.slurm import SlurmClient

pytestmark = pytest.mark.integration

NO_ASSOCIATION = "fhnoslurm"  # a Unix account of the hub's group that Slurm has never heard of


def _queued(user: str) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i"], capture_output=True, text=True)
    return set(out.stdout.split())


def _sbatch_as(user: str, *options: str) -> subprocess.CompletedProcess:
    argv = ["runuser", "-u", user, "--", "sbatch", "--parsable", *options, "--wrap", "sleep 1"]
    return subprocess.run(argv, capture_output=True, text=True, cwd="/tmp")


def test_the_database_grants_what_site_toml_lists(real_hub):
    client = SlurmClient()
    tlearner1 = asyncio.run(client.associations("tlearner1"))
    assert tlearner1 is not None, "sacctmgr did not answer: is slurmdbd up?"
    assert tlearner1.accounts == ("training", "ai-research") and tlearner1.qos == ("normal",)
    (normal,) = tlearner1.limits
    assert (normal.max_gpus_per_job, normal.max_walltime_minutes) == (2, 720)
    trainer = asyncio.run(client.associations("ttrainer"))
    assert trainer.qos == ("normal", "long")


def test_slurm_itself_refuses_what_the_qos_does_not_allow():
    # Behind FactoryHub's own check, the scheduler enforces the same limits (DenyOnLimit).
    refused = _sbatch_as("tlearner1", "--partition=gpu", "--gres=gpu:3")
    assert refused.returncode != 0 and "QOSMaxGRESPerJob" in refused.stderr
    assert "(QOSMaxGRESPerJob)" in explain_refusal(refused.stderr)
    wrong = _sbatch_as("tlearner3", "--account=ai-research")
    assert wrong.returncode != 0 and "Invalid account" in wrong.stderr


def test_over_the_qos_limit_is_a_400_with_the_limit_and_submits_nothing(hub_client):
    token = hub_client.login_token("tlearner1")
    before = _queued("tlearner1")
    with hub_client.api(token) as api:
        for options, message in [
            ({"partition": "gpu", "gpus": 3}, "gpus: the QoS normal allows at most 2 GPUs"),
            ({"partition": "gpu", "walltime": "20:00:00"}, "the QoS normal allows at most 12 h"),
            ({"qos": "long"}, "qos: 'long' is not available to you (yours: normal)"),
        ]:
            r = api.post("/users/tlearner1/server", json={"user_options": options})
            assert r.status_code == 400 and message in r.json()["message"], r.text
    assert _queued("tlearner1") == before
    html = hub_client.spawn_page("tlearner1")
    assert "normal (per job: at most 2 GPUs, 12 h)" in html


def test_a_qos_with_more_room_starts_what_the_default_refuses(hub_client):
    token = hub_client.login_token("ttrainer")
    options = {"partition": "gpu", "gpus": 3, "qos": "long", "account": "ai-research"}
    events = hub_client.start("ttrainer", token, name="big", options=options)
    job_id = job_id_in(events)
    row = squeue_row(job_id)
    assert (row["state"], row["qos"], row["account"]) == ("RUNNING", "long", "ai-research")
    assert row["gres"] == "gres:gpu:h100:3"
    hub_client.stop("ttrainer", token, name="big")


def test_a_learner_slurm_does_not_know_is_told_before_anything_is_submitted(hub_client):
    subprocess.run(["useradd", "--create-home", NO_ASSOCIATION], capture_output=True)
    subprocess.run(["usermod", "--append", "--groups", "factoryhub", NO_ASSOCIATION], check=True)
    assert "Invalid account" in _sbatch_as(NO_ASSOCIATION).stderr  # Slurm would refuse too
    admin = hub_client.login_token("tadmin")
    with hub_client.api(admin) as api:
        assert api.post("/users", json={"usernames": [NO_ASSOCIATION]}).status_code in (201, 409)
        r = api.post(f"/users/{NO_ASSOCIATION}/server", json={"user_options": {}})
    assert r.status_code == 400, r.text
    assert "you have no Slurm account on this site yet" in r.json()["message"]
    assert _queued(NO_ASSOCIATION) == set()
