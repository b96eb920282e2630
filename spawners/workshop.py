"""Workshops in the hub: the join page (`/hub/workshop/<name>`) and a seat's locked preset.

A learner opens the join address, enters the workshop's access code and a display name, and
is given a free seat (one transaction of the seat claims: never one seat to two people), is
logged in as that seat's account (`BaseHandler.set_login_cookie`), and sent to
its session is started at once with the course's preset (nothing to choose). Every
request of a seat, form or REST, is its course's preset on the workshop's reservation and
account (`seat_options`): anything else is refused with a sentence.

A browser gets pages; a client that asks for JSON (`Accept: application/json`) gets
`{"seat", "token", "spawn_url", "rejoin_key", "rejoin_url", "rejoined"}`, the token an API
token of the seat until the slot ends.

Coming back: whoever joined has a rejoin key (shown on every hub page of the seat, in the JSON
answer, and as a link to bookmark: `<join address>#rejoin=KEY`, a fragment the browser never
sends, so the key is in no log). The key, or a seat's own code (per-seat codes), gives that
seat back from any browser; the workshop's code with the same display name does not (that is
refused with a sentence: a name alone proves nothing).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import new_token, url_path_join
from tornado import web

from factoryhub.site import Site, load_site
from factoryhub.workshop import NAME, SEATS_GROUP
from factoryhub.workshoprecord import (
    JoinRefused,
    Workshop,
    display_name,
    locked_options,
    normalised_code,
)
from factoryhub.workshopreport import join_url
from factoryhub.workshopstore import (
    SeatClaims,
    claims_path,
    load_workshop,
    records_dir,
    workshop_of,
)

JOIN_TEMPLATE = "factoryhub/workshop_join.html"


@lru_cache(maxsize=4)
def _claims(path: str) -> SeatClaims:
    return SeatClaims(Path(path))


def seat_workshop(site: Site, user: str) -> Workshop | None:
    """The workshop whose seat `user` is (made, or taken from the site's pool); None for
    every other account (the records are read again only when they changed)."""
    return workshop_of(records_dir(site), user)


def seat_rejoin(site: Site, user: object) -> dict | None:
    """For a page of the hub (`template_vars`): the seat's workshop, seat, display name and
    rejoin key and link, shown so the learner can come back from another browser; None for
    every account that is no seat with a claim."""
    name = getattr(user, "name", None)
    workshop = seat_workshop(site, name) if isinstance(name, str) else None
    if workshop is None or workshop.state != "active":
        return None
    claims = _claims(str(claims_path(site)))
    claim = claims.claims(workshop).get(name)
    key = claims.rejoin_key(workshop, name)
    if claim is None or key is None:
        return None
    url = f"{join_url(site.hub.url, workshop.name)}#rejoin={key}"
    return {
        "workshop": workshop.name,
        "seat": name,
        "display_name": claim.display_name,
        "key": key,
        "url": url,
    }


def seat_options(site: Site, user: str, options: dict | None) -> dict | None:
    """`options` for an ordinary learner; for a seat, its locked preset (or `LockRefused`)."""
    workshop = seat_workshop(site, user)
    if workshop is None:
        return options
    return locked_options(workshop, options or {}, datetime.now())


def in_seats_group(db, user: orm.User) -> None:
    """`user`, a seat given out, in the hub's group of seats (made on first use)."""
    group = orm.Group.find(db, SEATS_GROUP)
    if group is None:
        group = orm.Group(name=SEATS_GROUP)
        db.add(group)
    if group not in user.groups:
        user.groups.append(group)
        db.commit()


def forget_earlier_holder(db, user: orm.User) -> None:
    """A seat given to a new person (a pool account's next workshop, or a seat name a later
    workshop of the same name makes again) keeps nothing of its earlier holder: the account
    gets a new cookie id (the earlier hub login cookie names the old one), and its API and
    OAuth tokens and the shares of its servers (an earlier trainer's) are deleted."""
    user.cookie_id = new_token()
    for token in list(user.api_tokens):
        db.delete(token)
    for kind in (orm.Share, orm.ShareCode):
        for share in db.query(kind).filter(kind.owner_id == user.id):
            db.delete(share)
    db.commit()


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
        user = self.current_user
        mine = seat_rejoin(self.site, user) if user is not None else None
        html = await self.render_template(
            JOIN_TEMPLATE,
            workshop=workshop,
            message=message,
            shown_name="",
            my_seat=mine if mine and mine["workshop"] == workshop.name else None,
            per_seat=workshop.codes == "per-seat",
        )
        self.finish(html)

    async def get(self, name: str) -> None:
        workshop = self._workshop(name)
        message = "" if workshop.state == "active" else "This workshop has ended."
        await self._page(workshop, message)

    async def post(self, name: str) -> None:
        workshop = self._workshop(name)
        try:
            seat, rejoined = await self._claim(workshop)
        except JoinRefused as refused:
            if self._wants_json():
                self.set_status(400)
                self.finish({"status": 400, "message": str(refused)})
                return
            await self._page(workshop, str(refused), 400)
            return
        user = self.user_from_username(seat)
        in_seats_group(self.db, user.orm_user)
        if not rejoined:  # a new person on this account: nothing of an earlier one works
            forget_earlier_holder(self.db, user.orm_user)
        self.log.info(
            "workshop %s: seat %s %s", workshop.name, seat, "rejoined" if rejoined else "taken"
        )
        spawn = url_path_join(self.hub.base_url, "spawn", seat)
        if self._wants_json():
            token = user.new_api_token(
                note=f"workshop {workshop.name}",
                expires_in=max(60, int((workshop.end_time - datetime.now()).total_seconds())),
                scopes=["self"],
            )
            again = seat_rejoin(self.site, user) or {}
            self.finish(
                {
                    "seat": seat,
                    "token": token,
                    "spawn_url": spawn,
                    "rejoin_key": again.get("key", ""),
                    "rejoin_url": again.get("url", ""),
                    "rejoined": rejoined,
                }
            )
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

    async def _claim(self, workshop: Workshop) -> tuple[str, bool]:
        """The seat for this POST and whether it is a return: a rejoin key (or a seat's own
        code) gives that seat back; the workshop's code gives a free seat to a new name."""
        if workshop.state != "active":
            raise JoinRefused("This workshop has ended; its seats are closed.")
        if datetime.now() >= workshop.end_time:
            raise JoinRefused("This workshop's time slot is over.")
        claims = _claims(str(claims_path(self.site)))
        key = normalised_code(self.get_body_argument("rejoin", "")[:64])
        if key:
            claim = await asyncio.to_thread(claims.seat_of_rejoin_key, workshop, key)
            if claim is None:
                raise JoinRefused(
                    "That rejoin key is not one of this workshop's seats. Check it, or ask a"
                    " trainer."
                )
            return claim.seat, True
        code = self.get_body_argument("code", "")[:64]
        own = workshop.seat_of_code(code)
        if own is not None and own in await asyncio.to_thread(claims.claims, workshop):
            return own, True  # a seat's own code is that seat's key
        shown = display_name(self.get_body_argument("name", "")[:200])
        if own is None and not workshop.code_matches(code):
            raise JoinRefused(
                "That code is not one of this workshop's seat codes. Check your slip."
                if workshop.codes == "per-seat"
                else "That access code is not this workshop's. Check the handout."
            )
        # one short transaction, off the event loop: 200 joins at once queue on its lock
        seat = await asyncio.to_thread(claims.claim, workshop, shown, datetime.now(), own)
        if seat is None and own is not None:
            return own, True  # its holder joined a moment before, with the same code
        if seat is None:
            raise JoinRefused(
                f"All {len(workshop.seats)} seats of this workshop are taken. Ask a trainer."
            )
        return seat, False


def join_handlers(site_path: str) -> list[tuple[str, type, dict]]:
    """`c.JupyterHub.extra_handlers` (mounted under the hub's base URL: `/hub/workshop/…`)."""
    return [(r"/workshop/([a-z0-9]{1,16})", JoinHandler, {"site_path": site_path})]
