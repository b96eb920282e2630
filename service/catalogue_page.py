"""The course catalogue page, served by the hub's FactoryHub service at
/services/factoryhub/catalogue (`templates/catalogue.html`): every published course with its
description, outcomes, duration, resources and the current estimated start of its preset, and a
"Start course" link to the hub's own spawn form for a named server, prefilled with the preset
(/hub/spawn with ?opt-course=…). The link starts nothing: the learner presses Start on that
form, whose POST carries the hub's XSRF token, so no other site can start a session by linking
here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

from tornado import web

from factoryhub.capacity import Capacity
from factoryhub.course import LEVELS, Course, CourseError, load_course
from factoryhub.courses.catalogue import catalogue_dir, published
from factoryhub.estimate import Estimate, estimate_start
from factoryhub.request import RequestError, UserAccess, access_for, parse_request
from factoryhub.scheduler.livesite import CapacityCache, association_cache
from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.site import Site

from .pages import ServicePage

_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS)}  # beginners' courses first


def server_name(course: str) -> str:
    """The named server a course starts (JupyterHub's names: letters, digits, - and _)."""
    return f"course-{course}"[:40]


def resources_text(course: Course) -> str:
    r = course.resources
    gpus = f" · {r.gpus} GPU{'s' if r.gpus != 1 else ''}" if r.gpus else ""
    return (
        f"{r.partition} partition · {r.cpus} CPU{'s' if r.cpus != 1 else ''}{gpus}"
        f" · {r.memory_gb} GB · {r.walltime}"
    )


@dataclass(frozen=True)
class CourseCard:
    """One course as the catalogue template shows it (the template escapes every value)."""

    course: Course
    estimate: Estimate
    start_url: str

    @property
    def resources(self) -> str:
        return resources_text(self.course)


def published_courses(site: Site) -> list[Course]:
    """The catalogue's courses that load, beginners' first, then by title."""
    ordered = sorted(published(site), key=lambda e: (_LEVEL_ORDER.get(e.level, 9), e.title))
    courses = []
    for entry in ordered:
        try:
            courses.append(load_course(catalogue_dir(site) / entry.name))
        except CourseError:
            continue
    return courses


class CatalogueHandler(ServicePage):
    """The catalogue for the logged-in learner."""

    def initialize(self, client: SlurmClient, cache: CapacityCache) -> None:
        self.client = client
        self.cache = cache

    async def _estimate(
        self, site: Site, course: Course, capacity: Capacity | None, user: str, access: UserAccess
    ) -> Estimate:
        try:
            request = parse_request(course.resources.to_options(course.environment), site, access)
        except RequestError as exc:
            return Estimate("never", f"cannot start here: {exc}")
        return await estimate_start(request, capacity, self.client, user, access.qos_limits)

    @web.authenticated
    async def get(self) -> None:
        user = self.get_current_user()["name"]
        site = self.site
        capacity = await self.cache.get()
        reservations = capacity.reservations if capacity else ()
        associations = await association_cache(self.client).get(
            user, site.limits.accounting_refresh_seconds
        )
        access = access_for(site, user, reservations, associations)
        courses = published_courses(site)
        # each estimate may wait on the scheduler (sbatch --test-only): ask for all at once
        estimates = await asyncio.gather(
            *(self._estimate(site, course, capacity, user, access) for course in courses)
        )
        spawn = f"{self.hub_prefix}spawn/{quote(user)}"
        cards = [
            CourseCard(
                course,
                estimate,
                f"{spawn}/{server_name(course.name)}?opt-course={quote(course.name)}",
            )
            for course, estimate in zip(courses, estimates, strict=True)
        ]
        self.set_header("Cache-Control", "no-store")
        self.finish(self.render_page("catalogue.html", cards=cards))
