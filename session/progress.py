"""A workshop seat's progress, counted inside its own session and reported to the hub service
(``POST api/progress`` with the session's own token: the service files it under the token's
user, so a session reports for its own seat only):

- notebooks opened: the server's own contents events (a notebook read through the contents
  API, as JupyterLab does when it opens one);
- cells run: ``execute_request`` messages the browser sends to a kernel over its websocket
  (counted, then passed on unchanged);
- exercises passed: reported by the course's exercise checks from the kernel
  (`factoryhub.courses.progress`).

Only a workshop seat's session counts and reports (its user's name says it is a seat); every
other session does nothing here. Reports go every `REPORT_SECONDS` when something changed;
a refused or failed report is kept for the next round, and dropped after `MAX_PENDING`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping

from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.ioloop import IOLoop

from factoryhub.announcements import service_url
from factoryhub.datasets import DatasetError, session_site
from factoryhub.workshop import workshop_of_seat
from factoryhub.workshopprogress import MAX_CELLS_PER_REPORT, MAX_ITEMS

REPORT_SECONDS = 10.0
MAX_OFFSETS = 64  # a kernel message has 6 parts and a few buffers
MAX_PENDING = 200  # notebooks waiting to be reported (beyond: forgotten, not kept growing)
CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
log = logging.getLogger(__name__)


class Tally:
    """What happened since the last report that reached the service."""

    def __init__(self) -> None:
        self.notebooks: dict[str, None] = {}
        self.reported: set[str] = set()
        self.cells = 0

    def opened(self, path: str) -> None:
        path = path[-255:]
        fresh = path.endswith(".ipynb") and path not in self.reported
        if fresh and path.isprintable() and len(self.notebooks) < MAX_PENDING:
            self.notebooks[path] = None

    def take(self) -> dict | None:
        """The next report (bounded as the service takes it), or None when nothing changed."""
        notebooks = list(self.notebooks)[:MAX_ITEMS]
        cells = min(self.cells, MAX_CELLS_PER_REPORT)
        if not notebooks and not cells:
            return None
        return {"notebooks_opened": notebooks, "cells_run": cells}

    def done(self, report: dict) -> None:
        for path in report["notebooks_opened"]:
            self.notebooks.pop(path, None)
            self.reported.add(path)
        self.cells -= report["cells_run"]


def _is_execute_request(message: str | bytes, subprotocol: str | None) -> bool:
    """Whether a browser's websocket message asks a kernel to run a cell (never raises)."""
    try:
        if subprotocol == "v1.kernel.websocket.jupyter.org":
            # the first 8 bytes say how many offsets follow: bounded before the parser loops
            count = int.from_bytes(message[:8], "little")
            if not 3 <= count <= MAX_OFFSETS or len(message) < 8 * (count + 1):
                return False
            channel, parts = deserialize_msg_from_ws_v1(message)
            header = json.loads(parts[0]) if parts else {}
        else:
            msg = json.loads(message)
            channel, header = msg.get("channel"), msg.get("header") or {}
        return channel == "shell" and header.get("msg_type") == "execute_request"
    except (ValueError, TypeError, IndexError, AttributeError):
        return False


def counting_connection(tally: Tally) -> type:
    """The server's kernel websocket connection, counting the cells it passes on."""

    class CountingConnection(ZMQChannelsWebsocketConnection):
        def handle_incoming_message(self, incoming_msg: str) -> None:
            if _is_execute_request(incoming_msg, self.subprotocol):
                tally.cells += 1
            super().handle_incoming_message(incoming_msg)

    return CountingConnection


async def send(url: str, token: str, report: dict) -> bool:
    try:
        await AsyncHTTPClient().fetch(
            url,
            method="POST",
            body=json.dumps(report),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            request_timeout=10.0,
            follow_redirects=False,
        )
    except HTTPClientError as exc:
        log.warning("factoryhub: progress not reported (HTTP %s)", exc.code)
        return exc.code == 400  # refused as malformed: sending it again would not help
    except OSError as exc:
        log.warning("factoryhub: progress not reported: %s", exc)
        return False
    return True


async def report_forever(tally: Tally, url: str, token: str) -> None:
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        report = tally.take()
        if report is not None and await send(url, token, report):
            tally.done(report)


def start_progress(serverapp, environ: Mapping[str, str] = os.environ) -> Tally | None:
    """Count and report this session's progress when it is a workshop seat's."""
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if workshop_of_seat(environ.get("JUPYTERHUB_USER", "")) is None or not token:
        return None
    try:
        site = session_site(environ)
    except DatasetError:
        return None
    tally = Tally()
    settings = serverapp.web_app.settings
    if settings.get("kernel_websocket_connection_class") in (None, ZMQChannelsWebsocketConnection):
        settings["kernel_websocket_connection_class"] = counting_connection(tally)

    async def on_contents(logger, schema_id: str, data: dict) -> None:  # jupyter_events' names
        if data.get("action") == "get" and isinstance(data.get("path"), str):
            tally.opened(data["path"])

    serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=on_contents)
    settings["factoryhub_progress"] = tally
    # on the loop that runs the server (the one current at load time may not be)
    IOLoop.current().add_callback(report_forever, tally, f"{service_url(site)}api/progress", token)
    return tally
