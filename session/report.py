"""The session's side of the handshake (`factoryhub.handshake`): once the server listens, its
port is said to a hub waiting on the step, then goes into the job's own Slurm comment, as
the learner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil

from factoryhub.handshake import READY_FD_ENV, format_port_report, wake_line
from factoryhub.scheduler.slurm import SlurmClient, SlurmError


def session_client() -> SlurmClient:
    """Slurm as the learner sees it from inside their job (no user switch)."""
    scontrol = shutil.which("scontrol") or "/usr/bin/scontrol"
    return SlurmClient(os.path.dirname(scontrol), timeout=20, switch_user=False)


def bound_port(serverapp) -> int:
    """The server's port, 0 until it has one: jupyter-server's public `ServerApp.port`, which
    for ``--ServerApp.port=0`` it sets to the port the system chose, once it has made its
    `http_server` (`init_httpserver`, after the extensions load). Binding that port is the
    first thing it queues on the event loop; see `report_port`."""
    try:
        serverapp.http_server  # noqa: B018 (an AttributeError until the server is made)
    except AttributeError:
        return 0
    return int(serverapp.port or 0)


async def report_port(serverapp) -> None:
    """Once the server listens, write its port into this job's comment (as the learner)."""
    for _ in range(1200):  # extensions load before the server has a port: wait for it
        # first of all, yield: jupyter-server queued its bind before the loop ran, and the
        # loop runs callbacks in order, so the port is bound when this resumes
        await asyncio.sleep(0.02)
        if bound_port(serverapp):
            break
    job_id = os.environ.get("SLURM_JOB_ID", "")
    if not job_id.isdigit():
        serverapp.log.warning("factoryhub: not in a Slurm job; port not reported")
        return
    port = bound_port(serverapp)
    if not port:
        serverapp.log.error("factoryhub: the server never bound a port; nothing reported")
        return
    announce_ready(port)  # a hub waiting on the step first: the comment is not on its path
    try:
        await session_client().set_comment(job_id, format_port_report(port))
    except SlurmError as exc:
        serverapp.log.error("factoryhub: reporting the port failed: %s", str(exc)[:300])
        return
    serverapp.log.info("factoryhub: reported port %s to the hub via job %s", port, job_id)


def announce_ready(port: int, environ=os.environ) -> None:
    """Tell a hub that waits on this session's step output which port the server listens on
    (the hub proves it before routing, as it would the comment's), before the comment is
    written: a room's 200 `scontrol update`s then come after each start, not inside it. Done
    once; kernels started later neither inherit the descriptor nor its number."""
    fd = environ.pop(READY_FD_ENV, "")
    if not fd.isdigit():
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), wake_line(port))
        os.close(int(fd))
