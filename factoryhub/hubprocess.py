"""The hub and its proxy as two daemons: configurable-http-proxy first, then JupyterHub.

The proxy is started on its own so that restarting the hub never drops a route, under a
supervisor that restarts it if it dies (F15). Both share the proxy's API token, kept in the
hub's state directory (mode 0600).
"""

from __future__ import annotations

import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .daemons import running_pid, spawn_daemon, stop_daemon, wait_for
from .site import Site

VENV = Path("/opt/factoryhub/venv")
NODE_PREFIX = Path("/opt/factoryhub/node")
CHP = NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"


@dataclass(frozen=True)
class HubInstance:
    """One hub + proxy pair: where its files live and how to reach it."""

    site: Site
    site_path: Path
    config_file: Path

    @property
    def state_dir(self) -> Path:
        return Path(self.site.hub.state_dir)

    @property
    def hub_pidfile(self) -> Path:
        return self.state_dir / "jupyterhub.pid"

    @property
    def proxy_pidfile(self) -> Path:
        return self.state_dir / "proxy.pid"

    @property
    def proxy_child_pidfile(self) -> Path:
        """The proxy process itself (its supervisor's pid is in `proxy_pidfile`)."""
        return self.state_dir / "proxy-child.pid"

    @property
    def hub_api(self) -> str:
        return f"http://{self.site.hub.hub_ip}:{self.site.hub.hub_port}/hub/api"

    def proxy_token(self) -> str:
        path = self.state_dir / "proxy-token"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    def proxy_argv(self) -> list[str]:
        public = urlparse(self.site.hub.url)
        hub = f"http://{self.site.hub.hub_ip}:{self.site.hub.hub_port}"
        return [
            str(CHP),
            "--ip",
            public.hostname or "",
            "--port",
            str(public.port or 80),
            "--api-ip",
            "127.0.0.1",
            "--api-port",
            str(self.site.hub.proxy_api_port),
            "--default-target",
            hub,
            "--error-target",
            f"{hub}/hub/error",
            "--log-level",
            "warn",
        ]

    def hub_argv(self) -> list[str]:
        return [str(VENV / "bin" / "jupyterhub"), "-f", str(self.config_file)]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env["CONFIGPROXY_AUTH_TOKEN"] = self.proxy_token()
        env["FACTORYHUB_SITE"] = str(self.site_path)
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own http URL
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except (OSError, urllib.error.URLError):
        return False


def start_proxy(hub: HubInstance) -> int:
    hub.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    supervised = [
        str(VENV / "bin" / "python"),
        "-m",
        "factoryhub.supervise",
        str(hub.proxy_child_pidfile),
        "--",
        *hub.proxy_argv(),
    ]
    pid = spawn_daemon(
        supervised, hub.proxy_pidfile, hub.state_dir / "proxy.log", env=hub.environment()
    )
    api = f"http://127.0.0.1:{hub.site.hub.proxy_api_port}/api/routes"
    wait_for(lambda: _answers(api), 20, "configurable-http-proxy", interval=0.1)
    return pid


def start_hub(hub: HubInstance, timeout: float = 90) -> int:
    """Start JupyterHub (the proxy first) and wait until its API answers."""
    start_proxy(hub)
    pid = spawn_daemon(
        hub.hub_argv(),
        hub.hub_pidfile,
        hub.state_dir / "hub.log",
        env=hub.environment(),
        cwd=hub.state_dir,
    )
    wait_for(lambda: _answers(f"{hub.hub_api}/"), timeout, "JupyterHub", interval=0.2)
    estimate = f"http://127.0.0.1:{hub.site.hub.service_port}/services/factoryhub/estimate"
    wait_for(lambda: _answers(estimate), 30, "the estimate service", interval=0.2)
    return pid


def stop_hub(hub: HubInstance, *, proxy: bool = True) -> None:
    stop_daemon(hub.hub_pidfile, timeout=30)
    if proxy:
        stop_daemon(hub.proxy_pidfile)


def hub_status(hub: HubInstance) -> dict[str, int | None]:
    return {"proxy": running_pid(hub.proxy_pidfile), "jupyterhub": running_pid(hub.hub_pidfile)}
