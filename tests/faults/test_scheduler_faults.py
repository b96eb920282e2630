"""Faults of shared/reliability.md injected into the real Slurm: F6 (controller down), F7, F8,
F9 (controller crash right after submit), F13 and F14 (a job that dies before it reports its
port), and the accounting database (slurmdbd) down."""

import asyncio
import re
import signal
import subprocess
import threading
import time

import httpx
import pytest
from realsite import REPO, job_id_in, job_of, squeue_row, wait_until

from factoryhub.demo.accounting import DBD_PID
from factoryhub.demo.daemons import stop_daemon
from factoryhub.demo.embedded import CTLD_PID, controller_answers, ensure_slurm
from factoryhub.scheduler.slurm import SlurmClient

pytestmark = pytest.mark.faults


def _ids(user: str) -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-u", user, "-o", "%i"], capture_output=True, text=True
    ).stdout
    return set(out.split())


def test_f6_controller_down_keeps_sessions_and_refuses_new_ones(hub_client):
    tlearner1 = hub_client.login_token("tlearner1")
    tlearner3 = hub_client.login_token("tlearner3")
    hub_client.start("tlearner1", tlearner1)
    job_id = job_of("tlearner1")
    tlearner3_jobs = _ids("tlearner3")
    stop_daemon(CTLD_PID)
    try:
        assert not controller_answers()
        time.sleep(12)  # several poll intervals (2 s), each squeue failing after ~9 s of retries
        assert hub_client.server("tlearner1", tlearner1)["ready"]
        started = time.monotonic()
        with hub_client.api(tlearner3) as api:
            r = api.post("/users/tlearner3/server", json={"user_options": {}})
        assert r.status_code == 503, r.text
        assert "nothing was submitted" in r.json()["message"]
        assert time.monotonic() - started < 3
    finally:
        ensure_slurm(REPO / "deploy")
    assert squeue_row(job_id)["state"] == "RUNNING"
    assert _ids("tlearner3") == tlearner3_jobs  # no job was submitted during the outage
    r = httpx.get(
        f"{hub_client.base}/user/tlearner1/api/status",
        headers={"Authorization": f"token {tlearner1}"},
    )
    assert r.status_code == 200
    hub_client.stop("tlearner1", tlearner1)
    wait_until(
        lambda: hub_client.server("tlearner3", tlearner3) is None,
        10,
        "tlearner3's failed record gone",
    )
    hub_client.start("tlearner3", tlearner3)  # recovered by itself: the learner can start again
    hub_client.stop("tlearner3", tlearner3)


def test_f14_job_dying_before_its_port_fails_the_spawn_fast_with_its_error(hub_client):
    token = hub_client.login_token("tlearner2")
    started = time.monotonic()
    events = hub_client.start_events("tlearner2", token, options={"environment": "broken"})
    elapsed = time.monotonic() - started
    last = events[-1]
    assert last.get("failed"), events
    # A batch job ends FAILED; an immediate allocation is ended by its step (CANCELLED) after
    # it logged the server's exit status. Either way the learner reads the job's own error.
    assert "ended (" in last["message"]
    assert "/opt/no-such-env/bin/jupyterhub-singleuser" in last["message"]
    assert "No such file or directory" in last["message"]
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert (
        hub_client.server("tlearner2", token) is None
        or not hub_client.server("tlearner2", token)["ready"]
    )


def test_f8_controller_restart_loses_no_session(hub_client):
    token = hub_client.login_token("tlearner3")
    hub_client.start("tlearner3", token)
    job_id = job_of("tlearner3")
    stop_daemon(CTLD_PID)
    ensure_slurm(REPO / "deploy")
    assert squeue_row(job_id)["state"] == "RUNNING"
    time.sleep(5)  # two poll intervals of the test site
    assert hub_client.server("tlearner3", token)["ready"]
    r = httpx.get(
        f"{hub_client.base}/user/tlearner3/api/status", headers={"Authorization": f"token {token}"}
    )
    assert r.status_code == 200
    hub_client.stop("tlearner3", token)


def test_f13_suspended_job_is_kept_and_works_after_resume(hub_client):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token)
    job_id = job_of("tlearner2")
    subprocess.run(["scontrol", "suspend", job_id], check=True)
    try:
        assert squeue_row(job_id)["state"] == "SUSPENDED"
        time.sleep(5)  # two poll intervals: a suspended session is paused, not gone
        assert hub_client.server("tlearner2", token)["ready"]
    finally:
        subprocess.run(["scontrol", "resume", job_id], check=True)
    r = wait_until(
        lambda: (
            httpx.get(
                f"{hub_client.base}/user/tlearner2/api/status",
                headers={"Authorization": f"token {token}"},
            ).status_code
            == 200
        ),
        20,
        "server answers after resume",
    )
    assert r
    hub_client.stop("tlearner2", token)


def test_f7_scheduler_that_stops_answering_drops_nothing(hub_client, real_hub):
    """slurmctld frozen (SIGSTOP): every squeue times out. The servers stay, no job is touched,
    and once it answers again everything is as before (batchspawner drops the server here)."""
    import os
    import signal

    from factoryhub.demo.daemons import running_pid

    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token)
    job_id = job_of("tlearner1")
    ctld = running_pid(CTLD_PID)
    os.kill(ctld, signal.SIGSTOP)
    try:
        time.sleep(12)  # > two polls, each ending in the 5 s command timeout of the test site
        log = (real_hub.state_dir / "hub.log").read_text()
        assert "squeue did not answer within 5 s); keeping every server" in log
        assert hub_client.server("tlearner1", token)["ready"]
        assert "/user/tlearner1" in hub_client.routes()
    finally:
        os.kill(ctld, signal.SIGCONT)
    assert squeue_row(job_id)["state"] == "RUNNING"
    time.sleep(5)
    assert hub_client.server("tlearner1", token)["ready"]
    r = httpx.get(
        f"{hub_client.base}/user/tlearner1/api/status", headers={"Authorization": f"token {token}"}
    )
    assert r.status_code == 200
    hub_client.stop("tlearner1", token)


def test_f9_controller_crash_right_after_submit(hub_client):
    """slurmctld killed (-9) the moment the learner's job exists, restarted two seconds later:
    the spawn either completes (the controller had saved the job) or fails with a clear
    message; either way no job is left without a server and the learner can start again."""
    token = hub_client.login_token("tlearner2")
    before = _ids("tlearner2")
    outcome: list[list[dict]] = []
    spawn = threading.Thread(
        target=lambda: outcome.append(hub_client.start_events("tlearner2", token))
    )
    spawn.start()
    try:
        new = wait_until(lambda: _ids("tlearner2") - before, 30, "tlearner2's job", interval=0.01)
        stop_daemon(CTLD_PID, sig=signal.SIGKILL)
        time.sleep(2)
    finally:
        ensure_slurm(REPO / "deploy")
    spawn.join(120)
    assert outcome, "the spawn never ended"
    last = outcome[0][-1]
    if last.get("failed"):
        clear = ("no longer knows", "ended (", "could not start JupyterLab")
        assert any(reason in last["message"] for reason in clear), last
        wait_until(lambda: not _live(tlearner2_jobs=new), 30, "no job left behind")
        hub_client.start("tlearner2", token)  # the learner simply starts again
    else:
        assert last.get("ready"), outcome
    hub_client.stop("tlearner2", token)
    assert not _live(tlearner2_jobs=_ids("tlearner2") - before)


def _live(tlearner2_jobs: set[str]) -> set[str]:
    return {j for j in tlearner2_jobs if squeue_row(j).get("state") in ("PENDING", "RUNNING")}


def test_accounting_database_down_sessions_still_start_and_limits_hold(hub_client):
    """slurmdbd killed (-9): `sacctmgr` fails at once; the hub keeps the last answer it had
    (site.toml's [access] for a learner it never asked about), slurmctld keeps enforcing the
    associations and QoS it holds, so sessions start and over-limit jobs are still refused;
    restarted, the database answers again and nothing was lost."""
    token = hub_client.login_token("tlearner3")
    stop_daemon(DBD_PID, sig=signal.SIGKILL)
    try:
        assert asyncio.run(SlurmClient().associations("tlearner3")) is None  # no answer
        started = time.monotonic()
        job_id = job_id_in(hub_client.start("tlearner3", token))
        assert time.monotonic() - started < 15
        assert squeue_row(job_id)["state"] == "RUNNING"
        with hub_client.api(token) as api:
            over_qos = {"partition": "gpu", "gpus": 3}
            r = api.post("/users/tlearner3/servers/gpu", json={"user_options": over_qos})
        # refused by the hub from its last reading, or by Slurm (a reading it never had)
        assert r.status_code == 400, r.text
        assert re.search("the QoS normal allows|QOSMaxGRESPerJob", r.json()["message"]), r.text
        over = ["runuser", "-u", "tlearner3", "--", "sbatch", "--partition=gpu", "--gres=gpu:3"]
        refused = subprocess.run([*over, "--wrap", "true"], capture_output=True, text=True)
        assert "QOSMaxGRESPerJob" in refused.stderr  # Slurm still enforces the QoS
        hub_client.stop("tlearner3", token)
    finally:
        ensure_slurm(REPO / "deploy")
    assert asyncio.run(SlurmClient().associations("tlearner3")).accounts == ("training",)
