"""What the spawn form tells a learner beyond the request itself: a session of theirs the idle
culler stopped (and why), the budget left on their Slurm accounts, and maintenance windows
ahead. Each comes from a reading the hub already keeps (a small file of the culler's, the
budget and capacity caches): the form costs no extra Slurm query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from factoryhub.budget import describe_budget
from factoryhub.capacity import Capacity
from factoryhub.culling import cull_notice, read_records
from factoryhub.durations import parse_minutes
from factoryhub.maintenance import maintenance_notice
from factoryhub.request import ResourceRequest, UserAccess
from factoryhub.scheduler.budgets import budget_cache
from factoryhub.site import Site

if TYPE_CHECKING:
    from .spawner import SlurmSpawner


@dataclass(frozen=True)
class Notices:
    """Sentences for the form, each shown in a block of its own."""

    culled: str = ""
    budget: tuple[str, ...] = ()
    maintenance: tuple[str, ...] = ()


def culled_notice(site: Site, user: str) -> str:
    return cull_notice(read_records(site, user), datetime.now(UTC))


async def form_notices(
    spawner: SlurmSpawner,
    capacity: Capacity | None,
    access: UserAccess,
    request: ResourceRequest | None,
) -> Notices:
    """The notices of the spawner's learner's form (`request`: the one the form shows)."""
    site, user = spawner.site, spawner.user.name
    budgets = await budget_cache(spawner.slurm_client).get(site.limits.accounting_refresh_seconds)
    budgets = budgets or {}
    budget = [line for a in access.accounts if a in budgets for line in describe_budget(budgets[a])]
    return Notices(
        culled=culled_notice(site, user),
        budget=tuple(budget),
        maintenance=maintenance_lines(site, capacity, request, datetime.now()),
    )


def maintenance_lines(
    site: Site, capacity: Capacity | None, request: ResourceRequest | None, now: datetime
) -> tuple[str, ...]:
    """A sentence for each partition whose nodes have a maintenance window ahead (for the
    form's request in its partition, the partition's default walltime in the others)."""
    if capacity is None:
        return ()
    lines = []
    for name, part in site.partitions.items():
        chosen = request is not None and request.partition == name
        minutes = request.walltime_minutes if chosen else parse_minutes(part.default_walltime)
        if line := maintenance_notice(capacity, name, minutes, now):
            lines.append(line)
    return tuple(lines)
