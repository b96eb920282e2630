"""``GET api/budget``: the caller's Slurm accounts' budgets (GrpTRESMins, usage and what
running jobs hold, from `sshare`), for the GPU request widget in a session (its token) and any
page of the learner's. The hub's account reads every account's usage (learners cannot:
PrivateData=usage); each caller is told about their own accounts only."""

from __future__ import annotations

from tornado import web

from factoryhub.budget import budget_json
from factoryhub.request import access_for
from factoryhub.scheduler.budgets import budget_cache
from factoryhub.scheduler.livesite import association_cache, shared_client

from .support_page import ServiceAPI


class BudgetAPIHandler(ServiceAPI):
    @web.authenticated
    async def get(self) -> None:
        site = self.site
        user = self.current_user["name"]
        client = shared_client(site.slurm.bin_dir, site.slurm.command_timeout)
        refresh = site.limits.accounting_refresh_seconds
        associations = await association_cache(client).get(user, refresh)
        accounts = access_for(site, user, (), associations).accounts
        self.reply(200, budget_json(accounts, await budget_cache(client).get(refresh)))
