"""The budget in sight on the real site: a Slurm account of the test's own with a GrpTRESMins
budget (made with SlurmAdmin, removed in the `finally`); the spawn form says what sshare says,
a request over it is refused before anything is submitted with what would fit, and Slurm
itself refuses such a job, with a bare AssocGrpGRESMinutes."""

import asyncio
import subprocess

import httpx
import pytest
from realsite import wait_until

from factoryhub.budget import SSHARE_FORMAT, describe_budget, parse_sshare
from factoryhub.scheduler.admin import SlurmAdmin

pytestmark = pytest.mark.integration

ACCOUNT = "tbudget"
LEARNER = "tlearner3"  # charges training only, until the test adds it to tbudget


def _sshare() -> str:
    argv = ["sshare", "--noheader", "--parsable2", "--long", f"--format={SSHARE_FORMAT}"]
    return subprocess.run([*argv, f"--accounts={ACCOUNT}"], capture_output=True, text=True).stdout


def _queued(user: str) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i"], capture_output=True, text=True)
    return set(out.stdout.split())


def test_the_form_shows_what_sshare_says_and_a_request_over_it_is_explained(hub_client):
    admin = SlurmAdmin()
    asyncio.run(admin.add_account(ACCOUNT, limits=["GrpTRESMins=cpu=600,gres/gpu=90"]))
    job = ""
    try:
        asyncio.run(admin.add_users([LEARNER], [f"account={ACCOUNT}", "qos=normal"]))
        budget = parse_sshare(_sshare())[ACCOUNT]
        assert budget.limits == {"cpu": 600, "gres/gpu": 90}
        lines = describe_budget(budget)
        assert lines == [
            "You have 1.5 GPU-hours left on tbudget (0 used, of 1.5).",
            "You have 10 CPU-hours left on tbudget (0 used, of 10).",
        ]
        # the hub reads every account's budget, and the learner's accounts too, at most every
        # accounting_refresh_seconds (the test site: 5): the new account shows within two
        # readings
        wait_until(
            lambda: all(line in hub_client.spawn_page(LEARNER) for line in lines),
            60,
            "the spawn form shows the tbudget budget",
            5,
        )
        token = hub_client.login_token(LEARNER)
        # the hub service tells a learner (and the GPU widget, with the session's token) the
        # budgets of their own accounts, and no one else's
        service = f"{hub_client.base}/services/factoryhub/api/budget"

        def budget_listed() -> list[dict]:
            mine = httpx.get(service, headers={"Authorization": f"token {token}"}, timeout=30)
            return [a for a in mine.json()["accounts"] if a["account"] == ACCOUNT]

        # the service keeps readings of its own, renewed the same way
        (tbudget,) = wait_until(budget_listed, 60, "the service lists the tbudget budget", 5)
        assert tbudget["lines"] == lines and tbudget["left"] == {"cpu": 600, "gres/gpu": 90}
        other = hub_client.login_token("tlearner2")
        theirs = httpx.get(service, headers={"Authorization": f"token {other}"}, timeout=30)
        assert ACCOUNT not in {a["account"] for a in theirs.json()["accounts"]}
        before = _queued(LEARNER)
        options = {"partition": "gpu", "gpus": 2, "walltime": "01:00:00", "account": ACCOUNT}
        with hub_client.api(token) as api:
            r = api.post(f"/users/{LEARNER}/server", json={"user_options": options})
        assert r.status_code == 400, r.text
        assert r.json()["message"] == (
            "walltime: cannot start: this session needs 2 GPU-hours (2 GPUs × 1 h) and tbudget"
            " has 1.5 GPU-hours left: ask for at most 45 minutes with 2 GPUs or 1 GPU for 1 h"
        )
        assert _queued(LEARNER) == before  # nothing submitted
        # Slurm enforces the same budget: it refuses such a job with a bare policy error
        # (DenyOnLimit), and takes one that fits
        argv = ["runuser", "-u", LEARNER, "--", "sbatch", "--parsable", f"--account={ACCOUNT}"]
        argv += ["--partition=gpu", "--wrap", "sleep 1"]
        refused = subprocess.run([*argv, "--gres=gpu:2", "--time=60"], capture_output=True)
        assert refused.returncode != 0 and b"AssocGrpGRESMinutes" in refused.stderr
        fits = subprocess.run([*argv, "--gres=gpu:1", "--time=30"], capture_output=True)
        job = fits.stdout.decode().strip()
        assert fits.returncode == 0 and job.isdigit(), fits.stderr
    finally:
        if job:
            subprocess.run(["scancel", job], check=False)
        asyncio.run(admin.remove_user(LEARNER, ACCOUNT))
        asyncio.run(admin.remove_account(ACCOUNT))


WIDGET = """
from factoryhub.widgets import GPURequest
request = GPURequest()
await request.load_access()  # accounts and QoS from sacctmgr, the budget from the hub service
print("BUDGET", request.budget_line.value)
request.gpus.value, request.walltime.value = 2, "12:00:00"
print("FITS", request.message.value == "", request.submit_button.disabled)
"""


async def test_the_gpu_widget_shows_the_budget_of_the_learners_account(hub_client):
    from realsite import assert_between_readings, budget_reading, hours_left, kernel_in

    user = "tlearner2"
    token = hub_client.login_token(user)
    hub_client.start(user, token, options={"partition": "cpu"})
    try:
        async with kernel_in(hub_client.base, f"/user/{user}/", token) as execute:
            # what the hub service says of tlearner2's accounts (test_the_form_shows_what_sshare_
            # says… compares those sentences with sshare), every one of them in the widget
            before = budget_reading(hub_client.base, token)
            out = await execute(WIDGET, timeout=90)
            after = budget_reading(hub_client.base, token)
        shown = out.split("BUDGET", 1)[1].split("\n", 1)[0]
        assert {account for account, _ in before} == {"training", "ai-research"}
        assert_between_readings(hours_left(shown), before, after)
        assert "FITS True False" in out, out  # 24 GPU-hours fit in training's budget
    finally:
        hub_client.stop(user, token)
