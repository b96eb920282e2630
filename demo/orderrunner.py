"""Root's periodic run of the workshop orders queue for one hub, where systemd is not PID 1:
`factoryhub workshop-orders` every `EVERY` seconds under `factoryhub.demo.supervise --every`,
started and stopped with the hub (`factoryhub.demo.hubprocess`). Where systemd runs, the timer
factoryhub-workshop-orders@<id>.timer does the same (deploy/systemd/).

A workshop a trainer orders on the web page is then made within `EVERY` seconds and a run. The
runner is root's: its pid file lies in a folder only root writes to (root never signals a pid
the hub's account could have written); its log, workshop-orders.log, in the hub's state
directory beside the hub's, opened without following a link.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .daemons import running_pid, spawn_daemon, stop_daemon

if TYPE_CHECKING:
    from .hubprocess import HubInstance

RUN = Path("/run/factoryhub-orders")  # root's, one folder per hub id
EVERY = 15  # seconds between the starts of two runs
LOG = "workshop-orders.log"


def pidfile(hub: HubInstance) -> Path:
    return RUN / hub.site.hub.id / "runner.pid"


def runner_argv(hub: HubInstance, venv: Path) -> list[str]:
    """The supervisor running the command on root's copy of the site (pure)."""
    supervise = [str(venv / "bin" / "python"), "-m", "factoryhub.demo.supervise"]
    # `factoryhub workshop-orders` as its own module: an empty queue costs 0.1 s, not 1.5 s
    command = [*supervise[:2], "factoryhub.cli.workshop_orders", "--site", str(hub.hub_site)]
    return [*supervise, "--every", str(EVERY), "--", *command]


def start_runner(hub: HubInstance) -> int:
    """Start the runner (no-op when it runs); its pid."""
    from .hubprocess import VENV  # the module that starts the hub imports this one

    folder = pidfile(hub).parent
    for path in (RUN, folder):
        path.mkdir(mode=0o755, exist_ok=True)
        os.chown(path, 0, 0, follow_symlinks=False)
        path.chmod(0o755)
    env = {k: os.environ[k] for k in ("LANG", "TZ", "SLURM_CONF") if k in os.environ}
    env.update(HOME="/root", PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    return spawn_daemon(
        runner_argv(hub, VENV), pidfile(hub), hub.state_dir / LOG, env=env, cwd=Path("/")
    )


def stop_runner(hub: HubInstance) -> bool:
    """Stop the runner; a run under way finishes by itself. True if it was running."""
    return stop_daemon(pidfile(hub), owner="root")


def runner_pid(hub: HubInstance) -> int | None:
    return running_pid(pidfile(hub), "root")
