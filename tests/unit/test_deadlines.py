"""No wait on the scheduler is unbounded: a command killed at its deadline is not waited for
past `REAP_TIMEOUT` (asyncio reports its exit only once every pipe to it is closed, and a
process it left behind keeps them open), and the watcher's one shared query — which every
pending spawn waits for — ends within the client's deadline and a margin, whatever it awaits."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from factoryhub.scheduler import slurm
from factoryhub.scheduler.slurm import SchedulerUnavailable, SlurmClient
from factoryhub.spawners import watcher as watcher_module
from factoryhub.spawners.watcher import JobWatcher

# What `sudo` killed at its deadline looks like: the killed process leaves a child (the
# learner's command) that holds its stdout and stderr open for `CHILD_LIVES` s — long past the
# client's deadline and its reap timeout below.
CHILD_LIVES = 4
LEAVES_A_CHILD = [
    sys.executable,
    "-c",
    f"import subprocess, time; subprocess.Popen(['sleep', '{CHILD_LIVES}']); time.sleep(30)",
]


async def test_a_killed_command_whose_pipes_live_on_is_not_waited_for(monkeypatch, caplog):
    monkeypatch.setattr(slurm, "REAP_TIMEOUT", 0.3, raising=False)
    client = SlurmClient(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SchedulerUnavailable, match=r"did not answer within 0\.5 s"):
        await client.run(LEAVES_A_CHILD)
    assert time.monotonic() - started < CHILD_LIVES - 1  # not the child's lifetime
    assert "its exit not seen within 0.3 s" in caplog.text
    # The pipes close when the child exits; asyncio then closes the abandoned transport, on
    # this loop while it still runs (not at garbage collection, after the test's loop closed).
    await asyncio.sleep(CHILD_LIVES + 0.5 - (time.monotonic() - started))


class StuckClient:
    """A client whose query never returns (what a stuck command looked like to the hub)."""

    timeout = 0.1

    async def query(self, job_ids):
        await asyncio.Event().wait()


async def test_the_shared_query_ends_within_its_deadline(monkeypatch, caplog):
    monkeypatch.setattr(watcher_module, "QUERY_MARGIN", 0.1)
    watcher = JobWatcher(StuckClient())
    watcher.track("7", "alice", "fh:test:alice:")
    started = time.monotonic()
    waiting = [watcher.snapshot(max_age=0) for _ in range(5)]  # five spawns share it
    snaps = await asyncio.gather(*waiting)
    assert time.monotonic() - started < 2
    assert all(not s.ok and "no answer within 0.2 s" in s.error for s in snaps)
    assert "squeue gave no answer within 0.2 s" in caplog.text
