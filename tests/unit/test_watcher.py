import asyncio

from factoryhub.spawners.watcher import JobWatcher


async def test_fifty_concurrent_asks_cost_one_query(fake_slurm):
    watcher = JobWatcher(fake_slurm)
    for i in range(50):
        fake_slurm.set_job(str(i), "RUNNING")
        watcher.track(str(i))
    snaps = await asyncio.gather(*(watcher.snapshot(max_age=5) for _ in range(50)))
    assert fake_slurm.count("query") == 1
    assert all(len(s.jobs) == 50 for s in snaps)
    await watcher.snapshot(max_age=5)  # fresh enough: no new query
    assert fake_slurm.count("query") == 1


async def test_new_job_forces_a_new_query(fake_slurm):
    watcher = JobWatcher(fake_slurm)
    watcher.track("1")
    await watcher.snapshot(max_age=60)
    watcher.track("2")
    snap = await watcher.snapshot(max_age=60)
    assert fake_slurm.count("query") == 2 and "2" in snap.asked


async def test_unreachable_scheduler_gives_an_unknown_snapshot(fake_slurm):
    watcher = JobWatcher(fake_slurm)
    watcher.track("1")
    fake_slurm.down = True
    snap = await watcher.snapshot(max_age=0)
    assert not snap.ok and "Unable to contact" in snap.error
    fake_slurm.down = False
    fake_slurm.set_job("1", "RUNNING")
    assert (await watcher.snapshot(max_age=0)).jobs["1"].state == "RUNNING"


async def test_untrack_counts_owners(fake_slurm):
    watcher = JobWatcher(fake_slurm)
    watcher.track("1")
    watcher.track("1")
    watcher.untrack("1")
    assert watcher.tracked == {"1"}
    watcher.untrack("1")
    assert watcher.tracked == frozenset()


async def test_a_record_of_another_user_or_name_is_not_the_recorded_job(fake_slurm):
    watcher = JobWatcher(fake_slurm)
    watcher.track("1", "alice", "fh:test:alice:")
    watcher.track("2", "alice", "fh:test:alice:lab")
    watcher.track("3", "bob", "fh:test:bob:")
    fake_slurm.set_job("1", "RUNNING", user="alice", name="fh:test:alice:")
    fake_slurm.set_job("2", "RUNNING", user="alice", name="renamed by alice")
    fake_slurm.set_job("3", "RUNNING", user="mallory", name="fh:test:bob:")
    snap = await watcher.snapshot(max_age=0)
    assert list(snap.jobs) == ["1"] and snap.asked == {"1", "2", "3"}
