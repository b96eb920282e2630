"""The hub service's news and help inside the session (the learner's own process), for
JupyterLab's FactoryHub plugin and the widgets. Each call goes to the hub service with the
session's own token (scope ``access:services!service=factoryhub``), so the service answers as
this learner and about this learner only:

- ``GET <base_url>factoryhub/announcements``: the announcements for everyone, this session's
  partition (and whatever else the service shows this learner);
- ``GET <base_url>factoryhub/culling``: when the idle culler would stop this session, and
  ``POST <base_url>factoryhub/culling/keep``: "Keep my session" (`service.culling_api`);
- ``GET <base_url>factoryhub/budget``: the learner's budgets, with the one line the plugin's
  indicator shows (`indicator_text`);
- ``GET <base_url>factoryhub/support/context?notebook=…``: what a support request from
  JupyterLab attaches (the widget's `gather_context`), and ``POST <base_url>factoryhub/support``
  ``{"text", "context"}``: the request the learner saw, sent as it is (the service checks it);
- at start, ``~/datasets/<name>`` links to the data sets this learner's groups may read, made as
  the learner (an existing file or link of the learner's is never replaced).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httputil import url_concat

from factoryhub.announcements import service_url
from factoryhub.budget import CPU, GPU, budget_from_json, hours
from factoryhub.datasets import LINK_FOLDER, DatasetError, datasets_for, my_groups, session_site
from factoryhub.site import Site

SERVICE_TIMEOUT = 20.0  # a support request waits for the mail to the support centre
MAX_BODY = 64 * 1024
log = logging.getLogger(__name__)


async def call_service(
    site: Site,
    token: str,
    method: str,
    path: str,
    query: Mapping[str, str] | None = None,
    body: object = None,
) -> tuple[int, dict]:
    """(status, JSON) of the hub service's ``method path``, as this session's learner; the
    service's own status and message when it refuses, 502 when it does not answer."""
    url = url_concat(f"{service_url(site)}{path}", dict(query or {}))
    try:
        response = await AsyncHTTPClient().fetch(
            url,
            method=method,
            body=None if body is None else json.dumps(body),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            request_timeout=SERVICE_TIMEOUT,
            follow_redirects=False,
        )
        return response.code, json.loads(response.body)
    except HTTPClientError as exc:
        if exc.response is not None and exc.code < 500:
            try:
                return exc.code, {"message": str(json.loads(exc.response.body)["message"])}
            except (ValueError, KeyError, TypeError):
                pass
        log.warning("factoryhub: the hub service refused %s %s: %s", method, path, exc)
    except (OSError, ValueError) as exc:
        log.warning("factoryhub: the hub service did not answer %s %s: %s", method, path, exc)
    return 502, {"message": "the hub service did not answer"}


async def fetch_announcements(site: Site, token: str, partition: str) -> tuple[int, dict]:
    """(status, JSON) of the hub service's announcements for this session's partition."""
    status, body = await call_service(
        site, token, "GET", "api/announcements", {"partition": partition}
    )
    return status, body if status == 200 else {**body, "announcements": []}


class ServiceCall(APIHandler):
    """A call of the session's JupyterLab relayed to the hub service with the session's token
    (authenticated like every Jupyter API: only this server's learner reaches it)."""

    async def relay(
        self, method: str, path: str, query: Mapping[str, str] | None = None, body: object = None
    ) -> dict | None:
        site: Site | None = self.settings.get("factoryhub_site")
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if site is None or not token:
            self.answer(503, {"message": "not a FactoryHub session"})
            return None
        status, answer = await call_service(site, token, method, path, query, body)
        if status >= 400:
            self.answer(status, answer)
            return None
        return answer

    def answer(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def json_body(self) -> dict:
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"at most {MAX_BODY // 1024} KB")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "send a JSON object")
        return body


class AnnouncementsHandler(ServiceCall):
    """The current announcements for this session, as the hub service says them."""

    @web.authenticated
    async def get(self) -> None:
        partition = os.environ.get("SLURM_JOB_PARTITION", "")
        found = await self.relay("GET", "api/announcements", {"partition": partition})
        if found is not None:
            self.answer(200, found)


def server_name(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("JUPYTERHUB_SERVER_NAME", "")


class CullingHandler(ServiceCall):
    """When the idle culler would stop this session if it stays idle."""

    @web.authenticated
    async def get(self) -> None:
        found = await self.relay("GET", "api/culling/session", {"server": server_name()})
        if found is not None:
            self.answer(200, found)


class KeepHandler(ServiceCall):
    """ "Keep my session": this server (never another) kept for one more idle period."""

    @web.authenticated
    async def post(self) -> None:
        kept = await self.relay("POST", "api/culling/keep", body={"server": server_name()})
        if kept is not None:
            self.answer(200, kept)


def indicator_text(data: Mapping, account: str) -> tuple[str, str]:
    """The budget indicator's words for the session's `account` (else the learner's first
    budgeted account): ("12.5 GPU-hours left on ai-research", every sentence of it); ("", "")
    when the service knows no budget of theirs."""
    accounts = [a for a in data.get("accounts", []) if isinstance(a, Mapping)]
    if not data.get("known") or not accounts:
        return "", ""
    chosen = next((a for a in accounts if a.get("account") == account), accounts[0])
    budget = budget_from_json(chosen)
    for tres, what in ((GPU, "GPU"), (CPU, "CPU")):
        left = budget.left(tres)
        if left is not None:
            short = f"{hours(left)} {what}-hours left on {budget.account}"
            return short, " ".join(str(line) for line in chosen.get("lines", []))
    return "", ""


async def job_account(environ: Mapping[str, str] = os.environ) -> str:
    """The Slurm account this session's job charges: from its environment, else from Slurm
    (a session started as an immediate allocation's step has no SLURM_JOB_ACCOUNT); "" if
    neither says."""
    if account := environ.get("SLURM_JOB_ACCOUNT", ""):
        return account
    job = environ.get("SLURM_JOB_ID", "")
    if not job.isdigit():
        return ""
    from factoryhub.scheduler.slurm import SlurmError

    from .report import session_client

    client = session_client()
    try:
        done = await client.run(
            [os.path.join(client.bin_dir, "squeue"), "-h", "-j", job, "-o", "%a"]
        )
    except SlurmError as exc:
        log.warning("factoryhub: the session's account is not known: %s", exc)
        return ""
    return done.stdout.strip()[:64]


class BudgetHandler(ServiceCall):
    """The learner's budgets, and the indicator's line for this session's account."""

    @web.authenticated
    async def get(self) -> None:
        found = await self.relay("GET", "api/budget")
        if found is None:
            return
        # a job's account never changes: asked until known, then kept
        account = self.settings.get("factoryhub_account") or await job_account()
        self.settings["factoryhub_account"] = account
        short, full = indicator_text(found, account)
        self.answer(200, {**found, "indicator": short, "details": full})


class SupportContextHandler(ServiceCall):
    """What a support request from JupyterLab attaches, gathered as the widget gathers it,
    with the notebook open in JupyterLab; the learner sees it before anything is sent."""

    @web.authenticated
    async def get(self) -> None:
        from factoryhub.support import SupportError, context_text, one_line
        from factoryhub.widgets.context import session_context
        from factoryhub.widgets.support import gather_context

        try:
            context = gather_context(session_context(), os.environ)
        except (SupportError, ValueError) as exc:
            self.answer(503, {"message": f"the session's context is not known: {exc}"})
            return
        notebook = one_line(self.get_argument("notebook", ""), 200)
        account = context.account or self.settings.get("factoryhub_account") or await job_account()
        self.settings["factoryhub_account"] = account
        context = replace(context, notebook=notebook, account=account)
        self.answer(200, {"context": context.to_json(), "attached": context_text(context)})


class SupportHandler(ServiceCall):
    """The request the learner saw, to the support centre (the hub service checks it)."""

    @web.authenticated
    async def post(self) -> None:
        sent = await self.relay("POST", "api/support", body=self.json_body())
        if sent is not None:
            self.answer(201, sent)


def service_routes(base_url: str) -> list[tuple[str, type]]:
    """This module's handlers under the server's base URL."""
    from jupyter_server.utils import url_path_join

    routes = [
        ("announcements", AnnouncementsHandler),
        ("culling", CullingHandler),
        ("culling/keep", KeepHandler),
        ("budget", BudgetHandler),
        ("support/context", SupportContextHandler),
        ("support", SupportHandler),
    ]
    return [(url_path_join(base_url, "factoryhub", path), cls) for path, cls in routes]


def link_datasets(site: Site, home: Path, groups: tuple[str, ...], log) -> list[str]:
    """``~/datasets/<name>`` → the data set's folder for each set `groups` may read; returns
    the names linked now. Runs as the learner: it can only do what they could."""
    allowed = [view for view in datasets_for(site, groups) if view.allowed]
    if not allowed:
        return []
    folder = home / LINK_FOLDER
    try:
        folder.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        log.warning("factoryhub: ~/%s not made: %s", LINK_FOLDER, exc)
        return []
    made = []
    for view in allowed:
        link = folder / view.name
        if link.is_symlink() or link.exists():
            continue  # the learner's own file, or the link of an earlier session
        try:
            link.symlink_to(view.dataset.path, target_is_directory=True)
        except OSError as exc:
            log.warning("factoryhub: ~/%s/%s not linked: %s", LINK_FOLDER, view.name, exc)
            continue
        made.append(view.name)
    return made


def start_services(serverapp, environ: Mapping[str, str] = os.environ) -> None:
    """Keep the session's site for the handlers and link the learner's data sets."""
    try:
        site = session_site(environ)
    except DatasetError as exc:
        serverapp.log.warning("factoryhub: %s", exc)
        return
    serverapp.web_app.settings["factoryhub_site"] = site
    if site.datasets:
        made = link_datasets(site, Path.home(), my_groups(), serverapp.log)
        if made:
            serverapp.log.info("factoryhub: data sets linked in ~/datasets: %s", ", ".join(made))
