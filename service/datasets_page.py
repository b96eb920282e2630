"""The shared data sets page of the hub service (``GET datasets``): every data set of
site.toml's [datasets] with its description, licence and size, whether it is open to the
logged-in user (their Unix groups), and how to reach it in a session."""

from __future__ import annotations

from tornado import web

from factoryhub.datasets import LINK_FOLDER, datasets_for, groups_of

from .pages import ServicePage


class DatasetsPageHandler(ServicePage):
    @web.authenticated
    def get(self) -> None:
        user = self.current_user["name"]
        views = datasets_for(self.site, groups_of(user))
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page("datasets.html", active="datasets", datasets=views, folder=LINK_FOLDER)
        )
