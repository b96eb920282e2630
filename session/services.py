"""The hub service's news and data inside the session (the learner's own process):

- ``GET <base_url>factoryhub/announcements``: the announcements for everyone and for this
  session's partition, fetched from the hub service with the session's own token (scope
  ``access:services!service=factoryhub``), for JupyterLab and the widgets;
- at start, ``~/datasets/<name>`` links to the data sets this learner's groups may read, made as
  the learner (an existing file or link of the learner's is never replaced).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httputil import url_concat

from factoryhub.announcements import service_url
from factoryhub.datasets import LINK_FOLDER, DatasetError, datasets_for, my_groups, session_site
from factoryhub.site import Site

SERVICE_TIMEOUT = 10.0


async def fetch_announcements(site: Site, token: str, partition: str) -> tuple[int, dict]:
    """(status, JSON) of the hub service's announcements for this session's partition."""
    url = url_concat(f"{service_url(site)}api/announcements", {"partition": partition})
    try:
        response = await AsyncHTTPClient().fetch(
            url,
            headers={"Authorization": f"token {token}"},
            request_timeout=SERVICE_TIMEOUT,
            follow_redirects=False,
        )
        return 200, json.loads(response.body)
    except (HTTPClientError, OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("factoryhub: announcements not fetched: %s", exc)
        return 502, {"message": "the hub service did not answer", "announcements": []}


class AnnouncementsHandler(APIHandler):
    """The current announcements for this session, as the hub service says them."""

    @web.authenticated
    async def get(self) -> None:
        site: Site | None = self.settings.get("factoryhub_site")
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if site is None or not token:
            self.set_status(503)
            self.finish(json.dumps({"message": "not a FactoryHub session", "announcements": []}))
            return
        partition = os.environ.get("SLURM_JOB_PARTITION", "")
        status, body = await fetch_announcements(site, token, partition)
        self.set_status(status)
        self.finish(json.dumps(body))


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
