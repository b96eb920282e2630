"""Learners on the real embedded site can neither read each other nor starve each other
(security issue 13, findings 6 and 7): private homes and session logs, Slurm's PrivateData
(with the hub's `factoryhub` account an operator that still sees everything), a CPU cap per
learner in the QoS, and the hub service's per-user rate limit.

Two learners of their own (`fhiso1`, `fhiso2`), made by `ensure_accounts` as the demo's are;
the demo's accounts and homes are left alone."""

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from realsite import REPO, wait_until

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.demo.embedded import HUB_USER
from factoryhub.jobscript import SessionJob, render_job_script
from factoryhub.request import parse_request
from factoryhub.site import load_site

pytestmark = pytest.mark.integration

ME, OTHER = "fhiso1", "fhiso2"


def _as(user: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    home = os.path.expanduser(f"~{user}")
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=home if os.path.isdir(home) else "/",
        timeout=60,
    )


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def learners():
    """Two learners with Slurm associations; homes an older set-up left 0755 are reset to
    0755 first, so that `ensure_accounts` has to make them private."""
    site = load_site(REPO / "hub_config" / "site.toml")
    for name in (ME, OTHER):
        home = os.path.expanduser(f"~{name}")
        if os.path.isdir(home):
            os.chmod(home, 0o755)  # noqa: S103 (the mode homes had before the fix)
    accounts = tuple(DemoAccount(n, f"{n}-isolation-test") for n in (ME, OTHER))
    ensure_accounts(accounts, site.hub.allowed_group, site.access)
    return site


def _sbatch(user: str, *options: str, script: str = "sleep 120") -> str:
    done = _as(user, "sbatch", "--parsable", "--job-name=fh:isotest", *options, "--wrap", script)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _squeue(user: str, *options: str) -> set[str]:
    done = _as(user, "squeue", "--noheader", "--states=all", "--format=%i", *options)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_homes_made_by_ensure_accounts_are_private(learners):
    for name in (ME, OTHER):
        assert _mode(os.path.expanduser(f"~{name}")) == 0o700
    assert _as(ME, "ls", os.path.expanduser(f"~{OTHER}")).returncode != 0


def test_a_learner_sees_only_their_own_jobs_and_the_hub_sees_all(learners):
    theirs = _sbatch(OTHER, "--partition=debug", "--time=5")
    mine = _sbatch(ME, "--partition=debug", "--time=5")
    try:
        assert {theirs, mine} <= _squeue("root")
        seen = _squeue(ME)
        assert mine in seen and theirs not in seen
        assert _as(ME, "scontrol", "show", "job", theirs).returncode != 0
        accounted = _as(ME, "sacct", "--allusers", "--noheader", "-X", "--format=JobID").stdout
        assert theirs not in accounted.split()
        records = _as(ME, "sacctmgr", "-n", "-p", "show", "user", "withassoc").stdout
        assert OTHER not in records and ME in records
        # the hub's own account, a Slurm operator, sees everyone's jobs and records
        assert {theirs, mine} <= _squeue(HUB_USER)
        records = _as(HUB_USER, "sacctmgr", "-n", "-p", "show", "user", "withassoc").stdout
        assert OTHER in records and ME in records
    finally:
        subprocess.run(["scancel", theirs, mine], check=False)


def test_capacity_and_own_limits_still_reach_a_learner(learners):
    """What a learner's kernel runs for the widgets (sinfo, the QoS, their own records)."""
    nodes = _as(ME, "sinfo", "--noheader", "--Node", "--format=%N").stdout.split()
    assert {"cn01", "cn02", "gn01", "gn02"} <= set(nodes)
    code = (
        "import asyncio\nfrom factoryhub.scheduler.slurm import SlurmClient\n"
        "c = SlurmClient(switch_user=False)\n"
        f"a = asyncio.run(c.associations({ME!r}))\ncap = asyncio.run(c.capacity())\n"
        "print(a.accounts, a.qos, [q.max_gpus_per_job for q in a.limits], len(cap.nodes))"
    )
    done = _as(ME, "/opt/factoryhub/venv/bin/python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("] ")[0].startswith("('training',)")
    assert "('normal',) [2]" in done.stdout and not done.stdout.strip().endswith(" 0")


def test_the_session_log_is_the_learners_alone(learners):
    home = os.path.expanduser(f"~{ME}")
    subprocess.run(["rm", "-rf", f"{home}/.factoryhub-isotest"], check=True)
    job = SessionJob(
        request=parse_request({"partition": "debug", "walltime": "00:05:00"}, learners),
        job_name="fh:isotest",
        command=("/bin/true",),
        log_dir=".factoryhub-isotest/logs",
    )
    done = _as(ME, "sbatch", "--parsable", stdin=render_job_script(job))
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    log = f"{home}/.factoryhub-isotest/logs/session-{job_id}.log"
    written = lambda: os.path.exists(log) and f"job {job_id}" in Path(log).read_text()  # noqa: E731
    wait_until(written, 60, "the session's first log line")
    assert _mode(log) == 0o600
    assert _mode(os.path.dirname(log)) == _mode(f"{home}/.factoryhub-isotest") == 0o700


def _reason(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True)
    return out.stdout.decode().strip()


def test_one_learner_cannot_hold_more_cpus_than_the_qos_cap(learners):
    over = _as(ME, "sbatch", "--nodes=2", "--ntasks=34", "--partition=cpu", "--wrap", "true")
    assert over.returncode != 0 and "QOSMaxCpuPerUserLimit" in over.stderr
    first = _sbatch(ME, "--partition=cpu", "--cpus-per-task=20", "--time=5")
    second = _sbatch(ME, "--partition=cpu", "--cpus-per-task=20", "--time=5")
    try:
        wait_until(lambda: _reason(first).startswith("RUNNING"), 30, "first job running")
        wait_until(
            lambda: _reason(second) == "PENDING|QOSMaxCpuPerUserLimit", 15, "second held by QoS"
        )
        other = _sbatch(OTHER, "--partition=cpu", "--cpus-per-task=20", "--time=5")
        try:  # another learner is not held back by the first one's cap
            wait_until(lambda: _reason(other).startswith("RUNNING"), 30, "other learner runs")
        finally:
            subprocess.run(["scancel", other], check=False)
    finally:
        subprocess.run(["scancel", first, second], check=False)


def test_the_service_answers_429_past_one_users_limit_and_serves_the_others(learners, hub_client):
    admin = hub_client.login_token("tadmin")
    tokens = {}
    with hub_client.api(admin) as api:
        for name in (ME, OTHER):
            r = api.post("/users", json={"usernames": [name]})
            assert r.status_code in (201, 409), r.text
            r = api.post(f"/users/{name}/tokens", json={"note": "isolation test"})
            assert r.status_code == 201, r.text
            tokens[name] = r.json()["token"]
    url = f"{hub_client.base}/services/factoryhub/estimate"
    burst = hub_client.hub.site.limits.service_burst

    def ask(user: str, **params) -> httpx.Response:
        headers = {"Authorization": f"token {tokens[user]}"}
        return httpx.get(url, params=params, headers=headers, timeout=30)

    codes = []
    while 429 not in codes and len(codes) < burst + 10:
        codes.append(ask(ME, cpus="-1").status_code)  # refused at once: no Slurm call
    refused = ask(ME, partition="cpu", cpus="1")
    assert refused.status_code == 429, codes
    assert codes.index(429) >= burst and set(codes[: codes.index(429)]) == {400}, codes
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many requests" in refused.json()["message"]
    served = ask(OTHER, partition="cpu", cpus="1")
    assert served.status_code == 200, served.text
