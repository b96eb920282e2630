"""The start-estimate endpoint: a JupyterHub-managed service at /services/factoryhub/estimate
(and the course catalogue page beside it, see `catalogue_page`).

`GET estimate?partition=gpu&gpus=2&…` (the spawn form's fields) answers, for the logged-in
learner (OAuth cookie or API token),
``{"kind": "now"|"later"|"never"|"unknown", "message": "...", "start": iso|null}``, or
HTTP 400 with ``{"message": ...}`` for a request the site would refuse (no scheduler call).
Both routes are rate-limited per user (site.toml's [limits]): past the limit, HTTP 429 with
Retry-After and a message, before any scheduler call.
The spawn form calls it as the learner edits; the same request model and estimate as the
spawner, never a second implementation. site.toml is parsed again only when it changes
(`SiteFile`), not on every request.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
from http import HTTPStatus
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from factoryhub.estimate import SERVICE_NAME, estimate_start
from factoryhub.request import (
    FIELDS,
    RequestError,
    access_for,
    bounded_options,
    parse_request,
    without_live_fields,
)
from factoryhub.scheduler.budgets import check_budget
from factoryhub.scheduler.livesite import CapacityCache, association_cache, capacity_cache
from factoryhub.scheduler.slurm import SlurmClient, log_slurm_version

from .announcements_api import AnnouncementHandler, AnnouncementsAPIHandler
from .budget_api import BudgetAPIHandler
from .catalogue_page import CatalogueHandler
from .culling_api import CullingExemptionsHandler, CullingKeepHandler, CullingSessionHandler
from .datasets_page import DatasetsPageHandler
from .notebook_view import notebook_routes
from .pages import PREFIX, SITE_FILE, PageRenderer, SiteFile
from .progress_api import ProgressAPIHandler
from .rate_limit import RateLimiter, retry_after
from .sharing_page import SharingPageHandler
from .support_page import AnswerHandler, SupportAPIHandler, SupportPageHandler
from .teaching_page import TeachingHandler
from .workshop_orders_page import WorkshopOrdersHandler
from .workshop_page import workshop_routes

LIMITER = "factoryhub_rate_limiter"  # the application setting holding the shared limiter


class RateLimited(PageRenderer):
    """Mixin for the service's handlers: every request of a logged-in user spends one of
    that user's requests (one `RateLimiter` for the whole service); past the limit the reply
    is 429 with Retry-After, as JSON or as a page (`limit_reply`), and the handler never runs.
    Anonymous requests pass through to `web.authenticated`."""

    limit_reply = "json"

    def prepare(self):
        super().prepare()  # tornado's is a no-op hook; kept for the handlers' own
        user = self.get_current_user()
        if not user:
            return
        wait = self.settings[LIMITER].take(user["name"])
        if wait:
            self._too_many(retry_after(wait))

    def _too_many(self, seconds: int) -> None:
        message = f"Too many requests: please wait {seconds} s and try again."
        self.set_status(429)
        self.set_header("Retry-After", str(seconds))
        self.set_header("Cache-Control", "no-store")
        if self.limit_reply == "json":
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": message, "retry_after": seconds}))
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.render_page("message.html", heading="Too many requests", message=message))


class LimitedCatalogueHandler(RateLimited, CatalogueHandler):
    """The catalogue page, rate-limited like estimates (each page estimates every course)."""

    limit_reply = "html"


class LimitedTeachingHandler(RateLimited, TeachingHandler):
    """The trainers' page, rate-limited like every page of the service."""

    limit_reply = "html"


class EstimateHandler(RateLimited, HubOAuthenticated, web.RequestHandler):
    """Estimates for the learner who asks; nothing is submitted."""

    def initialize(self, client: SlurmClient, cache: CapacityCache) -> None:
        self.client = client
        self.cache = cache

    def _reply(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self._reply(status_code, {"message": HTTPStatus(status_code).phrase})

    @web.authenticated
    async def get(self) -> None:
        if self.request.headers.get("Sec-Fetch-Site") == "cross-site":
            self._reply(403, {"message": "estimates are only given to the hub's own pages"})
            return
        user = self.get_current_user()["name"]
        site = self.site
        options = {key: self.get_argument(key) for key in FIELDS if key in self.request.arguments}
        try:
            bounded_options(options)  # refuse oversized or unknown input before any query
            without_live_fields(options)
            capacity = await self.cache.get()
            reservations = capacity.reservations if capacity else ()
            refresh = site.limits.accounting_refresh_seconds
            associations = await association_cache(self.client).get(user, refresh)
            access = access_for(site, user, reservations, associations)
            request = parse_request(options, site, access)
            await check_budget(self.client, request, access.accounts, refresh)
        except RequestError as exc:
            self._reply(400, {"message": str(exc), "field": exc.field})
            return
        estimate = await estimate_start(request, capacity, self.client, user, access.qos_limits)
        self._reply(200, estimate.to_json())


def _limited_routes(prefix: str) -> list[tuple]:
    """Support, announcements and data sets (issue 16), each rate-limited per user."""
    routes = [
        ("support", SupportPageHandler, "html"),
        (r"support/(\d{1,9})", AnswerHandler, "html"),
        ("datasets", DatasetsPageHandler, "html"),
        ("api/support", SupportAPIHandler, "json"),
        ("api/budget", BudgetAPIHandler, "json"),
        ("api/culling/exemptions", CullingExemptionsHandler, "json"),
        ("api/culling/session", CullingSessionHandler, "json"),  # a session's own outlook
        ("api/culling/keep", CullingKeepHandler, "json"),  # "Keep my session"
        ("api/announcements", AnnouncementsAPIHandler, "json"),
        (r"api/announcements/(\d{1,9})", AnnouncementHandler, "json"),
        ("sharing", SharingPageHandler, "html"),  # issue 15: who may use my session
        ("api/progress", ProgressAPIHandler, "json"),  # a workshop seat's progress
        ("workshops", WorkshopOrdersHandler, "html"),  # create and end workshops (admins)
        *((path, cls, "html") for path, cls in notebook_routes("")),  # a seat's notebooks
    ]
    return [
        (
            rf"{prefix}{path}",
            type(f"Limited{cls.__name__}", (RateLimited, cls), {"limit_reply": reply}),
        )
        for path, cls, reply in routes
    ]


def make_app(site_path: str) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    site_file = SiteFile(site_path)
    site = site_file.get()
    client = SlurmClient(bin_dir=site.slurm.bin_dir, timeout=site.slurm.command_timeout)
    args = {"client": client, "cache": capacity_cache(client)}
    limiter = RateLimiter(site.limits.service_burst, site.limits.service_per_minute)
    return web.Application(
        [
            (rf"{prefix}estimate", EstimateHandler, args),
            (rf"{prefix}catalogue", LimitedCatalogueHandler, args),
            (rf"{prefix}teaching", LimitedTeachingHandler),
            *_limited_routes(prefix),
            *workshop_routes(prefix, args),
            (rf"{prefix}?", web.RedirectHandler, {"url": f"{prefix}catalogue"}),
            (rf"{prefix}oauth_callback", HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        **{LIMITER: limiter, SITE_FILE: site_file, PREFIX: prefix},
        # Every route is a read-only GET about the caller's own requests (estimates, the
        # catalogue). The browser's same-origin policy keeps other sites from reading them, and
        # the estimate handler refuses cross-site requests outright, so the spawn page's
        # fetch() needs no service XSRF token (it could not read one: that cookie is scoped to
        # this service's path). "Start course" is the hub's own /hub/spawn link. What changes
        # something (a ticket, an answer, an announcement) needs an API token or the form token
        # of this service's own page instead (support_page.require_token_or_form).
        disable_check_xsrf=True,
        # any other path under the service: a 404 page in the site's frame
        default_handler_class=NotFound,
    )


class NotFound(PageRenderer, web.RequestHandler):
    """Any other path of the service."""

    def prepare(self) -> None:
        raise web.HTTPError(404)


def _exit_with_the_hub() -> None:
    """Die with the hub that started us: a hub killed with -9 must not leave this process
    holding the port (the next hub's service could not bind, and would fail OAuth)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the hub died before prctl took effect
        raise SystemExit("the hub is gone")


async def main() -> None:
    _exit_with_the_hub()
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(os.environ["FACTORYHUB_SITE"])
    app.listen(url.port, url.hostname)
    # Started with the hub, its standard error in the hub's log: a Slurm release FactoryHub
    # was not tested with is said there at start, in a sentence (factoryhub.slurmversion).
    site = app.settings[SITE_FILE].get()
    client = SlurmClient(bin_dir=site.slurm.bin_dir, timeout=site.slurm.command_timeout)
    version_logged = asyncio.ensure_future(log_slurm_version(client))
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)  # the hub stops us with SIGTERM: exit quietly
    await stopped.wait()
    version_logged.cancel()


if __name__ == "__main__":
    asyncio.run(main())
