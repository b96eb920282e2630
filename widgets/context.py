"""Where a widget runs: the learner's session, as its environment describes it.

The spawner exports the public part of the site (``FACTORYHUB_SITE_JSON``) into every session;
Slurm adds the session's job id; JupyterHub adds the server's URL prefix. The kernel runs as the
learner, so Slurm's commands run directly, with no user switch.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from factoryhub.capacity import Capacity
from factoryhub.request import UserAccess, access_for
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.site import SITE_ENV, Site, SiteError, site_from_data


@dataclass(frozen=True)
class SessionContext:
    """The learner, their site and their session; `client` runs Slurm as the learner."""

    site: Site
    user: str
    home: Path
    session_job: str = ""  # the session's own Slurm job id ("" outside a session)
    service_prefix: str = "/"  # e.g. /user/alice/ or /user/alice/gpu-lab/
    client: SlurmClient = field(default_factory=lambda: SlurmClient(switch_user=False))

    async def capacity(self) -> Capacity | None:
        """The live capacity, or None when the scheduler does not answer."""
        try:
            return await self.client.capacity()
        except SlurmError:
            return None

    async def access(self) -> UserAccess:
        """What this learner may name: accounts and QoS (with their limits, from the accounting
        database where the site has one) and the reservations open to them."""
        capacity = await self.capacity()
        associations = await self.client.associations(self.user)
        reservations = capacity.reservations if capacity else ()
        return access_for(self.site, self.user, reservations, associations)


def site_from_env(environ: Mapping[str, str]) -> Site:
    """The site the spawner exported into the session."""
    text = environ.get(SITE_ENV)
    if not text:
        raise SiteError(
            f"{SITE_ENV} is not set: FactoryHub's widgets work inside a FactoryHub session"
        )
    try:
        return site_from_data(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SiteError(f"{SITE_ENV} is not valid JSON: {exc}") from None


def session_context(
    environ: Mapping[str, str] | None = None, client: SlurmClient | None = None
) -> SessionContext:
    """The context of the running kernel (or of `environ`, for tests)."""
    env = os.environ if environ is None else environ
    site = site_from_env(env)
    user = env.get("USER") or getpass.getuser()
    return SessionContext(
        site=site,
        user=user,
        home=Path(env.get("HOME") or Path.home()),
        session_job=env.get("SLURM_JOB_ID", ""),
        service_prefix=env.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        client=client
        or SlurmClient(site.slurm.bin_dir, site.slurm.command_timeout, switch_user=False),
    )
