"""The trainers' cohort page of a workshop, /services/factoryhub/workshops/<name>: one row per
seat (the learner's name, their session's state in words, node, time left, progress through the
course, energy so far), refreshed every few seconds from /services/factoryhub/api/workshops/
<name> without reloading, with the trainers' actions (`workshop_actions`). Only the workshop's
trainers and the site's admins see it; anyone else gets the 403 page."""

from __future__ import annotations

import time

from tornado import web

from factoryhub.energy import EnergyFigure
from factoryhub.scheduler.admin import SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.site import Site
from factoryhub.workshopcohort import cohort_rows
from factoryhub.workshopprogress import seat_energy
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopreport import SACCT_FORMAT, parse_sacct
from factoryhub.workshopstore import SeatClaims, claims_path

from .pages import ServicePage
from .progress_api import progress_store
from .support_page import form_token
from .workshop_access import trainers_workshop
from .workshop_actions import action_routes

ENERGY_SECONDS = 10.0  # sacct at most this often per workshop, however many trainers look
_energy: dict[str, tuple[float, dict[str, EnergyFigure]]] = {}


async def energy_so_far(client: SlurmClient, workshop: Workshop, site: Site) -> dict:
    """Each seat's energy so far from Slurm's accounting (a few seconds old at most)."""
    now = time.monotonic()
    cached = _energy.get(workshop.key)
    if cached and now - cached[0] < ENERGY_SECONDS:
        return cached[1]
    try:
        admin = SlurmAdmin(client)
        rows = await admin.accounted_jobs(workshop.account, workshop.start, SACCT_FORMAT)
    except SlurmError:
        return cached[1] if cached else {}
    figures = seat_energy(
        [job for job in parse_sacct(rows) if job.user in workshop.seats], site.energy
    )
    _energy[workshop.key] = (now, figures)
    return figures


class _WorkshopPage(ServicePage):
    def initialize(self, client: SlurmClient, **_: object) -> None:
        self.client = client

    def _workshop(self, name: str) -> Workshop:
        return trainers_workshop(self.site, self.get_current_user(), name)

    async def rows(self, workshop: Workshop) -> tuple[list[dict], str]:
        site = self.site
        names = {
            seat: claim.display_name
            for seat, claim in SeatClaims(claims_path(site)).claims(workshop).items()
        }
        try:
            jobs = list((await self.client.job_table()).jobs.values())
            problem = ""
        except SlurmError:
            jobs, problem = [], "The scheduler is not answering; states are not known now."
        progress = progress_store(site).progress(workshop.key)
        energy = await energy_so_far(self.client, workshop, site)
        rows = cohort_rows(workshop, names, jobs, progress, energy)
        return [row.to_json() for row in rows], problem


class WorkshopPageHandler(_WorkshopPage):
    @web.authenticated
    async def get(self, name: str) -> None:
        workshop = self._workshop(name)
        rows, problem = await self.rows(workshop)
        user = self.get_current_user()["name"]
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page(
                "workshop.html",
                workshop=workshop,
                rows=rows,
                problem=problem,
                token=form_token(self.settings["cookie_secret"], user, "workshop"),
            )
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
        *action_routes(prefix),
    ]
