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
from datetime import UTC, datetime, timedelta

from jupyterhub_idle_culler import IdleCuller

from factoryhub.culling import (
    CullRecord,
    cull_reason,
    read_exemptions,
    server_view,
    staff_of,
    write_record,
)

from .pages import SiteFile

log = logging.getLogger("factoryhub.culler")


class SiteCullArbiter:
    """The culler's `cull_arbiter_hook`: True when a server is to be stopped now."""

    def __init__(self, site_file: SiteFile) -> None:
        self.site_file = site_file

    def __call__(
        self, *, inactive: timedelta | None, inactive_limit: int, server: dict, **_: object
    ) -> bool:
        site = self.site_file.get()
        now = datetime.now(UTC)
        view = server_view(server, inactive, now)
        reason = cull_reason(view, site.culling, staff_of(site), read_exemptions(site), now)
        if reason is None:
            return False
        log.info("stopping %s/%s: %s", view.user, view.name, reason)
        record = CullRecord(view.user, view.name, now.isoformat(), reason, view.gpus)
        try:
            write_record(site, record)
        except OSError as exc:  # the stop matters more than its note
            log.error("could not record the stop of %s: %s", view.user, exc)
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
