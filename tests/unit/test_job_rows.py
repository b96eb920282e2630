"""The job monitor's rows: states in words, times, resources, energy."""

from datetime import datetime

import pytest
from conftest import user_job

from factoryhub.jobstate import Phase
from factoryhub.slurmoutput import gpus_of
from factoryhub.widgets.jobrows import describe_job, job_row, job_rows, rows_table

NOW = datetime(2030, 1, 1, 12, 0, 0)


def test_pending_row_explains_the_reason_and_the_expected_start(demo_site):
    row = job_row(user_job(start="2030-01-01T12:30:00"), demo_site, NOW)
    assert row.phase is Phase.QUEUED and row.cancellable
    assert "higher priority" in row.detail or "priority" in row.detail.lower()
    assert row.expected_start == "expected in about 30 minutes (12:30)"
    assert row.resources == "4 CPUs, 2 × h100 on gpu"
    assert row.left_s == 3600


def test_running_row_has_node_elapsed_and_energy(demo_site):
    job = user_job(state="RUNNING", nodes="gn01", time_used="30:00", time_left="30:00")
    row = job_row(job, demo_site, NOW)
    assert row.detail == "on gn01" and row.elapsed_s == 1800 and row.left_s == 1800
    # (4 × 10 W + 2 × 700 W) × 0.5 h × PUE 1.2 from the demo site's factors
    assert row.energy.wh == pytest.approx((4 * 10 + 2 * 700) * 0.5 * 1.2)


def test_ended_rows_come_last_and_cannot_be_cancelled(demo_site):
    rows = job_rows(
        [user_job("5", "COMPLETED", reason="None"), user_job("3", "RUNNING", nodes="cn01")],
        demo_site,
        NOW,
    )
    assert [r.job_id for r in rows] == ["3", "5"]
    assert not rows[1].cancellable and rows[1].left_s is None


def test_job_kinds_and_gpu_strings(demo_site):
    assert describe_job("fh:demo:alice:gpu-lab", "demo") == "JupyterLab session (gpu-lab)"
    assert describe_job("fh:demo:alice:", "demo") == "JupyterLab session"
    assert describe_job("fh-dask-12-345", "demo") == "Dask worker"
    assert describe_job("mine", "demo") == "mine"
    assert gpus_of("gres:gpu:h100:2") == (2, "h100")
    assert gpus_of("gres/gpu=1") == (1, "")
    assert gpus_of("N/A") == (0, "")


def test_table_escapes_everything(demo_site):
    rows = job_rows([user_job(name="<script>x</script>")], demo_site, NOW)
    table = rows_table(rows)
    assert "<script>" not in table and "&lt;script&gt;" in table
    assert "no jobs" in rows_table([])


def test_slurm_energy_accounting_is_read_per_allocation():
    from factoryhub.scheduler.slurm import parse_consumed_energy

    text = "12|36000\n12.batch|35000\n13|0\n14|\n"
    assert parse_consumed_energy(text) == {"12": 36000.0, "13": 0.0}
