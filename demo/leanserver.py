"""A lean single-user server, for the benchmarks only (P7 in docs/performance.md): what a hub
needs of a session to accept it, and nothing else, so that 200 of them fit on the 2-core,
24-GiB benchmark machine where 200 JupyterLabs (~90 MB each) do not.

It is a standard-library asyncio HTTP server that

- listens on the port given as ``--ServerApp.port=N`` (0 or none: one the system picks) on
  ``--ServerApp.ip`` (default 0.0.0.0, one IPv4 socket: with every interface asyncio binds an
  IPv6 socket too, on a port of its own), and accepts and ignores every other argument
  (the spawner appends JupyterHub's and FactoryHub's ``--ServerApp.*`` arguments);
- when started with FactoryHub's session extension named
  (``--ServerApp.jpserver_extensions=factoryhub.session=True``, as the spawner does), does what
  that extension does to be accepted (`factoryhub.handshake`): wakes the hub through
  ``FACTORYHUB_READY_FD`` with its port, then writes ``fhport:<port>`` into its own job's
  comment with `scontrol` (as the learner). Without it (the floor of the benchmarks) it
  reports nothing, as a bare jupyterhub-singleuser would not;
- answers ``<prefix>factoryhub/proof?challenge=…`` with the HMAC proof under the session's API
  token (`handshake.session_proof`), and every other GET under ``JUPYTERHUB_SERVICE_PREFIX``
  with 200 and jupyter-server's version JSON, which is what the hub and the proxy check.

It serves no files, runs no kernels and checks no login: it is never a learner's server. Run as
``python -I -m factoryhub.demo.leanserver`` (``-I``: nothing from the learner's home is imported).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from factoryhub.handshake import (
    PROOF_PATH,
    READY_FD_ENV,
    format_port_report,
    session_proof,
    wake_line,
)

SESSION_EXTENSION_ARG = "--ServerApp.jpserver_extensions=factoryhub.session=True"
VERSION = {"version": "2.21.1"}  # jupyter-server's own answer at <prefix>api
MAX_HEAD = 16384  # a request's line and headers; anything longer is refused


@dataclass(frozen=True)
class LeanSettings:
    """What the command line and the environment say (pure to read)."""

    ip: str = "0.0.0.0"  # noqa: S104 - the hub connects to the node's address
    port: int = 0
    prefix: str = "/"
    token: str = ""
    report: bool = False  # FactoryHub's session extension named: report the port


def read_settings(argv: list[str], environ: dict[str, str]) -> LeanSettings:
    """The settings from `argv` (unknown arguments ignored) and the server's environment."""
    values = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    port = values.get("ServerApp.port", "0")
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return LeanSettings(
        ip=values.get("ServerApp.ip", "").strip("\"'") or LeanSettings.ip,
        port=int(port) if port.isdigit() else 0,
        prefix=prefix if prefix.endswith("/") else prefix + "/",
        token=environ.get("JUPYTERHUB_API_TOKEN", ""),
        report=SESSION_EXTENSION_ARG in argv,
    )


def answer(target: str, settings: LeanSettings) -> tuple[int, str, bytes]:
    """(status, content type, body) for a GET of `target` (pure)."""
    parts = urlsplit(target)
    if not parts.path.startswith(settings.prefix):
        return 404, "application/json", b'{"message": "not found"}'
    if parts.path[len(settings.prefix) :] == PROOF_PATH:
        challenge = parse_qs(parts.query).get("challenge", [""])[0][:64]
        return 200, "text/plain", session_proof(settings.token, challenge).encode()
    return 200, "application/json", json.dumps(VERSION).encode()


async def _serve_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: LeanSettings
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        status, kind, body = (
            answer(words[1], settings) if len(words) == 3 else (400, "text/plain", b"bad request")
        )
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def report_port(port: int) -> None:
    """As FactoryHub's session does (`factoryhub.session.report`): the wake-up on the
    descriptor the hub gave the step, then the port into this job's comment, as the learner."""
    job_id = os.environ.get("SLURM_JOB_ID", "")
    if not job_id.isdigit():
        print("leanserver: not in a Slurm job; port not reported", file=sys.stderr)
        return
    fd = os.environ.pop(READY_FD_ENV, "")
    if fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), wake_line(port))
            os.close(int(fd))
    scontrol = shutil.which("scontrol") or "/usr/bin/scontrol"
    argv = [scontrol, "update", f"JobId={job_id}", f"Comment={format_port_report(port)}"]
    done = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    if await done.wait() != 0:
        print(f"leanserver: reporting port {port} failed", file=sys.stderr)


async def listen(settings: LeanSettings) -> tuple[asyncio.Server, int]:
    """The server, serving already, and its one port."""
    server = await asyncio.start_server(
        lambda r, w: _serve_one(r, w, settings),
        host=settings.ip,
        port=settings.port,
        limit=MAX_HEAD,
        backlog=64,
    )
    return server, server.sockets[0].getsockname()[1]


async def serve(settings: LeanSettings) -> None:
    server, port = await listen(settings)
    print(f"leanserver: listening on port {port}, prefix {settings.prefix}", flush=True)
    if settings.report:
        await report_port(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # Slurm's walltime warning: nothing to save
    asyncio.run(serve(read_settings(sys.argv[1:], dict(os.environ))))


if __name__ == "__main__":
    main()
