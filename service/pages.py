"""What every page of the hub service shares: the site (read again only when site.toml
changes), the packaged templates under the site's own (`[hub] template_dirs`), the title and
navigation of the hub's own pages, and error pages in the same frame instead of tornado's bare
"403: Forbidden"."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from http import HTTPStatus

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from factoryhub.estimate import SERVICE_NAME
from factoryhub.identity import is_trainer_in
from factoryhub.site import Site, SiteError, load_site
from factoryhub.templating import template_environment

SITE_FILE = "factoryhub_site_file"  # the application setting holding the shared `SiteFile`
PREFIX = "factoryhub_prefix"  # and the one holding this service's URL prefix
PACKAGE = "factoryhub.service"
log = logging.getLogger(__name__)

# What a learner reads on an error page: what happened and what to do, never a traceback.
_ERRORS = {
    403: "This page is not open to your account. If you think it should be, ask your"
    " site's support team.",
    404: "There is no such page here.",
    429: "Too many requests.",
}


class SiteFile:
    """site.toml, parsed once and again only when the file's modification time changes (a
    `stat` per request, not a parse): an admin's edit shows without a restart."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime: int | None = None
        self._site: Site | None = None

    def get(self) -> Site:
        mtime = os.stat(self.path).st_mtime_ns
        if self._site is None or mtime != self._mtime:
            try:
                self._site = load_site(self.path)
            except SiteError:
                if self._site is None:
                    raise
                # a half-saved or mistyped edit: keep serving the last good site, and the
                # next request tries again; the hub itself refuses the file on its restart
                log.warning("%s cannot be used; keeping the last good one", self.path)
                return self._site
            self._mtime = mtime
        return self._site


def is_trainer(site: Site, user: str, groups: Iterable[str] = ()) -> bool:
    """Trainers and admins of site.toml's [hub] see the teaching pages, and those whom single
    sign-on put in the hub's trainers' group (their user model's `groups`; factoryhub.identity)."""
    return user in site.hub.trainers or user in site.hub.admin_users or is_trainer_in(groups)


def hub_prefix_of(service_prefix: str) -> str:
    """The hub's pages' prefix (base URL + "hub/") from this service's own prefix."""
    return service_prefix.split("/services/", 1)[0] + "/hub/"


class PageRenderer:
    """Renders the service's templates; a mixin for its handlers (rate-limit and error pages
    included, which may come before any site is known: then the packaged templates alone)."""

    @property
    def site(self) -> Site | None:
        site_file = self.settings.get(SITE_FILE)
        return site_file.get() if site_file else None

    def _user_name(self) -> str:
        try:
            user = self.current_user
        except web.HTTPError:  # the hub refused this user (the page says so)
            return ""
        return (user or {}).get("name", "")

    def _user_groups(self) -> list[str]:
        try:
            user = self.current_user
        except web.HTTPError:
            return []
        return (user or {}).get("groups") or []

    @property
    def service_prefix(self) -> str:
        return self.settings.get(PREFIX, f"/services/{SERVICE_NAME}/")

    @property
    def hub_prefix(self) -> str:
        return hub_prefix_of(self.service_prefix)

    def render_page(self, name: str, **namespace: object) -> str:
        """`name` rendered with the site's title, the hub's and this service's prefixes, the
        user's name and whether they are a trainer (for the navigation)."""
        site = self.site
        env = template_environment(PACKAGE, site.hub.template_dirs if site else ())
        user = self._user_name()
        return env.get_template(name).render(
            site_title=site.hub.title if site else "FactoryHub",
            hub_prefix=self.hub_prefix,
            service_prefix=self.service_prefix,
            user=user,
            trainer=bool(site and user and is_trainer(site, user, self._user_groups())),
            **namespace,
        )

    def write_error(self, status_code: int, **kwargs: object) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail = _ERRORS.get(status_code, "Something went wrong on our side; try again later.")
        # a request's own fault (4xx) is said as the handler worded it; a 5xx's never is
        said = isinstance(exc, web.HTTPError) and exc.log_message and 400 <= status_code < 500
        if said and status_code not in _ERRORS:
            detail = exc.log_message
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        try:
            page = self.render_page(
                "message.html",
                heading=f"{status_code}: {HTTPStatus(status_code).phrase}",
                message=detail,
            )
        except Exception:  # an error page must not fail: fall back to tornado's own
            super().write_error(status_code, **kwargs)
            return
        self.finish(page)


class ServicePage(PageRenderer, HubOAuthenticated, web.RequestHandler):
    """A page of the service for the logged-in hub user."""
