"""The Dask dashboard of a session, reachable only through the learner's own Jupyter server.

A TCP port on a shared node is open to every user on it, so the dashboard is moved off TCP onto
a Unix socket in a directory only the learner can enter; jupyter-server-proxy (entry point
``dask-dashboard``, see pyproject.toml) proxies ``<server prefix>dask-dashboard/`` to it behind
Jupyter's own authentication.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from tornado.netutil import bind_unix_socket

PROXY_NAME = "dask-dashboard"


class UnsafeDirectory(RuntimeError):
    """The private socket directory exists but is not the learner's alone."""


def socket_path(environ: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """Where this session's dashboard socket lives (the same for the server and its kernels)."""
    env = os.environ if environ is None else environ
    uid = os.getuid() if uid is None else uid
    session = env.get("SLURM_JOB_ID", "") or "local"
    server = env.get("JUPYTERHUB_SERVER_NAME", "") or "default"
    # /tmp is node-local and short (socket paths are limited to 107 bytes); the directory is
    # checked to be the learner's own, mode 0700, before use (`private_directory`).
    base = Path(f"/tmp/factoryhub-{uid}")  # noqa: S108
    return base / f"dask-{session}-{server}.sock"


def private_directory(path: Path) -> Path:
    """Create `path` mode 0700, or check an existing one is ours, 0700 and no symlink."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeDirectory(f"{path} is not a private directory of yours; remove it")
    return path


def proxy_config() -> dict[str, object]:
    """jupyter-server-proxy's settings for the dashboard: no process to start, only a socket."""
    return {
        "unix_socket": str(socket_path()),
        "timeout": 5,
        "launcher_entry": {"enabled": False},
    }


def dashboard_url(service_prefix: str) -> str:
    """The browser's link to the dashboard's status page."""
    return f"{service_prefix.rstrip('/')}/{PROXY_NAME}/status"


async def serve_on_socket(http_server: object, path: Path) -> Path:
    """Stop the dashboard listening on TCP and serve it on `path` instead (run in the
    scheduler's event loop)."""
    private_directory(path.parent)
    if path.exists():
        path.unlink()
    sock = bind_unix_socket(str(path), mode=0o600)
    http_server.stop()
    http_server.add_socket(sock)
    return path
