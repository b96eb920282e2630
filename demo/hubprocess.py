"""The hub and its proxy as two supervised daemons: configurable-http-proxy first, then
JupyterHub.

The proxy is started on its own so that restarting the hub never drops a route. Each runs under
a supervisor that restarts it when it dies: the proxy's routes come back at the hub's next route
check (F15), a hub killed with -9 is back within seconds and re-adopts every session from its
database (F3). Where systemd is PID 1 the supervisors are systemd units
(`factoryhub.demo.hubunits`, deploy/systemd/); elsewhere (containers, CI, this kind of machine)
`factoryhub.demo.supervise`. Both share the proxy's API token, kept in the hub's state directory
(mode 0600).

Neither runs as root. JupyterHub (and the service it starts) runs as the system account
`factoryhub`, which owns the state directory, reads /etc/shadow through the `shadow` group for
PAM, and acts as a learner only through `fh-act-as` (`factoryhub.scheduler.actas`). The proxy
and its supervisor run as `factoryhub-proxy`, which owns nothing but its own folder of pid files.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from factoryhub.security import NODE_PREFIX
from factoryhub.site import Site

from . import hubunits, orderrunner
from .daemons import open_nofollow, running_pid, spawn_daemon, stop_daemon, wait_for
from .embedded import HUB_USER, ensure_hub_user
from .hubtls import TLSFiles, ensure_self_signed, proxy_can_read, tls_files

VENV = Path("/opt/factoryhub/venv")
CHP = NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
PROXY_USER = "factoryhub-proxy"
CONFIG_ROOT = Path("/etc/factoryhub/hubs")  # root's copies of each hub's config and site
PROXY_RUN = Path("/run/factoryhub-proxy")  # the proxy account's pid folder, one per hub


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
    """`root` and everything in it owned by `user` (files of a hub that ran as root before are
    handed over). Walked by descriptor (`os.fwalk`), links never followed: the account owns
    the tree and may swap a folder for a link while root walks it."""
    account = pwd.getpwnam(user)
    os.chown(root, account.pw_uid, account.pw_gid, follow_symlinks=False)
    for _, dirs, files, folder_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + files:
            os.chown(name, account.pw_uid, account.pw_gid, dir_fd=folder_fd, follow_symlinks=False)


def _root_dir(path: Path, owner: str = "root", mode: int = 0o755) -> None:
    """`path` a folder owned by `owner` under folders only root writes to."""
    path.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(owner)
    os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    path.chmod(mode)


def _same_file(source: Path, copy: Path) -> bool:
    """`copy` a regular file (not a link) with `source`'s bytes."""
    try:
        return copy.is_file() and not copy.is_symlink() and copy.read_bytes() == source.read_bytes()
    except OSError:
        return False


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
        """JupyterHub itself (written by its supervisor, whose pid is in
        `hub_supervisor_pidfile`)."""
        return self.state_dir / "jupyterhub.pid"

    @property
    def hub_supervisor_pidfile(self) -> Path:
        return self.state_dir / "hub-supervisor.pid"

    @property
    def proxy_pidfile(self) -> Path:
        return self.state_dir / "proxy.pid"

    @property
    def proxy_dir(self) -> Path:
        """The proxy account's own folder (its supervisor writes the proxy's pid there)."""
        return PROXY_RUN / self.site.hub.id

    @property
    def proxy_child_pidfile(self) -> Path:
        """The proxy process itself (its supervisor's pid is in `proxy_pidfile`)."""
        return self.proxy_dir / "proxy-child.pid"

    @property
    def hub_config(self) -> Path:
        """The copy of the config JupyterHub reads (root's: the hub cannot change it)."""
        return CONFIG_ROOT / self.site.hub.id / "jupyterhub_config.py"

    @property
    def hub_site(self) -> Path:
        """The copy of site.toml the hub and its service read (root's)."""
        return CONFIG_ROOT / self.site.hub.id / "site.toml"

    @property
    def tls(self) -> TLSFiles | None:
        """The certificate and key the proxy serves HTTPS with; None: plain HTTP."""
        return tls_files(self.site.hub, self.hub_config.parent)

    def prepare(self) -> None:
        """Accounts; the state directory the hub's account's alone (0700); the proxy's pid
        folder its account's; the config and site copied where the hub's account reads them
        and cannot change them (a checkout under /root is not readable to it); the proxy's
        certificate (`factoryhub.demo.hubtls`). Root writes nothing inside a folder either
        account owns but through `open_nofollow`."""
        ensure_service_accounts()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _chown_tree(self.state_dir, HUB_USER)
        self.state_dir.chmod(0o700)
        _root_dir(PROXY_RUN)
        _root_dir(self.proxy_dir, PROXY_USER, 0o700)
        _root_dir(self.hub_config.parent)
        for source, copy in ((self.config_file, self.hub_config), (self.site_path, self.hub_site)):
            if not _same_file(source, copy):  # unchanged copies keep their mtime
                shutil.copyfile(source, copy)
            copy.chmod(0o644)
        self._prepare_tls()

    def _prepare_tls(self) -> None:
        if (tls := self.tls) is None:
            return
        if self.site.hub.tls_self_signed:
            if ensure_self_signed(tls, self.site.hub.url, PROXY_USER):
                print(f"Made a self-signed certificate for the hub: {tls.cert}", flush=True)
        elif problems := proxy_can_read(tls, PROXY_USER):
            raise RuntimeError("; ".join(problems))

    @property
    def hub_api(self) -> str:
        return f"http://{self.site.hub.hub_ip}:{self.site.hub.hub_port}/hub/api"

    def proxy_token(self) -> str:
        """The proxy's API token, kept in the hub's state directory (made there if missing);
        read and written without following a link the hub's account could have planted."""
        path = self.state_dir / "proxy-token"
        try:
            fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with os.fdopen(open_nofollow(path, os.O_RDONLY), encoding="utf-8") as token:
                return token.read(200).strip()
        account = pwd.getpwnam(HUB_USER)
        os.fchown(fd, account.pw_uid, account.pw_gid)
        token = secrets.token_hex(32)
        with os.fdopen(fd, "w") as out:
            out.write(token)
        return token

    def proxy_argv(self) -> list[str]:
        public = urlparse(self.site.hub.bind_url or self.site.hub.url)  # where it listens
        hub = f"http://{self.site.hub.hub_ip}:{self.site.hub.hub_port}"
        tls = self.tls
        https = ["--ssl-cert", str(tls.cert), "--ssl-key", str(tls.key)] if tls else []
        return [
            str(CHP),
            "--ip",
            public.hostname or "",
            "--port",
            str(public.port or (443 if tls else 80)),
            *https,
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


def leftovers(hub: HubInstance) -> list[int]:
    """Processes of an earlier start of this hub id that its pid files no longer name (a run
    killed half-way, a state directory removed): the proxy's supervisor and its proxy, the
    hub. Only processes of the two service accounts whose command line names this hub's own
    folders count, so nothing else is ever signalled."""
    marks = {}
    for user, mark in ((PROXY_USER, PROXY_RUN), (HUB_USER, CONFIG_ROOT)):
        try:  # an account not made yet (a fresh machine's first start) runs nothing
            marks[pwd.getpwnam(user).pw_uid] = f"{mark / hub.site.hub.id}/"
        except KeyError:
            continue
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        mark = marks.get(uid)
        if mark and any(arg.decode(errors="replace").startswith(mark) for arg in argv):
            found.append(int(entry.name))
    if child := running_pid(hub.proxy_child_pidfile, PROXY_USER):  # the supervised proxy
        found.append(child)
    return found


def stop_leftovers(hub: HubInstance, timeout: float = 10.0) -> list[int]:
    """End `leftovers(hub)` (TERM, then KILL); their pids."""
    pids = leftovers(hub)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not set(leftovers(hub)) & set(pids), timeout, "earlier hub's exit")
    except TimeoutError:
        for pid in set(leftovers(hub)) & set(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids


def _proxy_is_ours(hub: HubInstance) -> bool:
    """The proxy answering on the API port takes this hub's token (another, an earlier run's,
    would answer 403 to every route the hub adds)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{hub.site.hub.proxy_api_port}/api/routes",
        headers={"Authorization": f"token {hub.proxy_token()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2):  # noqa: S310 - our own http URL
            return True
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
    if not _proxy_is_ours(hub):
        raise RuntimeError(
            f"the proxy on port {hub.site.hub.proxy_api_port} refuses this hub's token: another"
            " process holds the port (see `ss -ltnp`); stop it and start again"
        )
    return pid


def hub_supervised_argv(hub: HubInstance) -> list[str]:
    """JupyterHub under `factoryhub.demo.supervise`, which writes the hub's own pid."""
    supervise = [str(VENV / "bin" / "python"), "-m", "factoryhub.demo.supervise"]
    return [*supervise, str(hub.hub_pidfile), "--", *hub.hub_argv()]


def start_hub(hub: HubInstance, timeout: float = 90) -> int:
    """Start JupyterHub under its supervisor (the proxy first) and wait until its API
    answers; the supervisor's pid. What an earlier start of this hub id left running without
    a pid file is stopped first. Where systemd is PID 1, its units are started instead."""
    if hubunits.systemd_runs():
        hub.prepare()
        hubunits.start_units(hub)
        pid = 0
    else:
        pid = _start_supervised(hub)
    wait_for(lambda: _answers(f"{hub.hub_api}/"), timeout, "JupyterHub", interval=0.2)
    estimate = f"http://127.0.0.1:{hub.site.hub.service_port}/services/factoryhub/estimate"
    wait_for(lambda: _answers(estimate), 30, "the estimate service", interval=0.2)
    return pid


def _start_supervised(hub: HubInstance) -> int:
    if not running_pid(hub.hub_supervisor_pidfile, HUB_USER) and not running_pid(
        hub.proxy_pidfile, PROXY_USER
    ):
        stop_leftovers(hub)
    start_proxy(hub)
    if running_pid(hub.hub_pidfile, HUB_USER) and not running_pid(
        hub.hub_supervisor_pidfile, HUB_USER
    ):
        stop_daemon(hub.hub_pidfile, timeout=30, owner=HUB_USER)  # an unsupervised hub: replaced
    pid = spawn_daemon(
        hub_supervised_argv(hub),
        hub.hub_supervisor_pidfile,
        hub.state_dir / "hub.log",
        env=hub.environment(),
        cwd=hub.state_dir,
        user=HUB_USER,
    )
    orderrunner.start_runner(hub)  # root runs the workshops ordered on the web page
    return pid


def stop_hub(hub: HubInstance, *, proxy: bool = True) -> None:
    """Stop the hub (its supervisor first, so that nothing restarts it), then the proxy."""
    if hubunits.systemd_runs():
        hubunits.stop_units(hub, proxy=proxy)
        return
    orderrunner.stop_runner(hub)
    stop_daemon(hub.hub_supervisor_pidfile, timeout=40, owner=HUB_USER)
    stop_daemon(hub.hub_pidfile, timeout=30, owner=HUB_USER)  # a hub its supervisor left
    if proxy:
        stop_daemon(hub.proxy_pidfile, owner=PROXY_USER)


def hub_status(hub: HubInstance) -> dict[str, int | None]:
    """The pid of each part (None: not running): supervisors, proxy, JupyterHub."""
    if hubunits.systemd_runs():
        return hubunits.unit_status(hub)
    return {
        "proxy supervisor": running_pid(hub.proxy_pidfile, PROXY_USER),
        "proxy": running_pid(hub.proxy_child_pidfile, PROXY_USER),
        "hub supervisor": running_pid(hub.hub_supervisor_pidfile, HUB_USER),
        "jupyterhub": running_pid(hub.hub_pidfile, HUB_USER),
        "workshop orders": orderrunner.runner_pid(hub),
    }
