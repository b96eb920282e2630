"""A workshop seat's session counts cells through jupyter-server's own setting and tells when a
course notebook is completed (issue 15): the connection class is set while the extension is
linked, before the server builds its web application; a notebook is completed when its last code
cell runs in its own kernel; the service takes a completed notebook only from the workshop's
courses, keeps it per seat and the report shows it."""

from __future__ import annotations

import json
import types

import nbformat
import pytest
from conftest import REPO
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web

from factoryhub.progressstore import ProgressStore
from factoryhub.session.progress import (
    CountingConnection,
    Tally,
    count_if_its_notebook,
    execute_request_metadata,
    last_code_cells,
    link_progress,
    start_progress,
)
from factoryhub.site import SITE_ENV, public_site_data
from factoryhub.workshopprogress import (
    ProgressError,
    ProgressReport,
    course_notebook,
    parse_progress,
)

SEAT = {"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_USER": "ws-dl101-01"}
NOTEBOOK = "courses/first-steps/01-first-steps.ipynb"
REPO_COURSE = REPO / "notebooks" / "first-steps"


def test_a_seats_server_is_built_with_the_counting_connection():
    """Fails on the code before: the class was swapped into the built web application's
    settings at load time, past jupyter-server's own setting (the ServerApp trait)."""
    app = ServerApp()
    assert link_progress(app, SEAT)
    assert app.kernel_websocket_connection_class is CountingConnection
    assert issubclass(CountingConnection, ZMQChannelsWebsocketConnection)


def test_a_server_outside_the_hub_and_a_sites_own_connection_class_are_left_alone():
    app = ServerApp()
    assert not link_progress(app, {**SEAT, "JUPYTERHUB_API_TOKEN": ""})
    assert not app.trait_has_value("kernel_websocket_connection_class")  # the default, later

    class SitesOwn(ZMQChannelsWebsocketConnection):
        pass

    app.kernel_websocket_connection_class = SitesOwn
    assert not link_progress(app, SEAT)
    assert app.kernel_websocket_connection_class is SitesOwn
    assert not link_progress(ServerApp(), {**SEAT, "JUPYTER_GATEWAY_URL": "http://gw"})


def test_a_pool_seats_session_counts_too(demo_site):
    """Fails on the code before: a seat from the site's pool of training accounts has the
    account's own name, and its session counted and reported nothing (judged by the name)."""
    app = ServerApp()
    app.init_event_logger()
    app.web_app = types.SimpleNamespace(settings={})
    pool_seat = {**SEAT, "JUPYTERHUB_USER": "train001"}
    tally = start_progress(app, {**pool_seat, SITE_ENV: json.dumps(public_site_data(demo_site))})
    assert isinstance(tally, Tally) and app.web_app.settings["factoryhub_progress"] is tally
    assert "kernel_websocket_connection_class" not in app.web_app.settings  # the trait's job
    assert link_progress(ServerApp(), pool_seat)


class FakeService(web.RequestHandler):
    """The hub service's api/progress: a seat (200) or not (403); reports kept."""

    def initialize(self, seat: bool, reports: list) -> None:
        self.seat, self.reports = seat, reports

    def get(self) -> None:
        self.set_status(200 if self.seat else 403)

    def post(self) -> None:
        self.reports.append(json.loads(self.request.body))


@pytest.mark.parametrize("seat", [True, False])
async def test_a_session_reports_once_the_service_says_it_is_a_seats(monkeypatch, seat):
    import asyncio

    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    from factoryhub.session import progress

    monkeypatch.setattr(progress, "REPORT_SECONDS", 0.01)
    reports: list = []
    sock, port = bind_unused_port()
    http = HTTPServer(web.Application([("/p", FakeService, {"seat": seat, "reports": reports})]))
    http.add_sockets([sock])
    tally = Tally()
    tally.cells = 2
    settings = {"factoryhub_progress": tally}
    task = asyncio.ensure_future(
        progress.report_forever(tally, f"http://127.0.0.1:{port}/p", "t", settings)
    )
    for _ in range(200):
        await asyncio.sleep(0.01)
        if reports or task.done():
            break
    task.cancel()
    http.stop()
    if seat:
        assert reports == [{"notebooks_opened": [], "cells_run": 2}]
        assert settings["factoryhub_progress"] is tally
    else:
        assert reports == [] and "factoryhub_progress" not in settings  # counting stopped


def jupyterlab_message(msg_type: str, metadata: dict) -> bytes:
    """An execute request framed as JupyterLab 4 sends it (v1 protocol: 8-byte offsets)."""
    parts = [json.dumps(part).encode() for part in ({"msg_type": msg_type}, {}, metadata, {})]
    return serialize_msg_to_ws_v1(parts, "shell")


def test_the_cell_a_browser_runs_is_named_by_its_metadata():
    v1 = "v1.kernel.websocket.jupyter.org"
    sent = jupyterlab_message("execute_request", {"cellId": "e54546ed", "recordTiming": False})
    assert execute_request_metadata(sent, v1)["cellId"] == "e54546ed"
    assert execute_request_metadata(jupyterlab_message("comm_msg", {}), v1) is None
    huge = jupyterlab_message("execute_request", {"cellId": "x" * 70_000})
    assert execute_request_metadata(huge, v1) == {}  # counted, its metadata not read
    listed = jupyterlab_message("execute_request", [1])  # type: ignore[arg-type]
    assert execute_request_metadata(listed, v1) == {}
    legacy = {"channel": "shell", "header": {"msg_type": "execute_request"}, "metadata": "x"}
    assert execute_request_metadata(json.dumps(legacy), None) == {}


def course(tmp_path, cells: list, minor: int = 5):
    folder = tmp_path / "first-steps"
    folder.mkdir()
    (folder / "course.toml").write_text(
        (REPO_COURSE / "course.toml").read_text().replace('"01-first-steps.ipynb"', '"a.ipynb"')
    )
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.nbformat_minor = minor
    (folder / "a.ipynb").write_text(json.dumps(nb))
    return {"FACTORYHUB_COURSE": "first-steps", "FACTORYHUB_COURSE_SOURCE": str(folder)}


def test_the_last_code_cell_with_code_ends_a_course_notebook(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("x = 1", id="first"),
        nbformat.v4.new_code_cell("print(x)", id="last"),
        nbformat.v4.new_code_cell("   \n", id="blank"),  # JupyterLab never runs an empty cell
        nbformat.v4.new_markdown_cell("The end", id="prose"),
    ]
    assert last_code_cells(course(tmp_path, cells)) == {"last": "courses/first-steps/a.ipynb"}
    assert last_code_cells({}) == {}  # a session started for no course


def test_a_notebook_without_cell_ids_cannot_be_completed(tmp_path):
    cell = {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}
    env = course(tmp_path, [], minor=4)
    path = tmp_path / "first-steps" / "a.ipynb"
    path.write_text(json.dumps({**json.loads(path.read_text()), "cells": [cell]}))
    assert last_code_cells(env) == {}


class Sessions:
    """The server's sessions manager: which notebook each kernel belongs to."""

    def __init__(self, kernels: dict[str, str]) -> None:
        self.kernels = kernels

    async def get_session(self, **kwargs: str) -> dict:
        if kwargs["kernel_id"] not in self.kernels:
            raise web.HTTPError(404, "Session not found")
        return {"path": self.kernels[kwargs["kernel_id"]], "kernel": {"id": kwargs["kernel_id"]}}


async def test_a_notebook_is_completed_when_its_last_cell_runs_in_its_own_kernel():
    tally = Tally({"last": NOTEBOOK})
    sessions = Sessions({"k1": NOTEBOOK, "k2": "courses/first-steps/copy.ipynb"})
    await count_if_its_notebook(tally, sessions, "k2", NOTEBOOK)  # the cell, in a copy
    await count_if_its_notebook(tally, sessions, "k3", NOTEBOOK)  # a console's kernel
    assert tally.take() is None
    await count_if_its_notebook(tally, sessions, "k1", NOTEBOOK)
    report = tally.take()
    assert report == {"notebooks_opened": [], "cells_run": 0, "notebooks_completed": [NOTEBOOK]}
    tally.done(report)
    await count_if_its_notebook(tally, sessions, "k1", NOTEBOOK)  # run again: reported already
    assert tally.take() is None


def of_the_workshop(course: str) -> tuple[str, ...]:
    return ("01-first-steps.ipynb",) if course == "first-steps" else ()


def test_the_service_takes_a_completed_notebook_of_the_workshops_courses_only():
    report = parse_progress({"notebooks_completed": [NOTEBOOK, NOTEBOOK]}, of_the_workshop)
    assert report == ProgressReport(notebooks_completed=(NOTEBOOK,))
    assert course_notebook(NOTEBOOK) == ("first-steps", "01-first-steps.ipynb")
    assert course_notebook("courses/first-steps/../x/a.ipynb") is None


@pytest.mark.parametrize(
    "path",
    [
        "courses/first-steps/02-other.ipynb",  # not a notebook of the course
        "courses/dask-slurm/01-first-steps.ipynb",  # not a course of the workshop
        "courses/first-steps/../../etc/01-first-steps.ipynb",
        "first-steps/01-first-steps.ipynb",
        "courses/first-steps/01-first-steps.ipynb\n",
        7,
    ],
)
def test_a_completed_notebook_from_elsewhere_is_refused(path):
    with pytest.raises(ProgressError, match=r"notebooks_completed: .* is not a notebook of this"):
        parse_progress({"notebooks_completed": [path]}, of_the_workshop)


def test_without_the_courses_notebooks_nothing_is_completed():
    with pytest.raises(ProgressError, match="notebooks_completed"):
        parse_progress({"notebooks_completed": [NOTEBOOK]})


def test_completed_notebooks_are_kept_per_seat_distinct_and_apart_from_opened(tmp_path):
    store = ProgressStore(tmp_path / "p.sqlite")
    store.add("w@1", "ws-w-01", ProgressReport((NOTEBOOK,), 3, ()))
    twice = ProgressReport(notebooks_completed=(NOTEBOOK,))
    store.add("w@1", "ws-w-01", twice)
    after = store.add("w@1", "ws-w-01", twice)
    assert (after.notebooks_opened, after.notebooks_completed, after.cells_run) == (1, 1, 3)
    assert "ws-w-02" not in store.progress("w@1")
