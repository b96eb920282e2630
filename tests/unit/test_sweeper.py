from datetime import datetime

from conftest import job_info

from factoryhub.spawners.sweeper import orphans

NOW = datetime(2026, 11, 25, 12, 0, 0)


def _job(job_id, name="fh:demo:alice:", state="RUNNING", submitted="2026-11-25T11:50:00"):
    return job_info(job_id, state, name=name, start=submitted)


def test_only_old_unrecorded_live_jobs_with_this_hubs_tag_are_orphans():
    jobs = [
        _job("1"),  # orphan
        _job("2"),  # recorded
        _job("3", name="fh:other-hub:alice:"),  # another hub's
        _job("4", name="my-own-job"),  # the learner's own batch job
        _job("5", submitted="2026-11-25T11:59:30"),  # within the grace: a spawn in progress
        _job("6", state="COMPLETING"),  # already ending
        _job("7", submitted="N/A"),  # unknown submit time: leave it
        _job("8", state="PENDING"),  # orphan too
    ]
    found = orphans(jobs, "demo", recorded={"2"}, now=NOW, grace=120)
    assert [j.job_id for j in found] == ["1", "8"]
