"""`factoryhub hub …`: a hub on a site's own service node, from its site.toml, with none of the
embedded site (no Slurm configuration, daemons or database, no demo accounts).

- `setup` (root): the service accounts if missing, the hub's state directory, root's folder
  `/etc/factoryhub/hubs/<id>/` (the hub's config and site, the proxy's and the hub's
  environment files for the systemd units, a self-signed certificate if the site asks for
  one), the proxy's token, the catalogue folder and the environments' kernels; then
  `factoryhub site check`, whose sentences it prints; then, where systemd is PID 1,
  `systemctl enable --now` of the proxy's and the hub's units. Where it is not (containers,
  CI), `--start` starts them under FactoryHub's supervisor. Idempotent: a second run
  rewrites nothing (files keep their mtime) and says so.
- `stop`, `status`: the hub and its proxy (systemd units or the supervisor's daemons).

The same code as `factoryhub demo start` writes these files with (`HubInstance.prepare`,
`hubunits.write_environments`, `install_kernels`).

Exit status of `setup`: that of the site check (0 nothing found, 1 warnings, 2 an error; the
hub is not started on an error), 3 the site file cannot be read, 4 refused (not root, no
config, a state directory it must not take, a certificate the proxy cannot read).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import stat
from pathlib import Path

from factoryhub.courses.cli import site_path
from factoryhub.demo import hubunits
from factoryhub.demo.embedded import HUB_USER
from factoryhub.demo.hubprocess import HubInstance, hub_status, start_hub, stop_hub
from factoryhub.site import SiteError, load_site

from . import sitecheck as sitecheck_cli
from .environments import install_kernels

# The hub's JupyterHub config as deploy/install.sh installs it (hub_config/ of the checkout).
DEFAULT_CONFIG = Path("/opt/factoryhub/hub_config/jupyterhub_config.py")
# Folders no state directory may be (besides `/` and the folders directly in it): their owner
# and mode are the system's.
SYSTEM_DIRS = frozenset(
    Path(p) for p in ("/var/lib", "/var/log", "/var/spool", "/var/cache", "/var/mail", "/usr/local")
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    hub = sub.add_parser("hub", help="a hub on a service node: set up its files, stop, status")
    actions = hub.add_subparsers(dest="hub_action", required=True)
    setup = actions.add_parser(
        "setup", help="accounts, state directory, /etc/factoryhub/hubs/<id>/, units (root)"
    )
    setup.add_argument("--site", type=Path, help="site.toml (default: the installed site)")
    setup.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the JupyterHub config to install (default: {DEFAULT_CONFIG})",
    )
    when = setup.add_mutually_exclusive_group()
    when.add_argument(
        "--start",
        action="store_true",
        help="where systemd is not PID 1: start the proxy and the hub under the supervisor",
    )
    when.add_argument("--no-start", action="store_true", help="write the files only; start nothing")
    for name, text in (("stop", "stop the hub and its proxy"), ("status", "what runs")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--site", type=Path, help="site.toml (default: the installed site)")


def state_dir_problem(state_dir: Path, owner: str | None) -> str | None:
    """Why `state_dir` (site.toml `[hub] state_dir`) must not become the hub's account's
    folder — setup hands it and everything in it to that account — or None (pure: `owner` is
    the existing folder's owner's name, None when it does not exist)."""
    if not state_dir.is_absolute() or ".." in state_dir.parts:
        return f"[hub] state_dir {state_dir} is not an absolute path without '..'"
    if state_dir in SYSTEM_DIRS or len(state_dir.parts) < 3:
        return f"[hub] state_dir {state_dir} is a system folder: give the hub one of its own"
    if owner not in (None, "root", HUB_USER):
        return (
            f"[hub] state_dir {state_dir} belongs to {owner}: setup would hand it to {HUB_USER};"
            " give the hub a folder of its own"
        )
    return None


def _owner(path: Path) -> str | None:
    try:
        seen = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(seen.st_mode):
        return f"uid {seen.st_uid} (not a folder)"
    try:
        return pwd.getpwuid(seen.st_uid).pw_name
    except KeyError:
        return f"uid {seen.st_uid}"


def fingerprint(paths: list[Path]) -> dict[str, tuple]:
    """Each path's kind, owner, mode, mtime and content digest (None: missing); links are not
    followed. What `setup` compares before and after to say what it changed."""
    seen: dict[str, tuple] = {}
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            seen[str(path)] = ()
            continue
        digest = ""
        if stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        seen[str(path)] = (
            stat.S_IFMT(info.st_mode),
            info.st_uid,
            info.st_gid,
            stat.S_IMODE(info.st_mode),
            info.st_mtime_ns,
            digest,
        )
    return seen


def written_paths(hub: HubInstance) -> list[Path]:
    """What `setup` writes for a hub (the kernels aside)."""
    folder = hub.hub_config.parent
    paths = [hub.state_dir, hub.state_dir / "proxy-token", folder, hub.hub_config, hub.hub_site]
    paths += [folder / "hub.env", folder / "proxy.env", hub.proxy_dir]
    if (tls := hub.tls) is not None:
        paths += [tls.cert, tls.key]
    if hub.site.hub.catalogue_dir:
        paths.append(Path(hub.site.hub.catalogue_dir))
    return paths


def _accounts() -> set[str]:
    return {entry.pw_name for entry in pwd.getpwall()}


def setup(hub: HubInstance) -> list[str]:
    """Write everything the hub's units need (idempotent); one line per thing it changed."""
    paths = written_paths(hub)
    before, accounts = fingerprint(paths), _accounts()
    hub.prepare()  # accounts, state directory, config and site copies, proxy folder, TLS
    catalogue = Path(hub.site.hub.catalogue_dir) if hub.site.hub.catalogue_dir else None
    if catalogue is not None and not catalogue.exists():
        catalogue.mkdir(parents=True, mode=0o755)  # root's: `factoryhub course publish` writes
    hubunits.write_environments(hub)  # hub.env and proxy.env; the proxy's token with them
    kernels = install_kernels(hub.site)
    after = fingerprint(paths)
    changed = [f"made the account {name}" for name in sorted(_accounts() - accounts)]
    changed += [
        f"{'made' if not before[path] else 'changed'} {path}"
        for path in after
        if after[path] != before[path]
    ]
    if kernels:
        print(f"Kernels ({hub.site.software.kernels_dir}): {', '.join(kernels)}", flush=True)
    return changed


def _refused(text: str) -> int:
    print(f"error: {text}", flush=True)
    return 4


def main_setup(args: argparse.Namespace) -> int:
    try:
        path = site_path(args.site).resolve()
        site = load_site(path)
    except (OSError, SiteError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}", flush=True)
        return 3
    if os.geteuid() != 0:
        return _refused("`factoryhub hub setup` makes accounts and root's files: run it as root")
    if not args.config.is_file():
        return _refused(
            f"no JupyterHub config at {args.config}: deploy/install.sh --service-node installs"
            " it there; or name the checkout's hub_config/jupyterhub_config.py with --config"
        )
    state_dir = Path(site.hub.state_dir)
    if problem := state_dir_problem(state_dir, _owner(state_dir)):
        return _refused(problem)
    hub = HubInstance(site, path, args.config.resolve())
    print(f"Setting up hub {site.hub.id} from {path}", flush=True)
    try:
        changed = setup(hub)
    except (OSError, RuntimeError, ValueError) as exc:
        return _refused(f"setup stopped: {exc}")
    for line in changed:
        print(f"  {line}", flush=True)
    if not changed:
        print("  nothing to change: every file was already as the site file says", flush=True)
    folder = hub.hub_config.parent
    print(f"Hub files in {folder} (the units read hub.env and proxy.env there)", flush=True)
    status = sitecheck_cli.main(argparse.Namespace(site=path, from_nodes=False))
    proxy_unit, hub_unit = hubunits.units(site.hub.id)
    if status >= 2:
        print("Not started: fix the errors site check names, then run setup again.", flush=True)
        return status
    if args.no_start:
        return status
    if hubunits.systemd_runs():
        hubunits.start_units(hub)  # enable --now: nothing happens to units already running
        print(f"Enabled and started {proxy_unit} and {hub_unit} (at boot too).", flush=True)
        if changed:
            print(
                f"If they were running already, apply the change: systemctl restart {hub_unit}"
                f" (and {proxy_unit} after a change of url, ports or certificate).",
                flush=True,
            )
    elif args.start:
        start_hub(hub)
        print(f"The proxy and the hub run under FactoryHub's supervisor: {site.hub.url}")
        print(f"Stop them with `factoryhub hub stop --site {path}`.", flush=True)
    else:
        print(
            "systemd is not PID 1 here: start the proxy and the hub under FactoryHub's"
            f" supervisor with `factoryhub hub setup --site {path} --start`.",
            flush=True,
        )
    return status


def main(args: argparse.Namespace) -> int:
    if args.hub_action == "setup":
        return main_setup(args)
    try:
        path = site_path(args.site).resolve()
        site = load_site(path)
    except (OSError, SiteError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}", flush=True)
        return 3
    hub = HubInstance(site, path, DEFAULT_CONFIG)
    if args.hub_action == "stop":
        if os.geteuid() != 0:
            return _refused("stopping the hub's daemons needs root")
        stop_hub(hub)
        print(f"Stopped hub {site.hub.id} and its proxy.")
        return 0
    status = hub_status(hub)
    for name, pid in status.items():
        print(f"{name:<17} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0 if all(status.values()) else 3
