"""Announcements in the hub service (REST, JSON).

- ``GET api/announcements[?partition=gpu]``: the current ones for everyone (and that
  partition's users), for every logged-in user, a session's token included; a workshop
  seat also gets its workshop's messages (`workshop_actions`), and anyone the notes meant for
  them alone (e.g. a trainer now shares their session);
- ``POST api/announcements`` ``{"text", "partition"?, "for": "2h" | "until": iso}``: admins
  only (the hub's admins), with their API token (`factoryhub announce` sends it);
- ``DELETE api/announcements/<id>``: admins only, withdraws one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tornado import web

from factoryhub.announcements import AnnouncementError, parse_announcement

from .progress_api import seat_of
from .support_page import ServiceAPI

log = logging.getLogger(__name__)


class AnnouncementsAPIHandler(ServiceAPI):
    def _require_admin(self) -> str:
        user = self.current_user
        if not (user.get("admin") or user["name"] in self.site.hub.admin_users):
            raise web.HTTPError(403, "only the hub's admins post announcements")
        self.require_token_or_form("announce")
        return user["name"]

    @web.authenticated
    def get(self) -> None:
        partition = self.get_argument("partition", "")[:40] or None
        user = self.current_user["name"]
        workshop = seat_of(self.site, user)  # the caller's own, from the token, never asked
        workshops = (workshop.key,) if workshop is not None else ()
        shown = self.db.announcements(datetime.now(UTC), partition, user, workshops)
        self.reply(200, {"announcements": [a.to_json() for a in shown]})

    @web.authenticated
    def post(self) -> None:
        author = self._require_admin()
        try:
            new = parse_announcement(self.json_body(), self.site, datetime.now(UTC))
        except AnnouncementError as exc:
            self.reply(400, {"message": str(exc)})
            return
        posted = self.db.announce(new, author, datetime.now(UTC))
        log.info("announcement %d posted by %s for %s", posted.id, author, posted.audience)
        self.reply(201, posted.to_json())


class AnnouncementHandler(ServiceAPI):
    @web.authenticated
    def delete(self, number: str) -> None:
        AnnouncementsAPIHandler._require_admin(self)
        if not self.db.withdraw(int(number)):
            raise web.HTTPError(404, f"there is no announcement {int(number)}")
        self.reply(200, {"message": f"announcement {int(number)} withdrawn"})
