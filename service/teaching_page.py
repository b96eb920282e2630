"""The trainers' page of the hub service, /services/factoryhub/teaching: what the catalogue
holds now and how to change it. Trainers and admins of site.toml's [hub] see it (the hub's
navigation links it for them); anyone else gets a 403 page in the site's frame that says so.
The home of the coming trainer dashboard."""

from __future__ import annotations

from tornado import web

from factoryhub.courses.catalogue import published

from .pages import ServicePage, is_trainer


class TeachingHandler(ServicePage):
    """The catalogue as trainers manage it."""

    @web.authenticated
    async def get(self) -> None:
        model = self.get_current_user()
        site = self.site
        if not is_trainer(site, model["name"], model.get("groups", ())):
            raise web.HTTPError(403, "not a trainer")
        self.set_header("Cache-Control", "no-store")
        self.finish(self.render_page("teaching.html", entries=published(site)))
