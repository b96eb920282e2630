"""Workshops in the hub: the join page (`/hub/workshop/<name>`) and a seat's locked preset.

A learner opens the join address, enters the workshop's access code and a display name, and
is given a free seat (one transaction of the seat claims: never one seat to two people), is
logged in as that seat's account (`BaseHandler.set_login_cookie`), and sent to
its session is started at once with the course's preset (nothing to choose). Every
request of a seat, form or REST, is its course's preset on the workshop's reservation and
account (`seat_options`): anything else is refused with a sentence.

A browser gets pages; a client that asks for JSON (`Accept: application/json`) gets
`{"seat", "token", "spawn_url"}`, the token an API token of the seat until the slot ends.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from factoryhub.site import Site, load_site
from factoryhub.workshop import NAME, workshop_of_seat
from factoryhub.workshoprecord import JoinRefused, Workshop, display_name, locked_options
from factoryhub.workshopstore import SeatClaims, claims_path, load_workshop, records_dir

JOIN_TEMPLATE = "factoryhub/workshop_join.html"


@lru_cache(maxsize=4)
def _claims(path: str) -> SeatClaims:
    return SeatClaims(Path(path))


def seat_workshop(site: Site, user: str) -> Workshop | None:
    """The workshop whose seat `user` is; None for every other account (one name check)."""
    if workshop_of_seat(user) is None:
        return None
    workshop = load_workshop(records_dir(site), workshop_of_seat(user))
    return workshop if workshop is not None and user in workshop.seats else None


def seat_options(site: Site, user: str, options: dict | None) -> dict | None:
    """`options` for an ordinary learner; for a seat, its locked preset (or `LockRefused`)."""
    workshop = seat_workshop(site, user)
    if workshop is None:
        return options
    return locked_options(workshop, options or {}, datetime.now())


@lru_cache(maxsize=4)
def _site_at(path: str, mtime: float) -> Site:
    return load_site(path)


class JoinHandler(BaseHandler):
    """GET: the join form; POST: code + display name → a seat, logged in, its session."""

    def initialize(self, site_path: str) -> None:
        self.site_path = site_path

    @property
    def site(self) -> Site:
        return _site_at(self.site_path, os.stat(self.site_path).st_mtime)

    def _workshop(self, name: str) -> Workshop:
        workshop = load_workshop(records_dir(self.site), name) if NAME.fullmatch(name) else None
        if workshop is None or workshop.state == "purged":
            raise web.HTTPError(404, "There is no workshop at this address.")
        return workshop

    def _wants_json(self) -> bool:
        return "application/json" in self.request.headers.get("Accept", "")

    async def _page(self, workshop: Workshop, message: str = "", status: int = 200) -> None:
        self.set_status(status)
        html = await self.render_template(
            JOIN_TEMPLATE, workshop=workshop, message=message, shown_name=""
        )
        self.finish(html)

    async def get(self, name: str) -> None:
        workshop = self._workshop(name)
        message = "" if workshop.state == "active" else "This workshop has ended."
        await self._page(workshop, message)

    async def post(self, name: str) -> None:
        workshop = self._workshop(name)
        try:
            seat = await self._claim(workshop)
        except JoinRefused as refused:
            if self._wants_json():
                self.set_status(400)
                self.finish({"status": 400, "message": str(refused)})
                return
            await self._page(workshop, str(refused), 400)
            return
        user = self.user_from_username(seat)
        self.log.info("workshop %s: seat %s taken", workshop.name, seat)
        spawn = url_path_join(self.hub.base_url, "spawn", seat)
        if self._wants_json():
            token = user.new_api_token(
                note=f"workshop {workshop.name}",
                expires_in=max(60, int((workshop.end_time - datetime.now()).total_seconds())),
                scopes=["self"],
            )
            self.finish({"seat": seat, "token": token, "spawn_url": spawn})
            return
        self.set_login_cookie(user)
        await self._start(user)

    async def _start(self, user) -> None:
        """The seat's session, started at once with its preset (no form: nothing to choose);
        the learner watches it start on the spawn-pending page, then lands in the notebook."""
        spawner = user.spawners[""]
        if not spawner.active:
            started = asyncio.ensure_future(self.spawn_single_user(user, "", options={}))
            await asyncio.wait([started], timeout=1)
            if started.done() and started.exception():
                raise started.exception()
        self.redirect(url_path_join(self.hub.base_url, "spawn-pending", user.name))

    async def _claim(self, workshop: Workshop) -> str:
        if workshop.state != "active":
            raise JoinRefused("This workshop has ended; its seats are closed.")
        if datetime.now() >= workshop.end_time:
            raise JoinRefused("This workshop's time slot is over.")
        code = self.get_body_argument("code", "")[:64]
        shown = display_name(self.get_body_argument("name", "")[:200])
        if not workshop.code_matches(code):
            raise JoinRefused("That access code is not this workshop's. Check the handout.")
        claims = _claims(str(claims_path(self.site)))
        # one short transaction, off the event loop: 200 joins at once queue on its lock
        seat = await asyncio.to_thread(claims.claim, workshop, shown, datetime.now())
        if seat is None:
            raise JoinRefused(
                f"All {len(workshop.seats)} seats of this workshop are taken. Ask a trainer."
            )
        return seat


def join_handlers(site_path: str) -> list[tuple[str, type, dict]]:
    """`c.JupyterHub.extra_handlers` (mounted under the hub's base URL: `/hub/workshop/…`)."""
    return [(r"/workshop/([a-z0-9]{1,16})", JoinHandler, {"site_path": site_path})]
