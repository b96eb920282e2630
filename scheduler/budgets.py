"""Every account's budget (`sshare`, one call for all accounts), read at most once a minute
however many forms, estimates and starts ask: the first reading is waited for, later ones
are taken in the background while the last one serves (as the accounts-and-QoS cache does).
Slurm itself recalculates usage once a minute on this site (PriorityCalcPeriod)."""

from __future__ import annotations

from factoryhub.budget import AccountBudget, budget_refusal, charged_account
from factoryhub.request import RequestError, ResourceRequest
from factoryhub.slurmapi import SlurmAPI

from .livesite import Refreshed, readings

BUDGET_MAX_AGE = 60.0  # site.toml [limits] accounting_refresh_seconds; this is its default


def budget_cache(client: SlurmAPI) -> Refreshed[dict[str, AccountBudget]]:
    """The process-wide reading of every account's budget through `client` (one registry per
    Slurm installation, with the other caches in `livesite`); `.get(BUDGET_MAX_AGE)` gives it,
    None on a site without an accounting database."""
    return readings(client).setdefault("budgets", Refreshed(client.account_budgets))


async def check_budget(
    client: SlurmAPI,
    request: ResourceRequest,
    accounts: tuple[str, ...],
    max_age: float = BUDGET_MAX_AGE,
) -> None:
    """Refuse (`RequestError`, naming the field to change) a request its account's budget
    cannot cover: Slurm would refuse it with a bare "AssocGrpGRESMinutes". The budgets read at
    most `max_age` seconds ago serve."""
    budgets = await budget_cache(client).get(max_age) or {}
    account = charged_account(request.account, accounts)
    why = budget_refusal(
        budgets.get(account),
        cpus=request.cpus,
        gpus=request.gpus,
        walltime_minutes=request.walltime_minutes,
    )
    if why:
        raise RequestError(f"walltime: cannot start: {why}", "walltime")
