"""The course catalogue page, served by the hub's FactoryHub service at
/services/factoryhub/catalogue: every published course with its description, outcomes,
duration, resources and the current estimated start of its preset, and a "Start course" link
to the hub's own spawn form for a named server, prefilled with the preset (/hub/spawn with
?opt-course=…). The link starts nothing: the learner presses Start on that form, whose POST
carries the hub's XSRF token, so no other site can start a session by linking here."""

from __future__ import annotations

import html
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from factoryhub.courses.catalogue import catalogue_dir, published
from factoryhub.courses.model import LEVELS, Course, CourseError, load_course
from factoryhub.estimate import Estimate, estimate_start
from factoryhub.livesite import CapacityCache, association_cache
from factoryhub.request import RequestError, access_for, parse_request
from factoryhub.site import Site, load_site
from factoryhub.slurm import SlurmClient

_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS)}  # beginners' courses first
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2733; background: #f5f7fa; }
header { background: #1d2733; color: white; padding: 14px 32px; }
header a { color: #cfe3ff; margin-right: 1.5em; }
main { max-width: 980px; margin: 24px auto; padding: 0 16px; }
.course { background: white; border: 1px solid #d8dee6; border-radius: 8px; padding: 16px 24px;
          margin-bottom: 18px; }
.course h2 { margin: 0 0 4px; } .meta { color: #556; font-size: 92%; }
.estimate { font-weight: 600; } .never { color: #b00020; }
a.start { display: inline-block; background: #1565c0; color: white; padding: 8px 18px;
          border-radius: 6px; text-decoration: none; font-weight: 600; }
"""


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


def course_card(course: Course, estimate: Estimate, start_url: str) -> str:
    """One course as HTML (every value escaped)."""
    e = html.escape
    outcomes = "".join(f"<li>{e(o)}</li>" for o in course.outcomes)
    needs = ", ".join(course.prerequisites) or "none"
    kind = "never" if estimate.kind == "never" else ""
    return (
        f'<section class="course" id="course-{e(course.name)}"><h2>{e(course.title)}</h2>'
        f'<p>{e(course.summary)}</p><p class="meta">For {e(course.audience)} · {e(course.level)}'
        f" · about {e(course.duration)} · prerequisites: {e(needs)}</p>"
        f"<p><b>You will be able to</b></p><ul>{outcomes}</ul>"
        f'<p class="meta">Resources: {e(resources_text(course))}</p>'
        f'<p class="estimate {kind}">Start: {e(estimate.message)}</p>'
        f'<a class="start" href="{e(start_url)}">Start course</a></section>'
    )


def catalogue_html(cards: list[str], hub_prefix: str) -> str:
    body = "".join(cards) or "<p>No course is published yet.</p>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Courses</title>"
        f"<style>{STYLE}</style></head><body><header><a href='{html.escape(hub_prefix)}home'>"
        "Home</a><b>Courses</b></header><main><h1>Courses</h1>"
        "<p>Each course starts its own JupyterLab with the resources it needs; your edits"
        " are kept when you start it again.</p>"
        f"{body}</main></body></html>"
    )


class CatalogueHandler(HubOAuthenticated, web.RequestHandler):
    """The catalogue for the logged-in learner."""

    def initialize(
        self, site_path: str, client: SlurmClient, cache: CapacityCache, hub_prefix: str
    ) -> None:
        self.site: Site = load_site(site_path)
        self.client = client
        self.cache = cache
        self.hub_prefix = hub_prefix

    async def _estimate(self, course: Course, capacity, user: str) -> Estimate:
        reservations = capacity.reservations if capacity else ()
        associations = await association_cache(self.client).get(user)
        access = access_for(self.site, user, reservations, associations)
        try:
            request = parse_request(
                course.resources.to_options(course.environment), self.site, access
            )
        except RequestError as exc:
            return Estimate("never", f"cannot start here: {exc}")
        return await estimate_start(request, capacity, self.client, user, access.qos_limits)

    @web.authenticated
    async def get(self) -> None:
        user = self.get_current_user()["name"]
        capacity = await self.cache.get()
        cards = []
        ordered = sorted(
            published(self.site), key=lambda e: (_LEVEL_ORDER.get(e.level, 9), e.title)
        )
        for entry in ordered:
            try:
                course = load_course(catalogue_dir(self.site) / entry.name)
            except CourseError:
                continue
            estimate = await self._estimate(course, capacity, user)
            server = server_name(course.name)
            url = f"{self.hub_prefix}spawn/{quote(user)}/{server}?opt-course={quote(course.name)}"
            cards.append(course_card(course, estimate, url))
        self.set_header("Cache-Control", "no-store")
        self.finish(catalogue_html(cards, self.hub_prefix))
