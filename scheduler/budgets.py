"""Every account's budget (`sshare`, one call for all accounts), read at most once a minute
however many forms, estimates and starts ask: the first reading is waited for, later ones
are taken in the background while the last one serves (as the accounts-and-QoS cache does).
Slurm itself recalculates usage once a minute on this site (PriorityCalcPeriod)."""

from __future__ import annotations

import asyncio
import time
from weakref import WeakKeyDictionary

from factoryhub.budget import AccountBudget, budget_refusal, charged_account
from factoryhub.request import RequestError, ResourceRequest
from factoryhub.slurmapi import SlurmAPI

BUDGET_MAX_AGE = 60.0


class BudgetCache:
    """The last `account_budgets()` reading of one client."""

    def __init__(self, client: SlurmAPI) -> None:
        self.client = client
        self._value: dict[str, AccountBudget] | None = None
        self._taken = 0.0
        self._refreshing: asyncio.Future | None = None

    async def get(self) -> dict[str, AccountBudget] | None:
        """Every account's budget; None on a site without an accounting database."""
        if not self._taken:
            await asyncio.shield(self._refresh())
        elif time.monotonic() - self._taken >= BUDGET_MAX_AGE:
            self._refresh()  # in the background: this caller uses the reading there is
        return self._value

    def _refresh(self) -> asyncio.Future:
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read())
        return self._refreshing

    async def _read(self) -> None:
        try:
            found = await self.client.account_budgets()
            if found is not None:  # the database did not answer: the last reading stands
                self._value = found
            self._taken = time.monotonic()
        finally:
            self._refreshing = None


_CACHES: WeakKeyDictionary[SlurmAPI, BudgetCache] = WeakKeyDictionary()


def budget_cache(client: SlurmAPI) -> BudgetCache:
    """The process-wide budget cache of `client`."""
    return _CACHES.setdefault(client, BudgetCache(client))


async def check_budget(
    client: SlurmAPI, request: ResourceRequest, accounts: tuple[str, ...]
) -> None:
    """Refuse (`RequestError`, naming the field to change) a request its account's budget
    cannot cover: Slurm would refuse it with a bare "AssocGrpGRESMinutes"."""
    budgets = await budget_cache(client).get() or {}
    account = charged_account(request.account, accounts)
    why = budget_refusal(
        budgets.get(account),
        cpus=request.cpus,
        gpus=request.gpus,
        walltime_minutes=request.walltime_minutes,
    )
    if why:
        raise RequestError(f"walltime: cannot start: {why}", "walltime")
