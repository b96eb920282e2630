"""Who may use my session: ``GET sharing`` lists the shares of the caller's own servers (JupyterHub
5+ sharing; a workshop's trainer gets one from the cohort page), ``POST sharing`` (this page's
form, or the caller's API token) refuses one: the hub revokes it at once. The caller only ever
sees and changes the shares of their own servers."""

from __future__ import annotations

import logging

from tornado import web

from .hubapi import HubAPIError, hub_api, user_path
from .support_page import ServiceAPI, form_token

log = logging.getLogger(__name__)


class SharingPageHandler(ServiceAPI):
    def write_error(self, status_code: int, **kwargs: object) -> None:
        from .pages import ServicePage

        ServicePage.write_error(self, status_code, **kwargs)  # a page, not JSON

    async def _shares(self, user: str) -> list[dict]:
        try:
            answer = await hub_api("GET", f"shares/{user_path(user)}")
        except HubAPIError as exc:
            log.warning("shares of %s not read: %s", user, exc)
            raise web.HTTPError(502, "the hub did not say who shares your sessions") from None
        items = answer.get("items", []) if isinstance(answer, dict) else []
        return [
            {
                "with": (item.get("user") or item.get("group") or {}).get("name", ""),
                "kind": item.get("kind", "user"),
                "server": (item.get("server") or {}).get("name", ""),
                "since": str(item.get("created_at") or "")[:16].replace("T", " "),
            }
            for item in items
        ]

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user["name"]
        shares = await self._shares(user)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page(
                "sharing.html",
                shares=shares,
                token=form_token(self.settings["cookie_secret"], user, "sharing"),
            )
        )

    @web.authenticated
    async def post(self) -> None:
        self.require_token_or_form("sharing")
        user = self.current_user["name"]
        who = self.get_body_argument("with", "")[:64]
        kind = self.get_body_argument("kind", "user")
        server = self.get_body_argument("server", "")[:64]
        if kind not in ("user", "group") or not who:
            raise web.HTTPError(400, "say whose access to refuse")
        try:
            await hub_api("PATCH", f"shares/{user_path(user, server)}", {kind: who})
        except HubAPIError as exc:
            if exc.status == 404:
                raise web.HTTPError(404, "you have no such session") from None
            log.warning("share of %s/%s with %s not revoked: %s", user, server, who, exc)
            raise web.HTTPError(502, "the hub did not revoke the access; try again") from None
        log.info("%s refused %s %s access to server %r", user, kind, who, server)
        self.redirect(f"{self.service_prefix}sharing", status=303)
