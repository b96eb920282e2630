"""The trainers' cohort page of a workshop, /services/factoryhub/workshops/<name>: one row per
seat (the learner's name, their session's state in words, node, time left), refreshed every few
seconds from /services/factoryhub/api/workshops/<name> without reloading. Only the workshop's
trainers and the site's admins see it; anyone else gets the 403 page."""

from __future__ import annotations

from tornado import web

from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.workshop import NAME
from factoryhub.workshopcohort import cohort_rows
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopstore import SeatClaims, claims_path, load_workshop, records_dir

from .pages import ServicePage


class _WorkshopPage(ServicePage):
    def initialize(self, client: SlurmClient, **_: object) -> None:
        self.client = client

    def _workshop(self, name: str) -> Workshop:
        """The workshop, for its trainers and the site's admins only."""
        site = self.site
        user = self.get_current_user()["name"]
        workshop = load_workshop(records_dir(site), name) if NAME.fullmatch(name) else None
        if workshop is None:
            raise web.HTTPError(404, "no such workshop")
        if user not in workshop.trainers and user not in site.hub.admin_users:
            raise web.HTTPError(403, "not a trainer of this workshop")
        return workshop

    async def rows(self, workshop: Workshop) -> tuple[list[dict], str]:
        names = {
            seat: claim.display_name
            for seat, claim in SeatClaims(claims_path(self.site)).claims(workshop).items()
        }
        try:
            jobs = list((await self.client.job_table()).jobs.values())
            problem = ""
        except SlurmError:
            jobs, problem = [], "The scheduler is not answering; states are not known now."
        return [row.to_json() for row in cohort_rows(workshop, names, jobs)], problem


class WorkshopPageHandler(_WorkshopPage):
    @web.authenticated
    async def get(self, name: str) -> None:
        workshop = self._workshop(name)
        rows, problem = await self.rows(workshop)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page("workshop.html", workshop=workshop, rows=rows, problem=problem)
        )


class WorkshopSeatsHandler(_WorkshopPage):
    @web.authenticated
    async def get(self, name: str) -> None:
        workshop = self._workshop(name)
        rows, problem = await self.rows(workshop)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {"workshop": workshop.name, "state": workshop.state, "seats": rows, "problem": problem}
        )


def workshop_routes(prefix: str, args: dict) -> list[tuple]:
    """The cohort page and its JSON, for the service's application."""
    return [
        (rf"{prefix}workshops/([a-z0-9]{{1,16}})", WorkshopPageHandler, args),
        (rf"{prefix}api/workshops/([a-z0-9]{{1,16}})", WorkshopSeatsHandler, args),
    ]
