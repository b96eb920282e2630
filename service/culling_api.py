"""Exemptions from idle culling (REST, JSON), for trainers and admins:

- ``GET api/culling/exemptions``: those in force;
- ``POST api/culling/exemptions`` ``{"user", "server"?: name | "" | "*", "hours": 1-72}``: keep
  that learner's session (every session of theirs with "*") running however idle, until then.
  With the caller's API token, or this service's form token (a cookie alone is not enough).

The culler's arbiter reads the same file (``<state_dir>/culls/exemptions.json``) on each look.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime

from tornado import web

from factoryhub.culling import ExemptionError, add_exemption, new_exemption, read_exemptions

from .pages import is_trainer
from .support_page import ServiceAPI

log = logging.getLogger(__name__)


class CullingExemptionsHandler(ServiceAPI):
    def _require_staff(self) -> str:
        user = self.current_user
        if not (user.get("admin") or is_trainer(self.site, user["name"], user.get("groups", ()))):
            raise web.HTTPError(403, "only trainers and admins exempt sessions from culling")
        return user["name"]

    @web.authenticated
    def get(self) -> None:
        self._require_staff()
        now = datetime.now(UTC)
        kept = [e for e in read_exemptions(self.site) if datetime.fromisoformat(e.until) > now]
        self.reply(200, {"exemptions": [asdict(e) for e in kept]})

    @web.authenticated
    def post(self) -> None:
        by = self._require_staff()
        self.require_token_or_form("culling")
        now = datetime.now(UTC)
        try:
            exemption = new_exemption(self.json_body(), by, now)
        except ExemptionError as exc:
            raise web.HTTPError(400, str(exc)) from None
        add_exemption(self.site, exemption, now)
        log.info(
            "%s exempts %s/%s from culling until %s",
            by,
            exemption.user,
            exemption.server,
            exemption.until,
        )
        self.reply(201, asdict(exemption))
