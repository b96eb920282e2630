"""The attacker's tests of today's changes on the real site (tests/unit/test_attack_today.py has
the pure ones): a workshop's GPU budget of 0 is enforced by Slurm as none, and the training
partition's reservations admit their own seats only, whatever account a job names. Each makes
its own account or reservations and removes them in its `finally`."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime, timedelta

import pytest

from factoryhub.capacity import NodeCapacity
from factoryhub.scheduler.admin import SlurmAdmin
from factoryhub.workshop import SiteFacts, WorkshopRequest, plan_workshop

pytestmark = pytest.mark.integration

LEARNER = "tlearner3"  # charges training only, until a test adds it to its account


def _as(user: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv], capture_output=True, text=True, cwd="/tmp",
        timeout=90,
    )  # fmt: skip


def test_a_workshops_gpu_budget_of_zero_lets_slurm_take_no_gpu_job_of_its_account():
    """A trainer's order with gpu_hours 0 passes any bound; the account `workshop create`
    made for it had no GPU limit (its seats could use every reserved GPU for the slot)."""
    now = datetime.now().replace(microsecond=0)
    preset = {"partition": "gpu", "cpus": 1, "memory_gb": 1, "gpus": 1, "walltime": "01:00:00",
              "environment": "default"}  # fmt: skip
    node = NodeCapacity("gn01", "gpu", "idle", 16, 16, 128000, 0, {"h100": 4}, {})
    request = WorkshopRequest(name="tatkzero", courses=("deep",), start=now,
                              end=now + timedelta(hours=1), seats=2, gpu_hours=0.0)  # fmt: skip
    plan = plan_workshop(request, SiteFacts(now=now, presets={"deep": preset}, nodes=(node,)))
    account = "tatkgpu0"
    admin = SlurmAdmin()
    asyncio.run(admin.add_account(account, limits=plan.account_limits()))
    jobs = []
    try:
        asyncio.run(admin.add_users([LEARNER], [f"account={account}", "qos=normal"]))
        argv = ["sbatch", "--parsable", f"--account={account}", "--partition=gpu", "--time=5"]
        gpu_job = _as(LEARNER, *argv, "--gres=gpu:1", "--wrap", "sleep 1")
        jobs.append(gpu_job.stdout.strip())
        assert gpu_job.returncode != 0, f"Slurm took GPU job {gpu_job.stdout.strip()}"
        assert "AssocGrpGRESMinutes" in gpu_job.stderr
        cpu_job = _as(LEARNER, *argv, "--wrap", "sleep 1")  # the CPU budget still serves
        jobs.append(cpu_job.stdout.strip())
        assert cpu_job.returncode == 0, cpu_job.stderr
    finally:
        for job in filter(str.isdigit, jobs):
            subprocess.run(["scancel", job], check=False)
        asyncio.run(admin.remove_user(LEARNER, account))
        asyncio.run(admin.remove_account(account))


def _reservation(name: str, node: str, user: str) -> list[str]:
    """As `workshop create` makes one (OVERLAP: beside a benchmark's reservation, if any)."""
    return [
        "scontrol",
        "create",
        "reservation",
        f"ReservationName={name}",
        "StartTime=now",
        "Duration=00:10:00",
        "PartitionName=training",
        f"Nodes={node}",
        f"Users={user}",
        "Accounts=training",
        "Flags=OVERLAP",
    ]


def test_a_seat_of_one_workshop_gets_no_job_on_another_workshops_reservation():
    """Two workshops' reservations on the training partition, as `workshop create` makes them
    (Users: the seats, Accounts: the workshop's): tlearner1, a seat of the first, names the
    second (and an account both share) and is refused; on its own it runs."""
    made = []
    try:
        for name, node, user in (("tatk-a", "tn01", "tlearner1"), ("tatk-b", "tn02", "tlearner2")):
            done = subprocess.run(_reservation(name, node, user), capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            made.append(name)
        srun = ["srun", "--immediate=30", "-p", "training", "-A", "training", "-t", "1"]
        theirs = _as("tlearner1", *srun, "--reservation=tatk-b", "true")
        assert theirs.returncode != 0, "a seat ran on another workshop's reservation"
        assert "Access denied to requested reservation" in theirs.stderr, theirs.stderr
        mine = _as("tlearner1", *srun, "--reservation=tatk-a", "true")
        assert mine.returncode == 0, mine.stderr
    finally:
        for name in made:
            subprocess.run(["scontrol", "delete", f"ReservationName={name}"], check=False)
