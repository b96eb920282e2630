"""The jupyter-server extension every session loads (`factoryhub.session`).

- reports the server's port to the hub through the job's Slurm comment (`report`);
- knows when the job's walltime ends and warns `warn_seconds` before it, by its own clock and by
  Slurm's warning signal (`--signal=B:USR1@…`) for batch jobs, which it takes instead of dying
  from it: the job script ignores SIGUSR1 until this handler is in place;
- answers ``GET <base_url>factoryhub/session`` with the job id, its end and the seconds left,
  for the learner's own pages and widgets (authenticated like every Jupyter API);
- proves to the hub, before it routes to this server, that the server is this session's
  (``GET <base_url>factoryhub/proof?challenge=…``, see `factoryhub.handshake`);
- in a session started from the catalogue, syncs the course into the learner's home;
- relays JupyterLab's plugin to the hub service (announcements, the idle culler's outlook and
  "Keep my session", the budget, support requests) and links the learner's data sets into
  ~/datasets (`services`);
- in a session holding GPUs, counts a busy GPU (``nvidia-smi``) as activity (`gpu_activity`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import datetime
from pathlib import Path

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from factoryhub.course import COURSE_NAME
from factoryhub.courses.catalogue import COURSE_ENV, COURSE_SOURCE_ENV, SYNC_ROOT
from factoryhub.courses.sync import sync_course
from factoryhub.handshake import PROOF_PATH, session_proof
from factoryhub.scheduler.slurm import SlurmError
from factoryhub.site import WARN_ENV

from .gpu_activity import start_gpu_activity
from .progress import start_progress
from .report import report_port, session_client
from .services import service_routes, start_services


class SessionClock:
    """The session's end as Slurm reports it, and whether the walltime warning came."""

    def __init__(self) -> None:
        self.job_id = os.environ.get("SLURM_JOB_ID", "")
        lead = os.environ.get(WARN_ENV, "")
        self.warn_seconds = int(lead) if lead.isdigit() else None  # the spawner's --signal lead
        self.end: datetime | None = None
        self.warned_at: datetime | None = None
        self.signalled = False  # Slurm's warning signal came (the clock may have come first)

    async def read_end(self) -> None:
        if not self.job_id.isdigit():
            return
        try:
            self.end = datetime.fromisoformat(await session_client().job_end(self.job_id))
        except (SlurmError, ValueError):
            self.end = None

    def to_json(self, now: datetime) -> dict[str, object]:
        left = max(0, int((self.end - now).total_seconds())) if self.end else None
        return {
            "job_id": self.job_id,
            "end": self.end.isoformat() if self.end else None,
            "seconds_left": left,
            "warned": self.warned_at is not None,
            "warn_seconds": self.warn_seconds,
            "slurm_signal": self.signalled,
        }


class SessionHandler(APIHandler):
    """This session's job and time left."""

    @web.authenticated
    def get(self) -> None:
        clock: SessionClock = self.settings["factoryhub_clock"]
        self.finish(json.dumps(clock.to_json(datetime.now())))


class ProofHandler(JupyterHandler):
    """The HMAC of the hub's challenge under this session's API token: reveals nothing but
    that this server holds the token (the hub asks before it routes to the server)."""

    @allow_unauthenticated
    def get(self) -> None:
        token = self.settings["factoryhub_proof_key"]
        answer = session_proof(token, self.get_argument("challenge", "")[:64])
        self.set_header("Content-Type", "text/plain")
        self.set_header("Cache-Control", "no-store")
        self.finish(answer)


def _on_slurm_signal(serverapp, clock: SessionClock) -> None:
    clock.signalled = True
    _on_walltime_warning(serverapp, clock)


def _on_walltime_warning(serverapp, clock: SessionClock) -> None:
    if clock.warned_at is not None:
        return
    clock.warned_at = datetime.now()
    end = clock.end.strftime("%H:%M") if clock.end else "soon"
    serverapp.log.warning(
        "factoryhub: walltime warning: this session ends at %s; save your work", end
    )


async def _warn_before_end(serverapp, clock: SessionClock) -> None:
    """The session's own clock warns `warn_seconds` before the end, whichever comes first with
    Slurm's signal: a session started as an immediate allocation gets no batch-shell signal
    (Slurm would signal every process of the step, kernels included)."""
    await clock.read_end()
    if clock.end is None or clock.warn_seconds is None:
        return
    delay = (clock.end - datetime.now()).total_seconds() - clock.warn_seconds
    asyncio.get_running_loop().call_later(max(0.0, delay), _on_walltime_warning, serverapp, clock)


async def _take_walltime_warning(serverapp, clock: SessionClock) -> None:
    # Registered on the loop that actually runs the server (the one current at extension load
    # time may not be); this replaces the job script's "ignore SIGUSR1".
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, _on_slurm_signal, serverapp, clock
    )


def sync_course_into_home(serverapp, environ=os.environ) -> list:
    """A session started for a course brings the course into ~/courses/<name>/, merge-safe
    (see `factoryhub.courses.sync`), before the learner's first page loads."""
    name, source = environ.get(COURSE_ENV), environ.get(COURSE_SOURCE_ENV)
    if not name or not source or not COURSE_NAME.fullmatch(name):
        return []
    destination = Path.home() / SYNC_ROOT / name
    try:
        actions = sync_course(Path(source), destination)
    except OSError as exc:
        serverapp.log.error("factoryhub: course %s not synced: %s", name, exc)
        return []
    done = [f"{a.kind} {a.target or a.path}" for a in actions if a.kind != "keep"]
    serverapp.log.info("factoryhub: course %s synced: %s", name, ", ".join(done) or "up to date")
    return actions


def load_jupyter_server_extension(serverapp) -> None:
    from tornado.ioloop import IOLoop

    clock = SessionClock()
    serverapp.web_app.settings["factoryhub_clock"] = clock
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.settings["factoryhub_proof_key"] = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, "factoryhub", "session"), SessionHandler),
            (url_path_join(base_url, PROOF_PATH), ProofHandler),
            *service_routes(base_url),
        ],
    )
    start_services(serverapp)  # announcements from the hub service, ~/datasets links
    start_progress(serverapp)  # a workshop seat's progress, reported to the hub service
    start_gpu_activity(serverapp)  # a busy GPU counts as activity (after start_services)
    IOLoop.current().add_callback(_take_walltime_warning, serverapp, clock)
    IOLoop.current().add_callback(report_port, serverapp)
    IOLoop.current().add_callback(_warn_before_end, serverapp, clock)
    sync_course_into_home(serverapp)
