"""A workshop seat's progress, reported by its own session (``POST api/progress``, JSON, the
session's API token): the seat is the token's user, never a field of the body, so a learner
reports for their own seat alone; the fields are checked and bounded
(`factoryhub.workshopprogress`), and a notebook completed must be one of the published notebooks
of the workshop's courses. ``GET api/progress``: the caller's own progress. Anyone who
is not a seat of an active workshop is refused (403): nothing is kept for them."""

from __future__ import annotations

import logging
from functools import lru_cache

from tornado import web

from factoryhub.course import CourseError
from factoryhub.courses.catalogue import published_course
from factoryhub.progressstore import ProgressStore, progress_path
from factoryhub.site import Site
from factoryhub.workshopprogress import ProgressError, SeatProgress, parse_progress
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopstore import records_dir, workshop_of

from .support_page import ServiceAPI

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _store(path: str) -> ProgressStore:
    return ProgressStore(path)


def progress_store(site: Site) -> ProgressStore:
    return _store(str(progress_path(site)))


def seat_of(site: Site, user: str) -> Workshop | None:
    """The active workshop whose seat `user` is, if any."""
    workshop = workshop_of(records_dir(site), user)
    return workshop if workshop is not None and workshop.state == "active" else None


def course_notebooks(site: Site, workshop: Workshop, course: str) -> tuple[str, ...]:
    """The notebook files of `course` as published, when it is one of `workshop`'s courses."""
    if course not in workshop.courses:
        return ()
    try:
        return published_course(site, course).notebooks
    except (CourseError, OSError, ValueError):
        return ()


class ProgressAPIHandler(ServiceAPI):
    def _workshop(self) -> tuple[str, Workshop]:
        user = self.current_user["name"]
        workshop = seat_of(self.site, user)
        if workshop is None:
            raise web.HTTPError(403, "progress is kept for the seats of a running workshop only")
        return user, workshop

    @web.authenticated
    def get(self) -> None:
        seat, workshop = self._workshop()
        mine = progress_store(self.site).progress(workshop.key).get(seat, SeatProgress())
        self.reply(200, {"seat": seat, **mine.__dict__})

    @web.authenticated
    def post(self) -> None:
        self.require_token_or_form("progress")
        seat, workshop = self._workshop()
        try:
            report = parse_progress(
                self.json_body(), lambda course: course_notebooks(self.site, workshop, course)
            )
        except ProgressError as exc:
            self.reply(400, {"message": str(exc)})
            return
        now = progress_store(self.site).add(workshop.key, seat, report)
        self.reply(200, {"seat": seat, **now.__dict__})
