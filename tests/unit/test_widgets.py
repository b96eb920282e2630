"""Widget logic without a browser: set values, click, await, assert on state and Slurm calls."""

import json
import os
from pathlib import Path

import pytest
from conftest import job_info, user_job

from factoryhub.jobnames import worker_job_name
from factoryhub.scheduler.slurm import Associations, QosLimits
from factoryhub.site import SiteError, parse_site, public_site_data
from factoryhub.spawners.sweeper import orphaned_workers
from factoryhub.widgets import EnergyPanel, GPURequest, JobMonitor, SessionContext
from factoryhub.widgets.context import session_context
from factoryhub.widgets.dashboard import (
    UnsafeDirectory,
    dashboard_url,
    private_directory,
    proxy_config,
    socket_path,
)
from factoryhub.widgets.dask_cluster import cluster_options
from factoryhub.widgets.dask_panel import DaskCluster, worker_summary
from factoryhub.widgets.energy_panel import energy_plot, factors_line, session_line
from factoryhub.widgets.gpu_request import batch_environment
from factoryhub.widgets.monitor import carry_over, tail_lines
from factoryhub.widgets.reaper import cancel_workers


@pytest.fixture
def context(demo_site, fake_slurm, tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    return SessionContext(
        site=demo_site,
        user="alice",
        home=tmp_path,
        session_job="50",
        service_prefix="/user/alice/",
        client=fake_slurm,
    )


def test_over_the_limit_says_why_and_what_is_possible(context, fake_slurm):
    widget = GPURequest(context)
    assert widget.partition.value == "gpu"  # GPU partition first in a GPU widget
    widget.gpus.value = 5
    assert "the gpu partition allows at most 4 GPUs per job" in widget.message.value
    assert "up to 4 GPUs" in widget.message.value
    assert widget.submit_button.disabled
    widget.gpus.value = 4
    assert widget.message.value == "" and not widget.submit_button.disabled


def test_the_partition_kept_for_workshops_is_not_offered(context):
    gpu = [value for _, value in GPURequest(context).partition.options]
    assert gpu == ["cpu", "gpu", "debug"] and "training" in context.site.partitions
    dask = [value for _, value in DaskCluster(context).partition.options]
    assert dask == ["cpu", "gpu", "debug"]


def test_other_partition_offered_when_it_takes_the_request(context):
    widget = GPURequest(context)
    widget.partition.value = "debug"
    widget.gpus.value = 0
    widget.walltime.value = "02:00:00"
    assert "the debug partition allows at most 30 minutes" in widget.message.value
    assert "cpu, gpu partition takes this request" in widget.message.value


async def test_submit_runs_sbatch_as_the_learner_with_gres_and_no_hub_token(
    context, fake_slurm, monkeypatch
):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-token")
    monkeypatch.setenv("SLURM_JOB_ID", "50")
    monitor = JobMonitor(context, start=False)
    widget = GPURequest(context, monitor=monitor)
    widget.gpus.value = 2
    widget.run_path.value = "train.py"
    job_id = await widget.submit()
    assert job_id == "101" and "101" in widget.message.value
    script, user, env, cwd = next(args for name, args in fake_slurm.calls if name == "submit")
    assert "#SBATCH --gres=gpu:h100:2" in script and user == "alice" and cwd == str(context.home)
    assert "JUPYTERHUB_API_TOKEN" not in env and "SLURM_JOB_ID" not in env
    assert fake_slurm.count("user_jobs") == 1  # handed over to the monitor


async def test_bad_input_makes_no_scheduler_call(context, fake_slurm):
    widget = GPURequest(context)
    widget.run_path.value = "../../etc/shadow.py"
    assert await widget.submit() == ""
    assert "inside your home" in widget.message.value
    widget.run_path.value = "train.py"
    widget.cpus.value = 999
    assert await widget.submit() == ""
    assert fake_slurm.count("submit") == 0


async def test_estimate_follows_the_request(context, fake_slurm):
    widget = GPURequest(context)
    widget.gpus.value = 1  # gn01's GPUs are all allocated in the fake: Slurm is asked
    estimate = await widget.refresh_estimate()
    assert estimate.kind in ("later", "unknown")
    widget.partition.value = "cpu"
    widget.gpus.value = 0
    assert (await widget.refresh_estimate()).message == "starts now"
    assert "starts now" in widget.estimate_line.value


async def test_monitor_one_query_per_refresh_cancel_and_ended_jobs(context, fake_slurm):
    fake_slurm.user_rows = [user_job("7"), user_job("5", "COMPLETED", reason="None")]
    monitor = JobMonitor(context, start=False)
    for _ in range(3):
        await monitor.refresh()
    assert fake_slurm.count("user_jobs") == 3 and fake_slurm.count("query") == 0
    assert "7 · batch: train · PENDING" in monitor.job.options[0][0]
    assert not await monitor.cancel("5")  # ended: refused, no scancel
    assert fake_slurm.count("cancel") == 0
    assert await monitor.cancel("7")
    assert ("cancel", "7") in fake_slurm.calls
    assert monitor.row("7").state == "CANCELLED"
    fake_slurm.user_rows = []  # Slurm forgot them: still listed, as ended
    rows = await monitor.refresh()
    assert {r.job_id for r in rows} == {"7", "5"} and all(not r.cancellable for r in rows)


async def test_monitor_keeps_its_rows_when_the_scheduler_is_down(context, fake_slurm):
    fake_slurm.user_rows = [user_job("7")]
    monitor = JobMonitor(context, start=False)
    await monitor.refresh()
    fake_slurm.down = True
    rows = await monitor.refresh()
    assert [r.job_id for r in rows] == ["7"]
    assert "did not answer" in monitor.status.value


async def test_monitor_output_tail(context, tmp_path):
    log = tmp_path / "job.out"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail_lines(log, 3) == "line 97\nline 98\nline 99"
    assert "no output" in tail_lines(tmp_path / "missing.out")


async def test_monitor_lists_live_jobs_and_only_the_recent_ended(context, fake_slurm):
    ended = [user_job(str(i), "COMPLETED", reason="None") for i in range(1, 21)]
    fake_slurm.user_rows = [user_job("30", "RUNNING", nodes="gn01"), *ended]
    rows = await JobMonitor(context, start=False).refresh()
    assert [r.job_id for r in rows] == ["30", "20", "19", "18", "17", "16", "15", "14", "13"]


def test_carry_over_marks_vanished_rows_ended(demo_site):
    from datetime import datetime

    from factoryhub.widgets.jobrows import job_rows

    before = job_rows([user_job("7", "RUNNING", nodes="cn01")], demo_site, datetime.now())
    kept = carry_over(before, [])
    assert kept[0].detail == "left Slurm's queue" and not kept[0].cancellable


async def test_energy_panel_session_line_and_plot(context, fake_slurm):
    fake_slurm.user_rows = [
        user_job("50", "RUNNING", name="fh:demo:alice:", time_used="10:00", time_left="50:00"),
        user_job("51", "COMPLETED", reason="None", time_used="30:00"),
        user_job("40", "COMPLETED", reason="None", time_used="30:00"),  # before this session
    ]
    panel = EnergyPanel(context, start=False)
    rows = await panel.refresh()
    assert [r.job_id for r in rows] == ["50", "51"]
    assert session_line(rows, "50").startswith("This session: 50 min left of its walltime;")
    assert panel.plot.value.startswith('<img alt="energy per job" src="data:image/png;base64,')
    assert "This session's jobs" in panel.table.value
    assert "PUE 1.2" in factors_line(context.site.energy)
    assert energy_plot([]) == ""


def test_dask_cluster_options_come_from_the_site(demo_site, tmp_path):
    options = cluster_options(
        demo_site, "cpu", account="training", job_name=worker_job_name("50", 7), home=tmp_path
    )
    assert options["queue"] == "cpu" and options["cores"] == 1 and options["memory"] == "2GB"
    assert options["walltime"] == "01:00:00" and options["account"] == "training"
    assert options["job_name"] == "fh-dask-50-7" and options["security"] is True
    assert options["python"] == "/opt/factoryhub/venv/bin/python"


def test_worker_summary():
    assert worker_summary({}, 0) == "No worker jobs."
    summary = worker_summary({"a": "running", "b": "running", "c": "pending"}, 2)
    assert summary == "3 worker jobs (1 pending, 2 running); 2 workers connected"


def test_orphaned_workers_are_those_of_ended_sessions():
    jobs = [
        job_info("50", "RUNNING", name="fh:demo:alice:"),
        job_info("60", "RUNNING", name="fh-dask-50-7"),  # session 50 lives
        job_info("61", "PENDING", name="fh-dask-49-7"),  # session 49 is gone
        job_info("62", "RUNNING", name="fh-dask-x-7"),  # not ours to judge
        job_info("63", "COMPLETING", name="fh-dask-48-7"),  # already ending
        job_info("64", "RUNNING", name="fh-dask-50-8", user="mallory"),  # not alice's session
    ]
    assert [j.job_id for j in orphaned_workers(jobs)] == ["61", "64"]


async def test_reaper_cancels_only_the_clusters_jobs_of_the_learner(fake_slurm):
    fake_slurm.set_job("61", "RUNNING", name="fh-dask-50-7", user="alice")
    fake_slurm.set_job("62", "RUNNING", name="fh-dask-50-7", user="mallory")
    fake_slurm.set_job("63", "RUNNING", name="fh-dask-50-8", user="alice")
    await cancel_workers(fake_slurm, "fh-dask-50-7", "alice")
    states = {i: fake_slurm.jobs[i].state for i in ("61", "62", "63")}
    assert states == {"61": "CANCELLED", "62": "RUNNING", "63": "RUNNING"}
    with pytest.raises(ValueError):
        await cancel_workers(fake_slurm, "dask-worker", "alice")
    assert fake_slurm.count("cancel_named") == 1  # nothing asked of Slurm for a bad name


async def test_the_client_cancels_by_name_and_user_only(monkeypatch):
    from factoryhub.scheduler.slurm import Completed, SlurmClient

    seen = []

    async def record(self, argv, **_):
        seen.append(argv)
        return Completed(0, "", "")

    monkeypatch.setattr(SlurmClient, "run", record)
    await SlurmClient("/opt/slurm/bin", switch_user=False).cancel_named("fh-dask-50-7", "alice")
    assert seen == [["/opt/slurm/bin/scancel", "--name=fh-dask-50-7", "--user=alice"]]


def test_dashboard_socket_is_private(tmp_path, monkeypatch):
    private = private_directory(tmp_path / "mine")
    assert private.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # noqa: S103 (a shared directory is the case under test)
    with pytest.raises(UnsafeDirectory):
        private_directory(shared)
    link = tmp_path / "link"
    link.symlink_to(private)
    with pytest.raises(UnsafeDirectory):
        private_directory(link)
    env = {"SLURM_JOB_ID": "50", "JUPYTERHUB_SERVER_NAME": "gpu-lab"}
    assert socket_path(env, uid=1003) == Path("/tmp/factoryhub-1003/dask-50-gpu-lab.sock")
    monkeypatch.setenv("SLURM_JOB_ID", "51")
    assert proxy_config()["unix_socket"].endswith("dask-51-default.sock")
    assert dashboard_url("/user/alice/gpu-lab/") == "/user/alice/gpu-lab/dask-dashboard/status"


def test_public_site_has_no_passwords_and_reads_back(demo_site):
    data = json.loads(json.dumps(public_site_data(demo_site)))
    assert "factory-alice" not in json.dumps(data)
    context = session_context({"FACTORYHUB_SITE_JSON": json.dumps(data), "USER": "bob"})
    assert context.site.partitions == demo_site.partitions
    assert context.site.energy == demo_site.energy
    assert context.user == "bob"
    with pytest.raises(SiteError, match="FACTORYHUB_SITE_JSON is not set"):
        session_context({})
    with pytest.raises(SiteError, match="not valid JSON"):
        session_context({"FACTORYHUB_SITE_JSON": "{"})


def test_unknown_energy_keys_are_rejected():
    with pytest.raises(SiteError, match=r"unknown key energy\.watts"):
        parse_site(
            '[partitions.cpu]\n[environments.default]\nlabel="x"\nprefix="/p"\n'
            "[energy]\nwatts = 3\n"
        )


def test_batch_environment_strips_session_variables():
    env = batch_environment({"PATH": "/x", "SLURM_JOB_ID": "1", "JUPYTERHUB_API_TOKEN": "t"})
    assert env == {"PATH": "/x"}


async def test_a_qos_limit_is_named_with_the_qos_that_takes_the_request(context, fake_slurm):
    limits = (QosLimits("normal", 720, None, 2), QosLimits("long", 1440, None, 4))
    fake_slurm.accounting = Associations(("training",), ("normal", "long"), limits)
    widget = GPURequest(context)
    await widget.load_access()  # accounts, QoS and limits from sacctmgr
    assert widget.qos.layout.display == "" and widget.qos.value == "normal"
    widget.gpus.value = 3
    assert "gpus: the QoS normal allows at most 2 GPUs per job" in widget.message.value
    assert "The long QoS takes this request as it is." in widget.message.value
    assert widget.submit_button.disabled
    widget.qos.value = "long"
    assert widget.message.value == "" and widget.check().qos == "long"


async def _background_tasks_done():
    import asyncio

    from factoryhub.widgets import background

    while background._TASKS:
        await asyncio.wait(list(background._TASKS))
        await asyncio.sleep(0)  # the done callbacks run


async def test_a_failed_refresh_is_shown_logged_once_and_the_next_one_runs(
    context, fake_slurm, monkeypatch, caplog
):
    import logging

    async def broken(user):
        raise ValueError("unexpected squeue column")

    monitor = JobMonitor(context, start=False)
    monkeypatch.setattr(fake_slurm, "user_jobs", broken)
    with caplog.at_level(logging.ERROR, logger="factoryhub.widgets"):
        await monitor.repeater.run_once()
        await monitor.repeater.run_once()  # the same failure again: no second traceback
    assert "Refreshing your jobs failed (ValueError: unexpected squeue column)" in (
        monitor.status.value
    )
    assert "kernel's log" in monitor.status.value
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and tracebacks[0].name == "factoryhub.widgets"
    monkeypatch.undo()
    fake_slurm.user_rows = [user_job("7")]
    await monitor.repeater.run_once()
    assert "Updated" in monitor.status.value  # the next refresh works and says so


async def test_the_repeater_keeps_repeating_after_a_failure():
    import asyncio

    from factoryhub.widgets.background import Repeater

    calls = []

    async def action():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first call fails")

    seen = []
    repeater = Repeater(action, 0.001, on_error=seen.append)
    assert repeater.start()
    for _ in range(200):
        await asyncio.sleep(0.002)
        if len(calls) >= 3:
            break
    repeater.stop()
    assert len(calls) >= 3 and [type(e) for e in seen] == [RuntimeError]


async def test_a_failed_click_is_shown_in_the_widget(context, fake_slurm, monkeypatch, caplog):
    import logging

    async def broken(*args, **kwargs):
        raise OSError("no space left on device")

    widget = GPURequest(context)
    widget.run_path.value = "train.py"
    await _background_tasks_done()
    monkeypatch.setattr(fake_slurm, "submit", broken)
    with caplog.at_level(logging.ERROR, logger="factoryhub.widgets"):
        widget.submit_button.click()
        await _background_tasks_done()
    assert "Submitting failed (OSError: no space left on device)" in widget.message.value
    assert any(r.exc_info for r in caplog.records)


def test_a_failed_dask_start_is_shown_in_the_widget(context, monkeypatch, caplog):
    import logging

    from factoryhub.widgets import dask_panel

    def refused(**kwargs):
        raise ValueError("dask-jobqueue: unknown partition")

    monkeypatch.setattr(dask_panel, "SessionCluster", refused)
    panel = dask_panel.DaskCluster(context)
    with caplog.at_level(logging.ERROR, logger="factoryhub.widgets"):
        panel.start_button.click()
    assert "Starting failed (ValueError: dask-jobqueue: unknown partition)" in panel.status.value
    assert any(r.exc_info for r in caplog.records)


async def test_a_failed_energy_refresh_is_shown(context, fake_slurm, monkeypatch):
    async def broken(user):
        raise KeyError("JobId")

    panel = EnergyPanel(context, start=False)
    monkeypatch.setattr(fake_slurm, "user_jobs", broken)
    await panel.repeater.run_once()
    assert "Refreshing time and energy failed (KeyError: &#x27;JobId&#x27;)" in panel.session.value


async def test_cancel_asks_first_and_never_preselects_this_session(context, fake_slurm):
    fake_slurm.user_rows = [
        user_job("50", "RUNNING", name="fh:demo:alice:", nodes="cn01"),  # runs this kernel
        user_job("51", "RUNNING", nodes="gn01"),
    ]
    monitor = JobMonitor(context, start=False)
    await monitor.refresh()
    assert monitor.job.value == "51"  # the session is listed but not chosen
    fake_slurm.user_rows = [user_job("50", "RUNNING", name="fh:demo:alice:", nodes="cn01")]
    lone = JobMonitor(context, start=False)
    await lone.refresh()
    assert lone.job.value is None  # only the session is listed: nothing is chosen for you

    monitor.job.value = "50"
    monitor.cancel_button.click()
    assert monitor.confirm.layout.display == ""
    assert monitor.question.value.startswith("Cancel job 50 (JupyterLab session)?")
    assert "your session ends with it" in monitor.question.value
    monitor.no_button.click()
    assert monitor.confirm.layout.display == "none" and monitor.to_cancel is None
    await _background_tasks_done()
    assert fake_slurm.count("cancel") == 0  # No cancels nothing

    fake_slurm.user_rows = [user_job("51", "RUNNING", nodes="gn01")]
    await monitor.refresh()
    monitor.job.value = "51"
    monitor.cancel_button.click()
    assert monitor.question.value == "Cancel job 51 (batch: train)?"
    assert fake_slurm.count("cancel") == 0  # asking cancels nothing
    monitor.yes_button.click()
    await _background_tasks_done()
    assert ("cancel", "51") in fake_slurm.calls
    assert monitor.confirm.layout.display == "none"
    assert monitor.status.value == "Cancelled job 51."


async def test_the_gpu_widget_says_when_the_partitions_nodes_go_into_maintenance(
    context, fake_slurm
):
    from dataclasses import replace
    from datetime import datetime, timedelta

    from clock import clock

    from factoryhub.capacity import parse_reservations
    from factoryhub.scheduler.livesite import forget_readings

    start = (datetime.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=2)
    fake_slurm.live = replace(  # a MAINT reservation of the gpu nodes, as scontrol prints it
        fake_slurm.live,
        reservations=parse_reservations(
            f"ReservationName=fhmaint StartTime={start:%Y-%m-%dT%H:%M:%S}"
            f" EndTime={end:%Y-%m-%dT%H:%M:%S} Duration=02:00:00 Nodes=gn01 NodeCnt=1"
            " CoreCnt=16 Features=(null) PartitionName=(null) Flags=MAINT,SPEC_NODES"
            " TRES=cpu=16 Users=root Groups=(null) Accounts=(null) Licenses=(null)"
            " State=INACTIVE BurstBuffer=(null) Watts=n/a MaxStartDelay=(null)\n"
        ),
    )
    forget_readings()
    widget = GPURequest(context)
    widget.partition.value = "gpu"
    widget.walltime.value = "04:00:00"
    await widget.refresh_estimate()
    said = widget.maintenance_line.value
    assert said.startswith(f"The gpu nodes go into maintenance at {clock(start)}")
    assert "a job started now would have to end by" in said
    # the start says only when: the maintenance line says the rest (of a job, not a session)
    assert widget.estimate.start == end
    assert widget.estimate_line.value.startswith("Start: <b>after the maintenance, expected in")
    assert f"({end:%H:%M})</b>" in widget.estimate_line.value
    assert "session" not in widget.estimate_line.value + said
    widget.walltime.value = "01:00:00"  # ends before the window: when, and no wait
    await widget.refresh_estimate()
    assert "a job started now would end at" in widget.maintenance_line.value
    assert "maintenance" not in widget.estimate_line.value
    widget.partition.value = "cpu"  # no window on the cpu nodes
    widget.gpus.value = 0
    await widget.refresh_estimate()
    assert widget.maintenance_line.value == ""
