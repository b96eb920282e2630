"""The scheduler's live view, read at most every few seconds however many forms, estimates
and spawns ask for it: one cache per Slurm installation in a process. Users' accounts and QoS
from the accounting database (where there is one) are read for all users at once and
refreshed in the background every minute."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

from factoryhub.capacity import Capacity
from factoryhub.scheduler.slurm import Associations, SlurmClient, SlurmError

CAPACITY_MAX_AGE = 5.0  # seconds one reading serves every form, estimate and spawn
NODE_ADDRESS_MAX_AGE = 30.0  # seconds one reading of the nodes' addresses serves every start
CONTROLLER_MAX_AGE = 1.0  # seconds one `scontrol ping` tells every start the controller is up
ASSOCIATIONS_MAX_AGE = 60.0  # seconds a reading of everyone's accounts and QoS is trusted
# (site.toml [limits] accounting_refresh_seconds; this is its default)
UNLISTED_RECHECK = 5.0  # a user the reading lacks makes a new one, at most this often

_log = logging.getLogger(__name__)
T = TypeVar("T")


class SharedReading(Generic[T]):
    """The last reading of one Slurm client, renewed when older than a caller bears: one
    reading at a time, which every caller that needs a newer one shares (a room of 200 pressing
    Start within seconds made a reading of its own per start before: 200 × three commands).
    A reading the scheduler does not answer gives None and leaves the last one standing."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], what: str) -> None:
        self._fetch = fetch
        self._what = what
        self._taken = 0.0
        self._value: T | None = None
        self._reading: asyncio.Future[T | None] | None = None

    async def get(self, max_age: float) -> T | None:
        """A reading begun at most `max_age` seconds ago (or the one under way)."""
        if self._value is not None and time.monotonic() - self._taken < max_age:
            return self._value
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._reading)

    async def _read(self) -> T | None:
        started = time.monotonic()
        try:
            value = await self._fetch()
        except SlurmError as exc:
            _log.warning("%s unavailable: %s", self._what, exc)
            return None
        finally:
            self._reading = None
        self._value, self._taken = value, started
        return value


class CapacityCache(SharedReading[Capacity]):
    """The partitions' live capacity of one Slurm client (`SlurmClient.capacity`)."""

    def __init__(self, client: SlurmClient) -> None:
        super().__init__(client.capacity, "live capacity")
        self.client = client

    async def get(self, max_age: float = CAPACITY_MAX_AGE) -> Capacity | None:
        return await super().get(max_age)


class Refreshed(Generic[T]):
    """A reading of the accounting database kept for every caller: the first caller waits for
    it; later ones get the last reading while a fresh one is taken in the background once it
    is older than they bear (one at a time, however many ask). A reading the database does not
    answer (`fetch` gives None) leaves the last one standing."""

    def __init__(self, fetch: Callable[[], Awaitable[T | None]]) -> None:
        self._fetch = fetch
        self.value: T | None = None
        self.taken = 0.0  # monotonic time of the last reading; 0: none yet
        self._refreshing: asyncio.Future | None = None

    @property
    def age(self) -> float:
        return time.monotonic() - self.taken

    async def get(self, max_age: float, *, wait: bool = False) -> T | None:
        """The last reading; waited for when there is none yet or with `wait`."""
        if not self.taken or wait:
            await asyncio.shield(self._refresh())
        elif self.age >= max_age:
            self._refresh()  # in the background: this caller uses the reading there is
        return self.value

    def _refresh(self) -> asyncio.Future:
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read())
        return self._refreshing

    async def _read(self) -> None:
        try:
            found = await self._fetch()
            if found is not None:  # the database did not answer: the last reading stands
                self.value = found
            self.taken = time.monotonic()
        finally:
            self._refreshing = None


class AssociationCache:
    """Every user's accounts and QoS (two `sacctmgr` reads for all users), refreshed in the
    background once older than `ASSOCIATIONS_MAX_AGE`: a start waits for the accounting
    database only for the first reading, or for a fresh one when it asks about a user the last
    reading did not list and that reading is older than `UNLISTED_RECHECK` (someone just given
    an account). Each `sacctmgr` call costs ≈ 0.25 s of round trips to slurmdbd."""

    def __init__(self, client: SlurmClient) -> None:
        self._reading: Refreshed[Mapping[str, Associations]] = Refreshed(client.all_associations)

    async def get(self, user: str, max_age: float = ASSOCIATIONS_MAX_AGE) -> Associations | None:
        """None on a site without an accounting database (site.toml's [access] applies); while
        the database does not answer, its last answer. A user it does not list has none. A
        reading older than `max_age` seconds is renewed in the background."""
        last = self._reading.value
        unlisted = self._reading.taken and last is not None and user not in last
        everyone = await self._reading.get(
            max_age, wait=bool(unlisted) and self._reading.age >= UNLISTED_RECHECK
        )
        if everyone is None:
            return None
        return everyone.get(user, Associations())


# One registry per Slurm installation: every cache (and the hub's job watcher) is keyed by the
# client object itself, and `shared_client` gives each installation one client.
_CACHES: WeakKeyDictionary[SlurmClient, CapacityCache] = WeakKeyDictionary()
_ASSOCIATIONS: WeakKeyDictionary[SlurmClient, AssociationCache] = WeakKeyDictionary()
_CONTROLLER: WeakKeyDictionary[SlurmClient, SharedReading[bool]] = WeakKeyDictionary()
_NODE_ADDRESSES: WeakKeyDictionary[SlurmClient, SharedReading[dict[str, str]]] = WeakKeyDictionary()
_READINGS: WeakKeyDictionary[SlurmClient, dict[str, Refreshed]] = WeakKeyDictionary()


@functools.lru_cache(maxsize=8)
def shared_client(bin_dir: str, timeout: float) -> SlurmClient:
    """The hub's client of one Slurm installation, shared by every spawner, so the caches
    here (keyed by client) serve every learner rather than one server each."""
    return SlurmClient(bin_dir=bin_dir, timeout=timeout)


def capacity_cache(client: SlurmClient) -> CapacityCache:
    """The process-wide cache for `client`."""
    return _CACHES.setdefault(client, CapacityCache(client))


def node_addresses(client: SlurmClient) -> SharedReading[dict[str, str]]:
    """The process-wide reading of `client`'s node addresses (NodeAddr): one `scontrol show
    node` serves every start for `NODE_ADDRESS_MAX_AGE` seconds instead of one per start."""
    return _NODE_ADDRESSES.setdefault(
        client, SharedReading(client.node_addresses, "node addresses")
    )


def controller_reading(client: SlurmClient) -> SharedReading[bool]:
    """The process-wide reading of whether `client`'s controller answers (`scontrol ping`):
    a room's starts within `CONTROLLER_MAX_AGE` share one ping instead of one each."""
    return _CONTROLLER.setdefault(client, SharedReading(client.controller_up, "controller"))


def association_cache(client: SlurmClient) -> AssociationCache:
    """The process-wide accounts-and-QoS cache for `client`."""
    return _ASSOCIATIONS.setdefault(client, AssociationCache(client))


def readings(client: SlurmClient) -> dict[str, Refreshed]:
    """The other readings kept for `client`'s installation, by name (e.g. "budgets")."""
    return _READINGS.setdefault(client, {})


def forget_readings() -> None:
    """Drop every cached reading (tests that change what the scheduler says)."""
    _CACHES.clear()
    _ASSOCIATIONS.clear()
    _NODE_ADDRESSES.clear()
    _CONTROLLER.clear()
    _READINGS.clear()
