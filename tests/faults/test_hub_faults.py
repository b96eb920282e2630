"""Faults of the hub host: F1 (the hub killed while its job is pending: after the restart the
job is cancelled, the learner can start again; never an orphan), F2, F5, F12, F15, F16, F17
(disk full) and I1."""

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import httpx
import pytest
from realsite import job_of, server_job, squeue_row, wait_until

from factoryhub.demo.daemons import running_pid
from factoryhub.demo.hubprocess import start_hub

pytestmark = pytest.mark.faults


def _nodes(state: str) -> None:
    args = ["scontrol", "update", "nodename=cn[01-02]", f"state={state}"]
    subprocess.run([*args, "reason=factoryhub-test"] if state == "drain" else args, check=True)


def test_f1_hub_killed_while_the_job_is_pending(hub_client, real_hub):
    token = hub_client.login_token("tlearner1")
    _nodes("drain")
    try:
        with hub_client.api(token) as api:
            r = api.post("/users/tlearner1/server", json={"user_options": {"partition": "cpu"}})
            assert r.status_code == 202, r.text
        job_id = wait_until(lambda: server_job("tlearner1", "PD"), 20, "job pending")
        killed = running_pid(real_hub.hub_pidfile)
        os.kill(killed, signal.SIGKILL)
        # its supervisor starts it again: gone means this pid is no longer the hub
        wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "hub gone")
        assert squeue_row(job_id)["state"] == "PENDING"
        start_hub(real_hub)
        wait_until(
            lambda: squeue_row(job_id).get("state", "gone") in ("CANCELLED", "gone"),
            30,
            "interrupted spawn's job cancelled",
        )
        wait_until(lambda: hub_client.server("tlearner1", token) is None, 30, "record cleared")
    finally:
        _nodes("resume")
    hub_client.start("tlearner1", token)  # no admin needed to start again
    assert job_of("tlearner1") != job_id
    hub_client.stop("tlearner1", token)


def test_f12_node_down_leaves_no_zombie_and_no_requeued_orphan(hub_client):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token)
    job_id = job_of("tlearner2")
    node = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%N"], capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        ["scontrol", "update", f"nodename={node}", "state=down", "reason=factoryhub-test"],
        check=True,
    )
    try:
        wait_until(
            lambda: hub_client.server("tlearner2", token) is None, 30, "server record cleared"
        )
        assert "/user/tlearner2" not in hub_client.routes()
        # Never requeued into a session nobody routes to: the job is over for good (a batch
        # job would be requeued and is cancelled; an immediate allocation ends as NODE_FAIL).
        wait_until(
            lambda: squeue_row(job_id).get("state", "gone") in ("CANCELLED", "NODE_FAIL", "gone"),
            30,
            "job cancelled",
        )
    finally:
        # ReturnToService=2 may already have brought the node back ("Invalid node state").
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)
    hub_client.start("tlearner2", token)
    hub_client.stop("tlearner2", token)


def test_f5_hub_killed_in_the_middle_of_a_stop(hub_client, real_hub):
    token = hub_client.login_token("tlearner3")
    hub_client.start("tlearner3", token)
    job_id = job_of("tlearner3")
    with hub_client.api(token) as api:
        assert api.delete("/users/tlearner3/server").status_code in (202, 204)
    killed = running_pid(real_hub.hub_pidfile)
    os.kill(killed, signal.SIGKILL)  # while stop() waits on Slurm
    # its supervisor starts it again: gone means this pid is no longer the hub
    wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "hub gone")
    start_hub(real_hub)
    wait_until(
        lambda: squeue_row(job_id).get("state", "gone") in ("CANCELLED", "gone"), 30, "job gone"
    )
    wait_until(lambda: hub_client.server("tlearner3", token) is None, 30, "record cleared")
    assert "/user/tlearner3" not in hub_client.routes()
    hub_client.start("tlearner3", token)
    hub_client.stop("tlearner3", token)


def test_i1_a_tagged_job_without_a_server_record_is_cancelled(hub_client):
    """A job carrying this hub's tag that no server record holds (a restored database, a record
    removed by hand) is cancelled by the orphan sweep; live sessions and the learner's own jobs
    are left alone."""
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token)  # a running hub with a live session
    live = job_of("tlearner1")

    def submit(name: str) -> str:
        out = subprocess.run(
            [
                "runuser",
                "-u",
                "tlearner2",
                "--",
                "sbatch",
                "--parsable",
                f"--job-name={name}",
                "--output=/dev/null",
                "--wrap",
                "sleep 300",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd="/tmp",
        )
        return out.stdout.strip()

    ghost, own = submit("fh:test:tlearner2:ghost"), submit("bobs-own-analysis")
    try:
        wait_until(
            lambda: squeue_row(ghost).get("state", "gone") in ("CANCELLED", "gone"),
            40,
            "orphan cancelled",
        )
        assert squeue_row(own)["state"] in ("RUNNING", "PENDING")
        assert squeue_row(live)["state"] == "RUNNING"
        assert hub_client.server("tlearner1", token)["ready"]
    finally:
        subprocess.run(["scancel", ghost, own], check=False)
    hub_client.stop("tlearner1", token)


def test_f15_proxy_killed_routes_restored_within_seconds(hub_client, real_hub):
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token)
    url = f"{hub_client.base}/user/tlearner1/api/status"
    headers = {"Authorization": f"token {token}"}
    assert httpx.get(url, headers=headers, timeout=10).status_code == 200
    proxy = int(real_hub.proxy_child_pidfile.read_text())
    os.kill(proxy, signal.SIGKILL)
    killed = time.monotonic()

    def routed() -> bool:
        try:
            return httpx.get(url, headers=headers, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(routed, 20, "tlearner1's route back through a restarted proxy", interval=0.5)
    assert time.monotonic() - killed < 15
    assert int(real_hub.proxy_child_pidfile.read_text()) != proxy
    assert "/user/tlearner1" in hub_client.routes()
    hub_client.stop("tlearner1", token)


def test_f2_hub_killed_after_the_job_runs_before_its_port_is_known(hub_client, real_hub):
    token = hub_client.login_token("tlearner2")
    with hub_client.api(token) as api:
        r = api.post("/users/tlearner2/server", json={"user_options": {"environment": "slow"}})
        assert r.status_code == 202, r.text
    job_id = wait_until(lambda: server_job("tlearner2", "R"), 20, "job running, server not up yet")
    killed = running_pid(real_hub.hub_pidfile)
    os.kill(killed, signal.SIGKILL)
    # its supervisor starts it again: gone means this pid is no longer the hub
    wait_until(lambda: running_pid(real_hub.hub_pidfile) != killed, 10, "hub gone")
    start_hub(real_hub)
    wait_until(
        lambda: squeue_row(job_id).get("state", "gone") in ("CANCELLED", "COMPLETED", "gone"),
        30,
        "the interrupted spawn's running job cancelled, not orphaned",
    )
    wait_until(lambda: hub_client.server("tlearner2", token) is None, 30, "record cleared")
    hub_client.start("tlearner2", token)  # the learner simply starts again
    hub_client.stop("tlearner2", token)


def test_f16_database_locked_for_seconds(hub_client, real_hub):
    """Another process holds the hub's SQLite database for 3 s: the hub waits (degraded), then
    serves as before; no record lost, nobody logged out."""
    token = hub_client.login_token("tlearner3")
    database = real_hub.state_dir / "jupyterhub.sqlite"
    lock = sqlite3.connect(database, timeout=10, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(3.0, lambda: lock.execute("ROLLBACK"))
    release.start()
    with hub_client.api(token) as api:  # a start that must write while the lock is held
        during = api.post("/users/tlearner3/server", json={"user_options": {}}, timeout=30)
    release.join()
    lock.close()
    assert during.status_code in (201, 202), during.text  # slower, not failed
    wait_until(
        lambda: (hub_client.server("tlearner3", token) or {}).get("ready"), 60, "tlearner3 ready"
    )
    with hub_client.api(token) as api:
        assert api.get("/user").json()["name"] == "tlearner3"  # the same token still works
    hub_client.stop("tlearner3", token)


def _fill(filler, leave: int) -> None:
    """Fill the hub's state file system (its own tmpfs, see conftest) up to `leave` bytes free."""
    filler.unlink(missing_ok=True)
    for _ in range(10):  # the hub may write a block between the count and the fallocate
        size = shutil.disk_usage(filler.parent).free - leave
        if size <= 0:
            return
        run = subprocess.run(["fallocate", "-l", str(size), str(filler)], capture_output=True)
        if run.returncode == 0:
            return
        filler.unlink(missing_ok=True)
    raise AssertionError(f"could not fill {filler.parent}: {run.stderr.decode()}")


def test_f17_disk_full_refuses_spawns_cleanly_and_recovers(hub_client, real_hub):
    tlearner1, tlearner3 = hub_client.login_token("tlearner1"), hub_client.login_token("tlearner3")
    hub_client.start("tlearner1", tlearner1)  # a session running before, during and after the fault
    filler = real_hub.state_dir / "filler"
    before = _user_jobs("tlearner3")
    try:
        # Nearly full (below the site's min_free_mb): FactoryHub refuses, asks Slurm nothing.
        _fill(filler, leave=8 * 2**20)
        with hub_client.api(tlearner3) as api:
            r = api.post("/users/tlearner3/server", json={"user_options": {}})
        assert r.status_code == 503, r.text
        assert "disk is full" in r.json()["message"]
        # Completely full: JupyterHub's own database write fails first; still no job.
        _fill(filler, leave=0)
        with hub_client.api(tlearner3) as api:
            r = api.post("/users/tlearner3/server", json={"user_options": {}})
        assert r.status_code >= 500, r.text
        assert _user_jobs("tlearner3") == before
        r = httpx.get(
            f"{hub_client.base}/user/tlearner1/api/status",
            headers={"Authorization": f"token {tlearner1}"},
        )
        assert r.status_code == 200  # the running session is untouched
    finally:
        filler.unlink(missing_ok=True)
    with sqlite3.connect(real_hub.state_dir / "jupyterhub.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    wait_until(
        lambda: not (hub_client.server("tlearner3", tlearner3) or {}).get("pending"), 20, "idle"
    )
    hub_client.start("tlearner3", tlearner3)  # recovered by itself
    hub_client.stop("tlearner3", tlearner3)
    hub_client.stop("tlearner1", tlearner1)


def _user_jobs(user: str) -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-u", user, "-o", "%i"], capture_output=True, text=True
    ).stdout
    return set(out.split())
