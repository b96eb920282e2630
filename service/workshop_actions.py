"""What a workshop's trainers do from the cohort page (JSON, each a POST with this service's
form token or the trainer's API token; only the workshop's trainers and the site's admins, and
only on that workshop's seats):

- ``api/workshops/<name>/seats/<seat>/share``: JupyterHub's sharing (5+ ``shares`` API) gives
  the trainer access to the seat's server; the learner is told in JupyterLab (an announcement
  for that seat alone) and can refuse at any time on ``sharing`` (or with the hub's own API);
- ``api/workshops/<name>/seats/<seat>/restart``: a stuck session stopped and started again
  through the hub's API (the seat's locked preset applies, as to every seat's request);
- ``api/workshops/<name>/message`` ``{"text"}``: an announcement for this workshop's seats
  only, shown in every seat's JupyterLab until the slot ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from tornado import web

from factoryhub.announcements import AnnouncementError, NewAnnouncement, parse_workshop_message
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopstore import SeatClaims, claims_path

from .hubapi import HubAPIError, hub_api, user_path
from .support_page import ServiceAPI
from .workshop_access import trainers_seat, trainers_workshop

log = logging.getLogger(__name__)
STOP_WAIT = 90.0  # seconds a restart waits for the old session to be gone
_SEAT = r"(ws-[a-z0-9]{1,16}-[0-9]{2,3})"
_restarts: set[asyncio.Task] = set()  # kept so the loop does not drop them half-way


def slot_end_utc(workshop: Workshop) -> datetime:
    """The workshop's end (local time on record) in UTC."""
    return workshop.end_time.astimezone(UTC)


class _SeatAction(ServiceAPI):
    """A trainer's POST about one seat of their workshop."""

    def _seat(self, name: str, seat: str) -> Workshop:
        workshop = trainers_seat(self.site, self.current_user, name, seat)
        self.require_token_or_form("workshop")
        if workshop.state != "active":
            raise web.HTTPError(409, f"workshop {workshop.name} has ended")
        if seat not in SeatClaims(claims_path(self.site)).claims(workshop):
            raise web.HTTPError(409, f"nobody has joined on {seat} yet")
        return workshop


class ShareHandler(_SeatAction):
    @web.authenticated
    async def post(self, name: str, seat: str) -> None:
        workshop = self._seat(name, seat)
        trainer = self.current_user["name"]
        try:
            await hub_api("POST", f"shares/{user_path(seat)}/", {"user": trainer})
        except HubAPIError as exc:
            if exc.status == 404:
                raise web.HTTPError(409, f"{seat} has no session to share yet") from None
            log.warning("share of %s with %s refused by the hub: %s", seat, trainer, exc)
            raise web.HTTPError(502, "the hub refused the share") from None
        notice = NewAnnouncement(
            text=(
                f"Trainer {trainer} can now see and work in your session (JupyterHub sharing)."
                f" To refuse, open {self.service_prefix}sharing and press Refuse."
            ),
            partition="",
            expires=slot_end_utc(workshop),
            user=seat,
        )
        self.db.announce(notice, trainer, datetime.now(UTC))
        log.info("workshop %s: %s shared with trainer %s", workshop.name, seat, trainer)
        self.reply(
            200,
            {
                "message": f"{seat}'s session is shared with you; the learner is told.",
                "url": f"{self.hub_prefix.removesuffix('hub/')}user/{seat}/lab",
            },
        )


async def _stopped(seat: str) -> bool:
    deadline = time.monotonic() + STOP_WAIT
    while time.monotonic() < deadline:
        model = await hub_api("GET", f"users/{user_path(seat)}")
        if "" not in (model.get("servers") or {}):
            return True
        await asyncio.sleep(1.0)
    return False


async def restart_seat(seat: str) -> None:
    """Stop `seat`'s default server (if any), wait until it is gone, start it again."""
    try:
        try:
            await hub_api("DELETE", f"users/{user_path(seat)}/server")
        except HubAPIError as exc:
            if exc.status not in (400, 404):  # 400: no server to stop
                raise
        if not await _stopped(seat):
            log.warning("restart of %s: the old session did not stop in time", seat)
            return
        # explicit empty options: the seat's preset (with none, the hub would reuse the last
        # spawn's resolved options, which a seat's lock refuses as choices)
        await hub_api("POST", f"users/{user_path(seat)}/server", {"user_options": {}})
        log.info("restart of %s: started again", seat)
    except HubAPIError as exc:
        log.warning("restart of %s failed: %s", seat, exc)


class RestartHandler(_SeatAction):
    @web.authenticated
    def post(self, name: str, seat: str) -> None:
        workshop = self._seat(name, seat)
        task = asyncio.ensure_future(restart_seat(seat))
        _restarts.add(task)
        task.add_done_callback(_restarts.discard)
        log.info("workshop %s: %s restarted by %s", workshop.name, seat, self.current_user["name"])
        self.reply(
            202,
            {"message": f"Restarting {seat}: stopping its session, then starting it again."},
        )


class MessageHandler(ServiceAPI):
    @web.authenticated
    def post(self, name: str) -> None:
        workshop = trainers_workshop(self.site, self.current_user, name)
        self.require_token_or_form("workshop")
        if workshop.state != "active":
            raise web.HTTPError(409, f"workshop {workshop.name} has ended")
        now = datetime.now(UTC)
        try:
            new = parse_workshop_message(
                self.json_body(), workshop.key, slot_end_utc(workshop), now
            )
        except AnnouncementError as exc:
            self.reply(400, {"message": str(exc)})
            return
        posted = self.db.announce(new, self.current_user["name"], now)
        log.info("workshop %s: message %d from %s", workshop.name, posted.id, posted.author)
        self.reply(201, {"message": "Sent to every seat of the workshop.", **posted.to_json()})


def action_routes(prefix: str) -> list[tuple]:
    base = rf"{prefix}api/workshops/([a-z0-9]{{1,16}})"
    return [
        (rf"{base}/seats/{_SEAT}/share", ShareHandler),
        (rf"{base}/seats/{_SEAT}/restart", RestartHandler),
        (rf"{base}/message", MessageHandler),
    ]
