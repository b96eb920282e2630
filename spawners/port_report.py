"""How a session tells the hub its port: the job's own Slurm comment, ``fhport:<port>``.

The channel carries one integer and nothing else. The job writes it with `scontrol update` (a
learner may only change their own job); the hub reads it in the same `squeue` it polls with and
accepts only an exact match in the unprivileged port range. The host never comes from the job:
the hub takes the node from Slurm and its address from the node's NodeAddr.

A port says nothing of who listens on it: a learner could report any port of the node, another
service's among them. So before the hub routes to it, the server proves it is this session's:
the hub sends a fresh random challenge to ``<base_url>factoryhub/proof`` and expects its HMAC
under the session's API token, which only the hub and this session's own processes hold.

`report_port` runs inside the session (see `factoryhub.spawners.session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil

PREFIX = "fhport:"
READY_FD_ENV = "FACTORYHUB_READY_FD"  # a descriptor to the hub: "the port is reported, look"
_REPORT = re.compile(r"fhport:(\d{4,5})", re.ASCII)
LOWEST_PORT = 1024
HIGHEST_PORT = 65535


def format_port_report(port: int) -> str:
    """The comment a session sets once it listens."""
    if not LOWEST_PORT <= port <= HIGHEST_PORT:
        raise ValueError(f"port {port} is outside {LOWEST_PORT}-{HIGHEST_PORT}")
    return f"{PREFIX}{port}"


def parse_port_report(comment: str) -> int | None:
    """The port in a job comment, or None for anything that is not exactly a port report."""
    match = _REPORT.fullmatch(comment)
    if not match:
        return None
    port = int(match.group(1))
    return port if LOWEST_PORT <= port <= HIGHEST_PORT else None


PROOF_PATH = "factoryhub/proof"
_CHALLENGE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def new_challenge() -> str:
    return secrets.token_hex(32)


def session_proof(token: str, challenge: str) -> str:
    """The answer to `challenge` of a server holding `token` ("" for a malformed challenge)."""
    if not token or not _CHALLENGE.fullmatch(challenge):
        return ""
    return hmac.new(token.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def proves_identity(token: str, challenge: str, answer: str) -> bool:
    expected = session_proof(token, challenge)
    return bool(expected) and hmac.compare_digest(expected, answer.strip()[:64])


async def ask_for_proof(base: str, token: str, timeout: float = 5.0) -> bool:
    """Whether the server at `base` (``http://host:port/user/…/``) holds `token` (the hub's
    side of the handshake): any failure to answer correctly is a no."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    challenge = new_challenge()
    url = f"{base.rstrip('/')}/{PROOF_PATH}?challenge={challenge}"
    try:
        response = await AsyncHTTPClient().fetch(
            url, request_timeout=timeout, follow_redirects=False
        )
    except (HTTPClientError, OSError, TimeoutError):
        return False
    return proves_identity(token, challenge, response.body[:128].decode(errors="replace"))


def bound_port(serverapp) -> int:
    """The port the server listens on, 0 until its socket is bound."""
    server = getattr(serverapp, "_http_server", None)
    sockets = getattr(server, "_sockets", {}) if server is not None else {}
    ports = [sock.getsockname()[1] for sock in sockets.values()]
    return ports[0] if ports else 0


async def report_port(serverapp) -> None:
    """Once the server listens, write its port into this job's comment (as the learner)."""
    for _ in range(1200):  # extensions load before the server binds: wait for the socket
        if bound_port(serverapp):
            break
        await asyncio.sleep(0.02)
    job_id = os.environ.get("SLURM_JOB_ID", "")
    scontrol = shutil.which("scontrol")
    if not job_id.isdigit() or scontrol is None:
        serverapp.log.warning("factoryhub: not in a Slurm job; port not reported")
        return
    port = bound_port(serverapp)
    if not port:
        serverapp.log.error("factoryhub: the server never bound a port; nothing reported")
        return
    proc = await asyncio.create_subprocess_exec(
        scontrol,
        "update",
        f"jobid={job_id}",
        f"comment={format_port_report(port)}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        serverapp.log.error("factoryhub: reporting the port failed: %s", out.decode()[:300])
    else:
        serverapp.log.info("factoryhub: reported port %s to the hub via job %s", port, job_id)
        announce_ready()


def announce_ready(environ=os.environ) -> None:
    """Tell a hub that waits on this session's step output that the port is in Slurm now
    (a wake-up only: the hub still reads the port from Slurm). Done once; kernels started
    later neither inherit the descriptor nor its number."""
    fd = environ.pop(READY_FD_ENV, "")
    if not fd.isdigit():
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"port reported\n")
        os.close(int(fd))
