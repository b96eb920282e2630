"""The widgets inside a real session, on the real Slurm: a GPU job of the learner with the right
resources, the monitor's reasons and cancel, Dask on Slurm with a private dashboard, and no
worker job left after close(), a killed kernel or the end of the session (F19)."""

import os
import signal
import subprocess

import httpx
import pytest
from realsite import job_of, kernel_in, squeue_row, wait_until

pytestmark = pytest.mark.integration

GPU_JOBS = """
from pathlib import Path
from factoryhub.widgets import GPURequest, JobMonitor
Path("gpu_job.py").write_text(
    "import os, time\\nprint('CUDA', os.environ.get('CUDA_VISIBLE_DEVICES'))\\ntime.sleep(600)\\n"
)
monitor = JobMonitor(start=False)
request = GPURequest(monitor=monitor)
await request.load_access()  # tlearner2's accounts and QoS (with its limits) from sacctmgr
request.cpus.value, request.walltime.value, request.run_path.value = 2, "00:20:00", "gpu_job.py"
request.gpus.value = 5
print("REFUSED", "at most 4 GPUs per job" in request.message.value, request.submit_button.disabled)
request.gpus.value = 3
print("QOS", "the QoS normal allows at most 2 GPUs per job" in request.message.value)
ids = []
for gpus in (2, 2, 2):  # QoS normal: 4 GPUs at once per learner, so the third must wait
    request.gpus.value = gpus
    ids.append(await request.submit())
print("JOBS", *ids)
"""


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id, "--oneliner"], capture_output=True, text=True
    ).stdout
    return dict(part.split("=", 1) for part in out.split() if "=" in part)


def named_jobs(name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "--name", name, "-o", "%i"], capture_output=True, text=True
    ).stdout
    return out.split()


async def test_gpu_request_monitor_reason_and_cancel(hub_client):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token, options={"partition": "cpu"})
    ids = []
    try:
        await _request_watch_and_cancel(hub_client, token, ids)
    finally:
        subprocess.run(["scancel", *ids], check=False)
        subprocess.run(["scancel", "--user=ttrainer", "--name=fill-gpus"], check=False)
    hub_client.stop("tlearner2", token)


def _reason_in_monitor(job_id: str) -> str:
    return (
        "rows = await monitor.refresh()\n"
        f"row = monitor.row('{job_id}')\n"
        "print('ROW', row.state, '|', row.detail, '|', row.expected_start)\n"
    )


def _fill_every_gpu_as_the_trainer() -> None:
    for _ in range(2):  # QoS long: 4 GPUs per job, 8 at once
        argv = ["runuser", "-u", "ttrainer", "--", "sbatch", "--qos=long", "--partition=gpu"]
        argv += ["--gres=gpu:4", "--job-name=fill-gpus", "--time=10", "--wrap", "sleep 600"]
        subprocess.run(argv, check=True, capture_output=True, cwd="/tmp")


async def _request_watch_and_cancel(hub_client, token: str, ids: list[str]) -> None:
    async with kernel_in(hub_client.base, "/user/tlearner2/", token) as execute:
        out = await execute(GPU_JOBS, timeout=90)
        assert "REFUSED True True" in out and "QOS True" in out, out
        ids += out.split("JOBS")[1].split()
        assert len(ids) == 3 and all(i.isdigit() for i in ids), out
        first = scontrol_job(ids[0])
        assert first["UserId"].startswith("tlearner2(") and first["Partition"] == "gpu"
        assert "gpu:h100:2" in first["TresPerNode"] and first["TimeLimit"] == "00:20:00"
        assert first["NumCPUs"] == "2" and first["QOS"] == "normal"
        # the third is over tlearner2's QoS limit of 4 GPUs at once: Slurm says so, the monitor too
        third = ids[2]
        wait_until(lambda: squeue_row(third).get("reason") == "QOSMaxGRESPerUser", 30, "QoS")
        out = await execute(_reason_in_monitor(third))
        assert "ROW PENDING | you already use as much as your quality of service" in out, out
        # every GPU taken by someone else: tlearner2's next job waits for resources
        out = await execute(
            f"for job in {ids!r}:\n    print('CANCEL', job, await monitor.cancel(job))"
        )
        assert out.count("True") == 3, out
        _fill_every_gpu_as_the_trainer()
        request_one = "request.gpus.value = 1\nprint('JOB', await request.submit())"
        ids.append((await execute(request_one)).split("JOB")[1].strip())
        wait_until(lambda: squeue_row(ids[3]).get("reason") == "Resources", 30, "a GPU wait")
        out = await execute(_reason_in_monitor(ids[3]))
        assert "ROW PENDING | waiting for the resources you asked for" in out, out
        out = await execute(f"print('CANCEL', await monitor.cancel('{ids[3]}'))")
        assert "CANCEL True" in out, out
    wait_until(
        lambda: all(not squeue_row(i) or squeue_row(i)["state"] == "CANCELLED" for i in ids),
        30,
        "the widget's jobs cancelled",
    )


DASK_START = """
import os
from factoryhub.widgets import DaskCluster
panel = DaskCluster(workers=2)
cluster = panel.start()
panel.client.wait_for_workers(2, timeout=120)
print("SUM", panel.client.submit(sum, range(10)).result())
print("NAME", cluster.worker_job_name, "PID", os.getpid(), "SOCKET", cluster.socket)
print("LINK", cluster.dashboard_link)
print("STATUS", panel.refresh())
"""


def _fields(out: str) -> dict[str, str]:
    words = out.split()
    return {
        k: words[i + 1]
        for i, k in enumerate(words[:-1])
        if k in ("NAME", "PID", "SOCKET", "LINK", "SUM")
    }


async def test_dask_cluster_scales_computes_and_closes_without_leftovers(hub_client):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token, options={"partition": "cpu"})
    async with kernel_in(hub_client.base, "/user/tlearner2/", token) as execute:
        out = await execute(DASK_START, timeout=150)
        fields = _fields(out)
        assert fields["SUM"] == "45", out
        assert len(named_jobs(fields["NAME"])) == 2
        assert "2 workers connected" in out
        # The dashboard through the learner's server and jupyter-server-proxy ...
        assert fields["LINK"] == "/user/tlearner2/dask-dashboard/status"
        r = httpx.get(
            f"{hub_client.base}{fields['LINK']}",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert r.status_code == 200 and "Dask" in r.text
        # ... and not to another user on the node.
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                "tlearner3",
                "--",
                "python3",
                "-c",
                "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
                fields["SOCKET"],
            ],
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0 and "Permission denied" in probe.stderr
        await execute("panel.close_cluster()")
        # scancel'd at close; Slurm lists them as COMPLETING for a moment
        wait_until(lambda: named_jobs(fields["NAME"]) == [], 15, "workers gone after close()")
    hub_client.stop("tlearner2", token)


async def test_killed_kernel_and_ended_session_leave_no_worker(hub_client):
    token = hub_client.login_token("tlearner2")
    hub_client.start("tlearner2", token, options={"partition": "cpu"})
    async with kernel_in(hub_client.base, "/user/tlearner2/", token) as execute:
        fields = _fields(await execute(DASK_START, timeout=150))
        assert len(named_jobs(fields["NAME"])) == 2
        os.kill(int(fields["PID"]), signal.SIGKILL)
        wait_until(lambda: named_jobs(fields["NAME"]) == [], 20, "workers of a killed kernel gone")
    async with kernel_in(hub_client.base, "/user/tlearner2/", token) as execute:
        fields = _fields(await execute(DASK_START, timeout=150))
        assert len(named_jobs(fields["NAME"])) == 2
        session = job_of("tlearner2")
        hub_client.stop("tlearner2", token)  # the session ends with its kernel still running
        wait_until(lambda: named_jobs(fields["NAME"]) == [], 15, f"workers of {session} gone")
