from datetime import datetime

import pytest
from conftest import job_info

from factoryhub.spawners import sweeper
from factoryhub.spawners.sweeper import orphans, starting

NOW = datetime(2026, 11, 25, 12, 0, 0)


def _job(job_id, name="fh:demo:alice:", state="RUNNING", submitted="2026-11-25T11:50:00", user=""):
    owner = user or (name.split(":")[2] if name.count(":") >= 3 else "alice")
    return job_info(job_id, state, name=name, submit=submitted, user=owner)


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


def test_a_job_named_for_another_learner_is_not_this_hubs():
    # mallory names her own job like bob's session: the hub never made it, so it is left alone
    jobs = [_job("1", name="fh:demo:bob:", user="mallory"), _job("2", name="fh:demo:bob:")]
    assert [j.job_id for j in orphans(jobs, "demo", set(), NOW, 120)] == ["2"]


def test_the_job_of_a_start_in_flight_is_no_orphan():
    # On a loaded host Slurm may grant a job seconds before the hub records it (seen in CI:
    # 50 starts at once, a job cancelled 5 s after its allocation by a sweep with a 5 s grace).
    jobs = [_job("1"), _job("2", name="fh:demo:bob:")]
    with starting("fh:demo:alice:"), starting("fh:demo:alice:"):
        found = orphans(jobs, "demo", set(), NOW, 120, frozenset(sweeper._STARTING))
        assert [j.job_id for j in found] == ["2"]
        assert sweeper._STARTING["fh:demo:alice:"] == 2  # the same server name, twice
    assert not sweeper._STARTING
    with pytest.raises(RuntimeError), starting("fh:demo:alice:"):
        raise RuntimeError("the start failed")
    assert not sweeper._STARTING  # a failed start leaves nothing behind


async def test_the_sweep_outlives_an_unexpected_error_and_logs_its_traceback_once(
    fake_slurm, caplog
):
    import asyncio
    import logging

    fake_slurm.set_job("1", "RUNNING", name="fh:demo:alice:", submit="2026-11-25T11:50:00")
    reads = []

    def recorded_ids():
        reads.append(len(reads))
        if len(reads) <= 3:  # e.g. the hub's database locked for three sweeps
            raise RuntimeError("database is locked")
        return set()

    log = logging.getLogger("test-sweep")
    sweep = asyncio.ensure_future(
        sweeper._sweep_forever(
            0.001, log=log, client=fake_slurm, hub_id="demo", recorded_ids=recorded_ids, grace=0
        )
    )
    with caplog.at_level(logging.ERROR, logger="test-sweep"):
        for _ in range(500):
            await asyncio.sleep(0.002)
            if ("cancel", "1") in fake_slurm.calls:
                break
        sweep.cancel()
    assert ("cancel", "1") in fake_slurm.calls  # it kept sweeping and found the orphan
    failures = [r for r in caplog.records if "orphan sweep failed" in r.getMessage()]
    assert len(failures) == 3 and "RuntimeError: database is locked" in failures[0].getMessage()
    assert [bool(r.exc_info) for r in failures] == [True, False, False]
