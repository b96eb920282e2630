"""The idle culler: jupyterhub-idle-culler, run by the hub as the service "factoryhub-culler"
(`python -m factoryhub.service.culler`), with FactoryHub's decision as its cull arbiter.

The library does the loop, the hub's REST API (pagination, concurrency) and the stopping; the
arbiter (`SiteCullArbiter`) decides with `factoryhub.culling.cull_reason` from site.toml's
[culling], read again when the file changes, so thresholds and exemptions apply without a
restart. The culler's own `timeout` and `max_age` are not used for servers: every rule,
exemptions first, is the arbiter's. Each stop is logged with its reason and recorded for the
learner in ``<state_dir>/culls/<user>.jsonl``, which the spawn form reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from jupyterhub_idle_culler import IdleCuller

from factoryhub.culling import (
    CullRecord,
    cull_reason,
    is_hub_staff,
    read_exemptions,
    server_view,
    staff_of,
    write_record,
)

from .hubapi import HubAPIError, hub_api, user_path
from .pages import SiteFile

log = logging.getLogger("factoryhub.culler")


async def hub_user(name: str) -> Mapping:
    """The hub's user model of `name`, as the culler's role may read it (name, admin flag,
    groups; `spawners.hubconfig.CULLER_SCOPES`)."""
    return await hub_api("GET", f"users/{user_path(name)}")


class SiteCullArbiter:
    """The culler's `cull_arbiter_hook`: True when a server is to be stopped now
    (`hub_user`: how the hub's user model of a session's owner is read)."""

    def __init__(
        self,
        site_file: SiteFile,
        hub_user: Callable[[str], Awaitable[Mapping]] = hub_user,
    ) -> None:
        self.site_file = site_file
        self.hub_user = hub_user

    async def __call__(
        self, *, inactive: timedelta | None, inactive_limit: int, server: dict, **_: object
    ) -> bool:
        site = self.site_file.get()
        now = datetime.now(UTC)
        view = server_view(server, inactive, now)
        reason = cull_reason(view, site.culling, staff_of(site), read_exemptions(site), now)
        if reason is None:
            return False
        if site.culling.exempt_staff and await self._staff_in_hub(view.user):
            log.debug("keeping %s/%s: a trainer or admin of the hub", view.user, view.name)
            return False
        log.info("stopping %s/%s: %s", view.user, view.name, reason)
        record = CullRecord(view.user, view.name, now.isoformat(), reason, view.gpus)
        try:
            write_record(site, record)
        except OSError as exc:  # the stop matters more than its note
            log.error("could not record the stop of %s: %s", view.user, exc)
        return True

    async def _staff_in_hub(self, user: str) -> bool:
        """Whether the hub makes `user` staff; True when it cannot say (a staff session
        stopped is worse than a learner's stopped one pass later)."""
        try:
            return is_hub_staff(await self.hub_user(user))
        except HubAPIError as exc:
            log.warning("keeping %s's idle session for now: %s", user, exc)
            return True


def make_culler(site_path: str) -> IdleCuller:
    """The library's application, set from site.toml's [culling]."""
    site_file = SiteFile(site_path)
    rules = site_file.get().culling
    culler = IdleCuller()
    culler.config_file = ""  # everything is set here, from site.toml
    culler.timeout = max(1, round(rules.idle_minutes * 60))  # users are never culled
    culler.cull_every = rules.every_seconds
    culler.max_age = 0  # the arbiter applies max_age_hours, after the exemptions
    culler.cull_users = False
    culler.remove_named_servers = False
    culler.cull_arbiter_hook = SiteCullArbiter(site_file)
    return culler


def main() -> None:
    from .app import _exit_with_the_hub

    _exit_with_the_hub()
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(name)s] %(message)s")
    make_culler(os.environ["FACTORYHUB_SITE"]).start()


if __name__ == "__main__":
    main()
