"""A workshop seat's progress, counted inside its own session and reported to the hub service
(``POST api/progress`` with the session's own token: the service files it under the token's
user, so a session reports for its own seat only):

- notebooks opened: the server's own contents events (a notebook read through the contents
  API, as JupyterLab does when it opens one);
- cells run: ``execute_request`` messages the browser sends to a kernel over its websocket
  (counted, then passed on unchanged) by `CountingConnection`, which the session's server uses
  as its ``ServerApp.kernel_websocket_connection_class``, set when the extension is linked,
  before the server builds its web application (`link_progress`);
- course notebooks completed: an ``execute_request`` of the last code cell of one of the
  session's course notebooks (JupyterLab names the cell in the request's metadata, ``cellId``;
  the published course's notebook gives the last cell's id), in a kernel of that notebook (the
  server's sessions say which notebook a kernel belongs to);
- exercises passed: reported by the course's exercise checks from the kernel
  (`factoryhub.courses.progress`).

Only a workshop seat's session counts and reports. The session cannot tell by itself: a seat
taken from the site's pool of training accounts has the account's own name (``train001``), not
a ``ws-NAME-01``, and the pool is the support centre's business, not the session's. So every
session asks the hub service once (``GET api/progress``): a seat of a running workshop is
answered, anyone else refused (403), and a refused session stops counting. Reports go every
`REPORT_SECONDS` when something changed; a refused or failed report is kept for the next round,
and dropped after `MAX_PENDING`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.ioloop import IOLoop
from tornado.web import HTTPError

from factoryhub.announcements import service_url
from factoryhub.course import CourseError, load_course
from factoryhub.courses.catalogue import COURSE_ENV, COURSE_SOURCE_ENV, SYNC_ROOT
from factoryhub.datasets import DatasetError, session_site
from factoryhub.workshopprogress import MAX_CELLS_PER_REPORT, MAX_ITEMS

REPORT_SECONDS = 10.0
MAX_OFFSETS = 64  # a kernel message has 6 parts and a few buffers
MAX_METADATA = 64 * 1024  # an execute_request's metadata: a few ids and flags
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # a course notebook read for its last cell's id
MAX_PENDING = 200  # notebooks waiting to be reported (beyond: forgotten, not kept growing)
CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
TALLY_SETTING = "factoryhub_progress"  # the web application's setting that holds the Tally
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
log = logging.getLogger(__name__)


class Tally:
    """What happened since the last report that reached the service; `last_cells` maps the id
    of each course notebook's last code cell to the notebook's path in the home."""

    def __init__(self, last_cells: Mapping[str, str] | None = None) -> None:
        self.notebooks: dict[str, None] = {}
        self.reported: set[str] = set()
        self.cells = 0
        self.last_cells = dict(last_cells or {})
        self.completed: dict[str, None] = {}
        self.completed_reported: set[str] = set()

    def opened(self, path: str) -> None:
        path = path[-255:]
        fresh = path.endswith(".ipynb") and path not in self.reported
        if fresh and path.isprintable() and len(self.notebooks) < MAX_PENDING:
            self.notebooks[path] = None

    def finished(self, path: str) -> None:
        """`path`'s last code cell was run in its own kernel."""
        if path not in self.completed_reported and len(self.completed) < MAX_PENDING:
            self.completed[path] = None

    def take(self) -> dict | None:
        """The next report (bounded as the service takes it), or None when nothing changed."""
        notebooks = list(self.notebooks)[:MAX_ITEMS]
        completed = list(self.completed)[:MAX_ITEMS]
        cells = min(self.cells, MAX_CELLS_PER_REPORT)
        if not notebooks and not cells and not completed:
            return None
        report: dict = {"notebooks_opened": notebooks, "cells_run": cells}
        if completed:
            report["notebooks_completed"] = completed
        return report

    def done(self, report: dict) -> None:
        for path in report["notebooks_opened"]:
            self.notebooks.pop(path, None)
            self.reported.add(path)
        for path in report.get("notebooks_completed", ()):
            self.completed.pop(path, None)
            self.completed_reported.add(path)
        self.cells -= report["cells_run"]


def execute_request_metadata(message: str | bytes, subprotocol: str | None) -> dict | None:
    """The metadata of a browser's websocket message that asks a kernel to run a cell ({} when
    it has none to read); None for any other message (never raises)."""
    try:
        if subprotocol == V1_PROTOCOL:
            # the first 8 bytes say how many offsets follow: bounded before the parser loops
            count = int.from_bytes(message[:8], "little")
            if not 3 <= count <= MAX_OFFSETS or len(message) < 8 * (count + 1):
                return None
            channel, parts = deserialize_msg_from_ws_v1(message)
            header = json.loads(parts[0]) if parts else {}
            raw = parts[2] if len(parts) > 2 and len(parts[2]) <= MAX_METADATA else b"{}"
            metadata = json.loads(raw)
        else:
            msg = json.loads(message)
            channel, header = msg.get("channel"), msg.get("header") or {}
            metadata = msg.get("metadata") or {}
        if channel != "shell" or header.get("msg_type") != "execute_request":
            return None
        return metadata if isinstance(metadata, dict) else {}
    except (ValueError, TypeError, IndexError, AttributeError):
        return None


class CountingConnection(ZMQChannelsWebsocketConnection):
    """The server's kernel websocket connection, counting the cells it passes on for the
    session's `Tally` (the web application's `TALLY_SETTING`; without one it only passes)."""

    def handle_incoming_message(self, incoming_msg: str) -> None:
        tally = self.websocket_handler.settings.get(TALLY_SETTING)
        if isinstance(tally, Tally):
            metadata = execute_request_metadata(incoming_msg, self.subprotocol)
            if metadata is not None:
                tally.cells += 1
                cell = metadata.get("cellId")
                path = tally.last_cells.get(cell) if isinstance(cell, str) else None
                if path is not None:
                    sessions = self.websocket_handler.settings.get("session_manager")
                    IOLoop.current().add_callback(
                        count_if_its_notebook, tally, sessions, self.kernel_id, path
                    )
        super().handle_incoming_message(incoming_msg)


async def count_if_its_notebook(tally: Tally, sessions, kernel_id: str, path: str) -> None:
    """`path` is completed when the kernel that ran its last cell is `path`'s own (the cell of
    a copy of the notebook, or one pasted elsewhere, does not count)."""
    try:
        session = await sessions.get_session(kernel_id=kernel_id)
    except (HTTPError, ValueError, TypeError, AttributeError):
        return  # a console's or an unknown kernel
    if isinstance(session, dict) and session.get("path") == path:
        tally.finished(path)


def last_code_cells(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """{id of the last code cell: ``courses/<course>/<notebook>``} of this session's course as
    published: the last cell with code, since JupyterLab sends no request for an empty one.
    A notebook without cell ids (nbformat before 4.5) cannot be completed."""
    name, source = environ.get(COURSE_ENV, ""), environ.get(COURSE_SOURCE_ENV, "")
    if not name or not source:
        return {}
    try:
        course = load_course(source)
    except (CourseError, OSError, ValueError):
        return {}
    found = {}
    for notebook in course.notebooks:
        cell = _last_code_cell(Path(source) / notebook)
        if cell:
            found[cell] = f"{SYNC_ROOT}/{name}/{notebook}"
    return found


def _last_code_cell(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return ""
        cells = json.loads(path.read_bytes()).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return ""
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    code = [c for c in code if "".join(c.get("source") or "").strip()]
    cell_id = code[-1].get("id") if code else None
    return cell_id if isinstance(cell_id, str) and cell_id.isprintable() else ""


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


async def seat_confirmed(url: str, token: str) -> bool | None:
    """Whether the hub service keeps progress for this session's user (a seat of a running
    workshop): True, False when it refuses (403), None when it did not say."""
    try:
        await AsyncHTTPClient().fetch(
            url,
            headers={"Authorization": f"token {token}"},
            request_timeout=10.0,
            follow_redirects=False,
        )
    except HTTPClientError as exc:
        return False if exc.code == 403 else None
    except OSError:
        return None
    return True


async def report_forever(tally: Tally, url: str, token: str, settings: dict) -> None:
    """Once the service says this session is a seat's, report what changed every
    `REPORT_SECONDS`; when it says it is not, stop counting (`settings` hold the tally)."""
    while (seat := await seat_confirmed(url, token)) is None:
        await asyncio.sleep(REPORT_SECONDS)
    if not seat:
        settings.pop(TALLY_SETTING, None)
        return
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        report = tally.take()
        if report is not None and await send(url, token, report):
            tally.done(report)


def link_progress(serverapp, environ: Mapping[str, str] = os.environ) -> bool:
    """A session of the hub's counts cells until the service says it is no seat's: its
    server's ``kernel_websocket_connection_class`` is `CountingConnection`, set as
    jupyter-server's own setting while the extension is linked, before the server builds its
    web application from it. A class the site configured, or a kernel gateway's, is kept:
    cells are then not counted, and the log says so."""
    if not environ.get("JUPYTERHUB_API_TOKEN"):
        return False
    # the trait's default needs the gateway's settings, made after the extensions are linked
    gateway = serverapp.config.GatewayClient.get("url") or environ.get("JUPYTER_GATEWAY_URL")
    if serverapp.trait_has_value("kernel_websocket_connection_class") or gateway:
        log.warning("factoryhub: cells run are not counted: the server has its own connections")
        return False
    serverapp.kernel_websocket_connection_class = CountingConnection
    return True


def start_progress(serverapp, environ: Mapping[str, str] = os.environ) -> Tally | None:
    """Count this session's progress, and report it once the service says it is a seat's."""
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        return None
    try:
        site = session_site(environ)
    except DatasetError:
        return None
    tally = Tally(last_code_cells(environ))
    settings = serverapp.web_app.settings

    async def on_contents(logger, schema_id: str, data: dict) -> None:  # jupyter_events' names
        if data.get("action") == "get" and isinstance(data.get("path"), str):
            tally.opened(data["path"])

    serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=on_contents)
    settings[TALLY_SETTING] = tally
    # on the loop that runs the server (the one current at load time may not be)
    url = f"{service_url(site)}api/progress"
    IOLoop.current().add_callback(report_forever, tally, url, token, settings)
    return tally
