"""Exemptions from idle culling (REST, JSON), for trainers and admins; and a learner's own
session's outlook and "Keep my session", for its JupyterLab (through the session's extension,
with the session's token):

- ``GET api/culling/exemptions``: those in force;
- ``POST api/culling/exemptions`` ``{"user", "server"?: name | "" | "*", "hours": 1-72}``: keep
  that learner's session (every session of theirs with "*") running however idle, until then.
  With the caller's API token, or this service's form token (a cookie alone is not enough).

- ``GET api/culling/session?server=NAME``: when the caller's own server would be stopped if it
  stays idle (``{"rule", "gpus", "limit_minutes", "warn_minutes", "seconds_left", "kept_until",
  "exempt"}``), from the hub's last activity and the exemptions in force;
- ``POST api/culling/keep`` ``{"server": NAME}``: keep the caller's own server for one more
  idle period (an exemption granted by the learner to themselves, replacing their last one).

The culler's arbiter reads the same file (``<state_dir>/culls/exemptions.json``) on each look.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from tornado import web
from tornado.escape import url_escape
from tornado.httpclient import AsyncHTTPClient

from factoryhub.culling import (
    ExemptionError,
    ServerView,
    add_exemption,
    idle_outlook,
    is_hub_staff,
    keep_session,
    new_exemption,
    read_exemptions,
    server_view,
    staff_of,
)

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


# --- a learner's own session: its idle outlook, and "Keep my session" (JupyterLab's warning) ---

HUB_TIMEOUT = 10.0
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{0,40}", re.ASCII)


class HubUnavailable(RuntimeError):
    """The hub's REST API did not answer."""


async def hub_server(user: str, server: str) -> dict | None:
    """The hub's model of `user`'s server `server` ("" the default one), or None when it has
    none ready. Read with this service's own token, whose role grants read:servers only
    (spawners/hubconfig.py)."""
    api = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    try:
        response = await AsyncHTTPClient().fetch(
            f"{api}/users/{url_escape(user, plus=False)}",
            headers={"Authorization": f"token {token}"},
            request_timeout=HUB_TIMEOUT,
            raise_error=False,
        )
    except OSError as exc:
        raise HubUnavailable(str(exc)) from None
    if response.code == 404:
        return None
    if response.code != 200:
        raise HubUnavailable(f"the hub answered {response.code}")
    found = json.loads(response.body).get("servers", {}).get(server)
    return found if found and found.get("ready") else None


def _inactive(server: dict, now: datetime) -> timedelta | None:
    """How long the hub has seen no activity on `server` (as jupyterhub-idle-culler counts)."""
    stamp = server.get("last_activity") or server.get("started")
    if not isinstance(stamp, str) or not stamp:
        return None
    return now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class OwnSessionAPI(ServiceAPI):
    """The caller's own server, named by its server name only: the user is always the caller
    (their token's owner), so no learner can read or keep another's session."""

    async def own_view(self, server: object) -> ServerView:
        if not isinstance(server, str) or not _SERVER_NAME.fullmatch(server):
            raise web.HTTPError(400, 'server: a server name, or "" for the default one')
        user = self.current_user["name"]
        try:
            model = await hub_server(user, server)
        except HubUnavailable as exc:
            log.warning("the hub did not answer about %s/%s: %s", user, server, exc)
            raise web.HTTPError(502, "the hub did not answer; try again in a minute") from None
        if model is None:
            raise web.HTTPError(404, f"you have no running server {server!r}")
        now = datetime.now(UTC)
        return server_view(model, _inactive(model, now), now)

    def staff(self) -> frozenset[str]:
        """Staff as the culler counts them: site.toml's, and the caller when the hub makes
        them so (an admin, or single sign-on's trainer: `factoryhub.culling.is_hub_staff`),
        so that JupyterLab never warns a trainer of a stop that will not come."""
        staff = staff_of(self.site)
        if is_hub_staff(self.current_user):
            staff |= {self.current_user["name"]}
        return staff

    def outlook(self, view: ServerView) -> dict[str, object]:
        site, now = self.site, datetime.now(UTC)
        granted = read_exemptions(site)
        return idle_outlook(view, site.culling, self.staff(), granted, now).to_json()


class CullingSessionHandler(OwnSessionAPI):
    """``GET api/culling/session?server=NAME``: when the culler would stop the caller's own
    server if it stays idle (`factoryhub.culling.idle_outlook`), for its JupyterLab."""

    @web.authenticated
    async def get(self) -> None:
        view = await self.own_view(self.get_argument("server", ""))
        self.reply(200, self.outlook(view))


class CullingKeepHandler(OwnSessionAPI):
    """``POST api/culling/keep`` ``{"server": NAME}``: "Keep my session" — the caller's own
    server kept for one more idle period (`factoryhub.culling.keep_session`). With the
    caller's API token (the session's), or this service's form token: never a cookie alone."""

    @web.authenticated
    async def post(self) -> None:
        self.require_token_or_form("keep")
        body = self.json_body()
        if not isinstance(body, dict) or set(body) - {"server"}:
            raise web.HTTPError(400, 'send {"server": NAME} ("" for the default server)')
        view = await self.own_view(body.get("server", ""))
        site, now = self.site, datetime.now(UTC)
        before = idle_outlook(view, site.culling, self.staff(), read_exemptions(site), now)
        if not before.rule:
            self.reply(200, {**before.to_json(), "message": f"Never stopped: {before.exempt}."})
            return
        kept = keep_session(view, site.culling, now)
        add_exemption(site, kept, now)
        log.info("%s keeps %s/%s until %s", view.user, view.user, view.name, kept.until)
        self.reply(201, {**self.outlook(view), "message": "Kept."})
