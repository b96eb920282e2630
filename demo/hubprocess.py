"""The hub and its proxy as two daemons: configurable-http-proxy first, then JupyterHub.

The proxy is started on its own so that restarting the hub never drops a route, under a
supervisor that restarts it if it dies (F15). Both share the proxy's API token, kept in the
hub's state directory (mode 0600).

Neither runs as root. JupyterHub (and the service it starts) runs as the system account
`factoryhub`, which owns the state directory, reads /etc/shadow through the `shadow` group for
PAM, and acts as a learner only through `fh-act-as` (`factoryhub.actas`). The proxy and its
supervisor run as `factoryhub-proxy`, which owns nothing but its own folder of pid files.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from factoryhub.security import NODE_PREFIX
from factoryhub.site import Site

from .daemons import running_pid, spawn_daemon, stop_daemon, wait_for
from .embedded import HUB_USER, ensure_hub_user

VENV = Path("/opt/factoryhub/venv")
CHP = NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
PROXY_USER = "factoryhub-proxy"


def ensure_service_accounts() -> None:
    """The hub's and the proxy's system accounts (idempotent); the hub's in `shadow`, so that
    PAM can check learners' passwords without root."""
    ensure_hub_user()
    try:
        pwd.getpwnam(PROXY_USER)
    except KeyError:
        argv = ["useradd", "--system", "--no-user-group", "--gid", "nogroup"]
        argv += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", PROXY_USER]
        subprocess.run(argv, check=True)
    if HUB_USER not in grp.getgrnam("shadow").gr_mem:
        subprocess.run(["usermod", "--append", "--groups", "shadow", HUB_USER], check=True)


def _chown_tree(root: Path, user: str) -> None:
    """`root` and everything in it owned by `user`, links themselves never followed (files of
    a hub that ran as root before are handed over; nothing outside is touched)."""
    account = pwd.getpwnam(user)
    os.chown(root, account.pw_uid, account.pw_gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def readable_by(user: str, path: Path) -> bool:
    """Whether `user` can read `path` (every folder above it included)."""
    argv = ["/usr/sbin/runuser", "-u", user, "--", "/usr/bin/test", "-r", str(path)]
    return subprocess.run(argv, check=False, env={"PATH": "/usr/bin:/bin"}).returncode == 0


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
    def proxy_dir(self) -> Path:
        """The proxy account's own folder (its supervisor writes the proxy's pid there)."""
        return self.state_dir / "proxy"

    @property
    def proxy_child_pidfile(self) -> Path:
        """The proxy process itself (its supervisor's pid is in `proxy_pidfile`)."""
        return self.proxy_dir / "proxy-child.pid"

    @property
    def config_copy(self) -> Path:
        return self.state_dir / "config" / "jupyterhub_config.py"

    @property
    def site_copy(self) -> Path:
        return self.state_dir / "config" / "site.toml"

    def prepare(self) -> None:
        """Accounts, the state directory owned by the hub's account (the proxy's folder by the
        proxy's), and the config and site where the hub's account can read them: a checkout
        under /root is not readable to it, so those two are copied (root's, mode 0644)."""
        ensure_service_accounts()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _chown_tree(self.state_dir, HUB_USER)
        self.state_dir.chmod(0o711)  # the proxy's account reaches its folder, lists nothing
        self.proxy_dir.mkdir(mode=0o700, exist_ok=True)
        _chown_tree(self.proxy_dir, PROXY_USER)
        config = self.config_copy.parent
        config.mkdir(exist_ok=True)
        os.chown(config, 0, 0)
        config.chmod(0o755)
        for source, copy in (
            (self.config_file, self.config_copy),
            (self.site_path, self.site_copy),
        ):
            if source.resolve() != copy.resolve():
                shutil.copyfile(source, copy)
                os.chown(copy, 0, 0)
                copy.chmod(0o644)

    @property
    def hub_config(self) -> Path:
        return self.config_copy if self.config_copy.exists() else self.config_file

    @property
    def hub_site(self) -> Path:
        return self.site_copy if self.site_copy.exists() else self.site_path

    @property
    def hub_api(self) -> str:
        return f"http://{self.site.hub.hub_ip}:{self.site.hub.hub_port}/hub/api"

    def proxy_token(self) -> str:
        path = self.state_dir / "proxy-token"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
            shutil.chown(path, HUB_USER)
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
        return [str(VENV / "bin" / "jupyterhub"), "-f", str(self.hub_config)]

    def environment(self, user: str = HUB_USER) -> dict[str, str]:
        """A daemon's whole environment: chosen here, nothing inherited from root's."""
        home = pwd.getpwnam(user).pw_dir
        env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ", "SLURM_CONF") if k in os.environ}
        env.update(HOME=home, USER=user, LOGNAME=user, PATH=f"{VENV / 'bin'}:/usr/bin:/bin")
        env["CONFIGPROXY_AUTH_TOKEN"] = self.proxy_token()
        env["FACTORYHUB_SITE"] = str(self.hub_site)
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
    hub.prepare()
    supervised = [
        str(VENV / "bin" / "python"),
        "-m",
        "factoryhub.demo.supervise",
        str(hub.proxy_child_pidfile),
        "--",
        *hub.proxy_argv(),
    ]
    pid = spawn_daemon(
        supervised,
        hub.proxy_pidfile,
        hub.state_dir / "proxy.log",
        env=hub.environment(PROXY_USER),
        cwd=hub.proxy_dir,
        user=PROXY_USER,
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
        user=HUB_USER,
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
