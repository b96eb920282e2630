"""The hub and its proxy as systemd units, where systemd is PID 1: the same daemons, accounts
and restart-on-failure as `factoryhub.demo.supervise` gives elsewhere.

The units are templates installed by deploy/install.sh (deploy/systemd/), one instance per hub
id: `factoryhub-proxy@<id>.service` and `factoryhub-hub@<id>.service`. What differs per site
(the proxy's argv with its ports and certificate, the proxy's token, the site file) is in
root's environment files `/etc/factoryhub/hubs/<id>/{proxy,hub}.env` (mode 0600: systemd reads
them as root and hands the values to the daemon alone), written here at each start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from .daemons import open_nofollow

if TYPE_CHECKING:
    from .hubprocess import HubInstance

SYSTEMCTL = "/usr/bin/systemctl"


def systemd_runs(root: Path = Path("/")) -> bool:
    """Whether systemd is the service manager (sd_booted(3): /run/systemd/system exists)."""
    return (root / "run" / "systemd" / "system").is_dir()


def units(hub_id: str) -> tuple[str, str]:
    """The proxy's and the hub's unit for a hub id (pure)."""
    return f"factoryhub-proxy@{hub_id}.service", f"factoryhub-hub@{hub_id}.service"


def orders_timer(hub_id: str) -> str:
    """Root's timer that runs the hub's workshop orders (pure)."""
    return f"factoryhub-workshop-orders@{hub_id}.timer"


def environment_file(values: dict[str, str]) -> str:
    """systemd's EnvironmentFile text: one KEY="value" a line, quoted (pure). A value with a
    quote, backslash or line break is refused: none is expected here."""
    lines = []
    for key, value in values.items():
        if any(c in value for c in '"\\\n\r$`'):
            raise ValueError(f"{key}: a value systemd would read differently: {value!r}")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines) + "\n"


def _write_root_file(path: Path, text: str) -> None:
    """`text` in `path`, root's, 0600 (left as it is when it already is: its mtime kept)."""
    try:
        fd = open_nofollow(path, os.O_RDONLY)
        with os.fdopen(fd, encoding="utf-8") as current:
            seen = os.fstat(current.fileno())
            if (seen.st_uid, seen.st_mode & 0o7777) == (0, 0o600) and current.read() == text:
                return
    except (OSError, UnicodeDecodeError):
        pass
    staged = path.with_name(f".{path.name}.new")
    staged.unlink(missing_ok=True)
    fd = open_nofollow(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    staged.replace(path)


def write_environments(hub: HubInstance) -> None:
    """The proxy's and the hub's environment files, from the site (root's, 0600)."""
    from .hubprocess import PROXY_USER  # the module that starts the hub imports this one

    folder = hub.hub_config.parent
    proxy = hub.environment(PROXY_USER)
    proxy["PROXY_ARGS"] = " ".join(hub.proxy_argv()[1:])  # split at spaces by systemd
    _write_root_file(folder / "proxy.env", environment_file(proxy))
    _write_root_file(folder / "hub.env", environment_file(hub.environment()))


def _systemctl(*args: str) -> None:
    done = subprocess.run([SYSTEMCTL, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)}: {done.stderr.strip()[:300]}")


def start_units(hub: HubInstance) -> None:
    """Write the environments, then start (and enable at boot) the proxy, the hub and the
    timer of its workshop orders."""
    write_environments(hub)
    _systemctl("enable", "--now", *units(hub.site.hub.id), orders_timer(hub.site.hub.id))


def stop_units(hub: HubInstance, *, proxy: bool = True) -> None:
    """Stop the hub's unit (systemd does not restart a unit it was told to stop)."""
    proxy_unit, hub_unit = units(hub.site.hub.id)
    _systemctl("stop", orders_timer(hub.site.hub.id), hub_unit, *([proxy_unit] if proxy else []))


def unit_status(hub: HubInstance) -> dict[str, int | None]:
    """Each unit's main pid (None when it is not running)."""
    status = {}
    for name, unit in zip(("proxy", "jupyterhub"), units(hub.site.hub.id), strict=True):
        done = subprocess.run(
            [SYSTEMCTL, "show", "--property=MainPID", "--value", unit],
            capture_output=True,
            text=True,
            check=False,
        )
        pid = done.stdout.strip()
        status[name] = int(pid) if pid.isdigit() and pid != "0" else None
    return status
