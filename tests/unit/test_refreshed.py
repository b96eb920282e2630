"""The one background reading behind the accounts-and-QoS and the budget caches: the first
caller waits, later callers get the last reading while a fresh one is taken once, in the
background, and a reading the database does not answer leaves the last one standing."""

from __future__ import annotations

import asyncio

from factoryhub.scheduler.livesite import Refreshed


class Database:
    def __init__(self) -> None:
        self.answers: list[dict | None] = [{"a": 1}, None, {"a": 2}]
        self.asked = 0
        self.gate = asyncio.Event()

    async def read(self) -> dict | None:
        self.asked += 1
        await self.gate.wait()
        return self.answers.pop(0)


async def test_first_waits_later_ones_read_in_the_background_once():
    db = Database()
    reading = Refreshed(db.read)
    first = [asyncio.ensure_future(reading.get(60)) for _ in range(5)]
    await asyncio.sleep(0)
    db.gate.set()
    assert [await f for f in first] == [{"a": 1}] * 5 and db.asked == 1  # one read for five
    assert await reading.get(60) == {"a": 1} and db.asked == 1  # fresh enough: no read
    reading.taken -= 120  # a minute old and more
    assert await reading.get(60) == {"a": 1}  # the last reading serves meanwhile
    await asyncio.sleep(0.01)
    assert db.asked == 2 and reading.value == {"a": 1}  # the database said nothing: kept
    assert await reading.get(60, wait=True) == {"a": 2} and db.asked == 3


class Scheduler:
    """A Slurm client whose capacity reading takes until `gate` opens."""

    def __init__(self) -> None:
        self.read = 0
        self.gate = asyncio.Event()

    async def capacity(self) -> str:
        self.read += 1
        await self.gate.wait()
        return f"reading {self.read}"


async def test_starts_that_need_a_newer_capacity_share_one_reading():
    """A room pressing Start within a second: every start needs the live capacity, and the one
    reading under way serves them all (before: a reading of three Slurm commands per start)."""
    from factoryhub.scheduler.livesite import CapacityCache

    slurm = Scheduler()
    cache = CapacityCache(slurm)
    starts = [asyncio.ensure_future(cache.get(5)) for _ in range(50)]
    await asyncio.sleep(0)
    slurm.gate.set()
    assert [await s for s in starts] == ["reading 1"] * 50 and slurm.read == 1
    assert await cache.get(5) == "reading 1" and slurm.read == 1  # fresh: no reading
    assert await cache.get(0) == "reading 2" and slurm.read == 2  # none older than 0 s will do
