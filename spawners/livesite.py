"""The scheduler's live view, read at most every few seconds however many forms, estimates
and spawns ask for it: one cache per Slurm installation in a process. Users' accounts and QoS
from the accounting database (where there is one) are kept a minute per user."""

from __future__ import annotations

import logging
import time

from factoryhub.capacity import Capacity
from factoryhub.slurm import Associations, SlurmClient, SlurmError

CAPACITY_MAX_AGE = 5.0  # seconds one reading serves every form, estimate and spawn
ASSOCIATIONS_MAX_AGE = 60.0  # seconds a user's accounts and QoS are trusted

_log = logging.getLogger(__name__)


class CapacityCache:
    """The last `Capacity` reading of one Slurm client, refreshed when too old."""

    def __init__(self, client: SlurmClient) -> None:
        self.client = client
        self._taken = 0.0
        self._value: Capacity | None = None

    async def get(self, max_age: float = CAPACITY_MAX_AGE) -> Capacity | None:
        """A reading at most `max_age` seconds old; None when the scheduler does not answer."""
        if self._value is not None and time.monotonic() - self._taken < max_age:
            return self._value
        try:
            self._value = await self.client.capacity()
        except SlurmError as exc:
            _log.warning("live capacity unavailable: %s", exc)
            return None
        self._taken = time.monotonic()
        return self._value


class AssociationCache:
    """Each user's accounts and QoS (`sacctmgr`), refreshed after `ASSOCIATIONS_MAX_AGE`."""

    def __init__(self, client: SlurmClient) -> None:
        self.client = client
        self._readings: dict[str, tuple[float, Associations | None]] = {}

    async def get(self, user: str) -> Associations | None:
        """None on a site without an accounting database (site.toml's [access] applies); while
        the database does not answer, its last answer for `user`."""
        taken, value = self._readings.get(user, (0.0, None))
        if taken and time.monotonic() - taken < ASSOCIATIONS_MAX_AGE:
            return value
        fresh = await self.client.associations(user)
        if fresh is None and value is not None:
            fresh = value  # the database did not answer this time: the last reading stands
        self._readings[user] = (time.monotonic(), fresh)
        return fresh


_CACHES: dict[int, CapacityCache] = {}
_ASSOCIATIONS: dict[int, AssociationCache] = {}


def capacity_cache(client: SlurmClient) -> CapacityCache:
    """The process-wide cache for `client`."""
    return _CACHES.setdefault(id(client), CapacityCache(client))


def association_cache(client: SlurmClient) -> AssociationCache:
    """The process-wide accounts-and-QoS cache for `client`."""
    return _ASSOCIATIONS.setdefault(id(client), AssociationCache(client))


def forget_readings() -> None:
    """Drop every cached reading (tests that change what the scheduler says)."""
    _CACHES.clear()
    _ASSOCIATIONS.clear()
