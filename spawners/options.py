"""The user-options hooks of `SlurmSpawner`: checking a request (form and REST alike) and the
live spawn form. Kept apart from the spawner's job lifecycle; both take the spawner."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from weakref import WeakKeyDictionary

from tornado import web

from factoryhub.courses.catalogue import course_presets, landing_page, published
from factoryhub.estimate import SERVICE_NAME, Estimate, never_reason
from factoryhub.request import (
    FIELDS,
    LIVE_FIELDS,
    RequestError,
    ResourceRequest,
    access_for,
    bounded_options,
    draft_request,
    parse_request,
    without_live_fields,
)
from factoryhub.scheduler.budgets import check_budget
from factoryhub.scheduler.livesite import (
    CAPACITY_MAX_AGE,
    CONTROLLER_MAX_AGE,
    association_cache,
    capacity_cache,
    controller_reading,
)
from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.site import Site

from .form import Refusal, render_options_form
from .notices import form_notices
from .workshop import seat_options, seat_workshop

if TYPE_CHECKING:
    from .spawner import SlurmSpawner

DISK_FULL = (
    "The hub cannot record new sessions right now (its disk is full), so nothing was"
    " submitted. Running sessions and your files are not affected; try again later."
)
UNAVAILABLE = (
    "The scheduler is not answering right now, so nothing was submitted."
    " Running sessions are not affected; try again in a minute."
)

# Named servers' names go into job names: keep them to what any Slurm and shell take.
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{0,40}", re.ASCII)


class RequestRefused(web.HTTPError):
    """A request the hub will not submit. Its sentence is the whole message, for the REST
    API's JSON and for JupyterHub's spawn page alike (not "HTTP 400: … (…)")."""

    def __init__(self, status: int, message: str) -> None:
        reason = "invalid resource request" if status == 400 else None
        super().__init__(status, message.replace("%", "%%"), reason=reason)
        self.jupyterhub_message = message


# A refused request waits here for the form JupyterHub renders right after the refusal (in the
# same HTTP request, for the same user: JupyterHub re-renders the user's default server's form
# even for a named one), so the learner's choices are kept and the sentence sits next to its
# field. Keyed by user name; an entry no form picks up (a REST refusal) is dropped after a
# minute.
_REFUSALS: dict[str, tuple[float, Refusal]] = {}
_REFUSAL_TTL = 60.0


def refuse(user: str, status: int, message: str, options: object, field: str | None):
    """Remember the refusal for the form, and return the error to raise."""
    now = time.monotonic()
    for name in [n for n, (at, _) in _REFUSALS.items() if now - at > _REFUSAL_TTL]:
        del _REFUSALS[name]
    _REFUSALS[user] = (now, Refusal(_shown_values(options), message, field))
    return RequestRefused(status, message)


def take_refusal(user: str) -> Refusal | None:
    """The refusal waiting for `user`'s form, if a recent one is (taken: shown once)."""
    at, refusal = _REFUSALS.pop(user, (0.0, None))
    return refusal if time.monotonic() - at <= _REFUSAL_TTL else None


def warning_seconds(request: ResourceRequest, site: Site) -> int:
    """How long before its end Slurm warns a session: the site's lead, at most half the
    walltime (a 10-minute warning on a 15-minute debug session would come at once)."""
    return min(site.session.warn_minutes * 60, request.walltime_minutes * 30)


@dataclass(frozen=True)
class RequestContext:
    """What checking one request needs from the hub, handed over (not fetched back from the
    spawner): the site, the learner, the server's name and the one Slurm client."""

    site: Site
    user: str
    server_name: str
    client: SlurmClient


async def checked_request(options: object, ctx: RequestContext) -> ResourceRequest:
    """A request parsed once and held against the live scheduler, or `RequestRefused`.

    Every field is read and checked against the site first (`draft_request`), with no
    scheduler call; only then are the learner's accounts and QoS looked up (the accounting
    database, cached a minute) and, once the controller answers, the live reservations and
    whether the request could ever start (a walltime over the partition's real MaxTime would
    otherwise pend forever).
    """
    site, user = ctx.site, ctx.user
    try:
        if not _SERVER_NAME.fullmatch(ctx.server_name or ""):
            raise RequestError("server name: use up to 40 letters, digits, '-' and '_'")
        seat = seat_workshop(site, user) is not None
        bounded = seat_options(site, user, bounded_options(options or {}))  # a workshop seat
        courses = course_presets(site) if bounded.get("course") else {}
        draft = draft_request(bounded, site, courses, workshop_seat=seat)
        refresh = site.limits.accounting_refresh_seconds
        associations = await association_cache(ctx.client).get(user, refresh)
        draft.resolve(access_for(site, user, (), associations), reservations_known=False)
        # milliseconds, not sbatch's ~18 s; one ping for every start within a second
        if not await controller_reading(ctx.client).get(CONTROLLER_MAX_AGE):
            raise refuse(user, 503, UNAVAILABLE, options, None)
        # a workshop's reservation may have just begun: read those fresh
        fresh = 0 if draft.reservation else CAPACITY_MAX_AGE
        capacity = await capacity_cache(ctx.client).get(fresh)
        reservations = capacity.reservations if capacity else ()
        access = access_for(site, user, reservations, associations)
        request = draft.resolve(access)
        if capacity is not None and (reason := never_reason(request, capacity)):
            raise RequestError(f"cannot start: {reason}")
        await check_budget(ctx.client, request, access.accounts, refresh)
    except RequestError as exc:
        raise refuse(user, 400, str(exc), options, exc.field) from None
    _REFUSALS.pop(user, None)  # an earlier refusal is answered
    return request


async def apply_request(spawner: SlurmSpawner, options: dict) -> None:
    """JupyterHub's apply_user_options hook (form and REST alike): the checked request, or
    HTTP 400 with its sentence; only the normalised request is stored, never raw options."""
    ctx = RequestContext(spawner.site, spawner.user.name, spawner.name, spawner.slurm_client)
    try:
        request = await checked_request(options, ctx)
    except RequestRefused:
        spawner.user_options = spawner.orm_spawner.user_options = {}
        raise
    spawner.request = request
    spawner.user_options = spawner.orm_spawner.user_options = request.to_options()
    if request.course:
        spawner.default_url = landing_page(ctx.site, request.course)


class ConfirmBeforeStart(Exception):
    """Raised for a GET of /hub/spawn with query arguments (a link, e.g. the catalogue's "Start
    course"), where JupyterHub would start a server at once: it shows the spawn form instead,
    prefilled from the link, and only the form's POST, which carries the hub's XSRF token,
    starts anything. No message: the form says what the link asks for."""

    jupyterhub_message = None
    jupyterhub_html_message = None


# A link's checked request, from `confirm_query` to the form JupyterHub renders right after.
_PREFILLS: WeakKeyDictionary[SlurmSpawner, ResourceRequest] = WeakKeyDictionary()


def confirm_query(spawner: SlurmSpawner, query: dict[str, list[str]]) -> NoReturn:
    """JupyterHub's options_from_query hook: never start from a link. A page on any site can
    send the learner's browser to a link, so a GET may only show what would start; a request
    the site refuses is shown as the form's error (HTTP 400)."""
    site, user = spawner.site, spawner.user.name
    try:
        options = bounded_options(query)
        courses = course_presets(site) if options.get("course") else {}
        request = parse_request(without_live_fields(options), site, access_for(site, user), courses)
    except RequestError as exc:
        raise refuse(user, 400, str(exc), query, exc.field) from None
    _PREFILLS[spawner] = request
    raise ConfirmBeforeStart("a link's request waits for the learner's confirmation")


def _shown_values(options: object) -> dict[str, str]:
    """A refused request's known fields, one short string each, to show again in the form
    (form fields arrive as one-element lists, REST values as themselves)."""
    if not isinstance(options, dict):
        return {}
    shown = {}
    for key in FIELDS:
        value = options.get(key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str | int) and not isinstance(value, bool):
            shown[key] = str(value)[:64]
    return shown


def _resources(prefill: ResourceRequest | None) -> dict[str, object]:
    """A prefilled request's resources, to estimate with this learner's own access."""
    if prefill is None:
        return {}
    options = prefill.to_options()
    return {k: v for k, v in options.items() if k not in ("course", *LIVE_FIELDS)}


def _course_title(site: Site, name: str) -> str:
    return next((e.title for e in published(site) if e.name == name), name)


async def live_options_form(spawner: SlurmSpawner) -> str:
    """The spawn form with the partitions' free capacity and the default request's estimate."""
    capacity = await spawner.live_capacity()
    reservations = capacity.reservations if capacity else ()
    refresh = spawner.site.limits.accounting_refresh_seconds
    associations = await association_cache(spawner.slurm_client).get(spawner.user.name, refresh)
    access = access_for(spawner.site, spawner.user.name, reservations, associations)
    prefill = _PREFILLS.pop(spawner, None)
    refusal = take_refusal(spawner.user.name)
    estimate = request = None
    try:
        request = parse_request(_resources(prefill), spawner.site, access)
    except RequestError as exc:  # e.g. no Slurm account: say so before anything is filled in
        estimate = Estimate("never", f"cannot start: {exc}")
    else:
        try:  # the budget too, as the live estimate and Start hold it
            await check_budget(spawner.slurm_client, request, access.accounts, refresh)
        except RequestError as exc:
            estimate = Estimate("never", str(exc))
        else:
            if capacity is not None:
                estimate = await spawner.estimate(request, capacity, access.qos_limits)
    root = spawner.hub.base_url.rstrip("/").rsplit("/", 1)[0] if spawner.hub else ""
    url = f"{root}/services/{SERVICE_NAME}/estimate"
    title = _course_title(spawner.site, prefill.course) if prefill and prefill.course else ""
    return render_options_form(
        spawner.site,
        capacity,
        estimate,
        estimate_url=url,
        access=access,
        prefill=prefill,
        course_title=title,
        refusal=refusal,
        notices=await form_notices(spawner, capacity, access, request),
    )
