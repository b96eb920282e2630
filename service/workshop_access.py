"""Who may see and act on a workshop's seats in the hub service: the workshop's trainers (its
record's `trainers`) and the site's admins; everyone else is refused before anything is read."""

from __future__ import annotations

from tornado import web

from factoryhub.site import Site
from factoryhub.workshop import NAME
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopstore import load_workshop, records_dir


def trainers_workshop(site: Site, user: dict, name: str) -> Workshop:
    """Workshop `name`, for its trainers and the site's admins only (404, 403 otherwise)."""
    workshop = load_workshop(records_dir(site), name) if NAME.fullmatch(name) else None
    if workshop is None:
        raise web.HTTPError(404, "no such workshop")
    who = user["name"]
    if who not in workshop.trainers and who not in site.hub.admin_users:
        raise web.HTTPError(403, "not a trainer of this workshop")
    return workshop


def trainers_seat(site: Site, user: dict, name: str, seat: str) -> Workshop:
    """As `trainers_workshop`, and `seat` must be one of that workshop's seats."""
    workshop = trainers_workshop(site, user, name)
    if seat not in workshop.seats:
        raise web.HTTPError(404, f"{seat[:40]} is not a seat of workshop {workshop.name}")
    return workshop
