"""`factoryhub storage …`: the site's storage tiers.

- `setup` (root): the embedded site's project and scratch file systems, mounted, with each
  learner's and project's folder and its quota (`factoryhub.demo.storage`).
- `purge` (root): delete files older than each tier's `purge_days` (`factoryhub.purge`), never
  following a link; run daily by cron or a systemd timer on a real site.
- `usage` (anyone): the caller's tiers, what they hold and allow, and the purge rules.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import time
from pathlib import Path

from factoryhub.courses.cli import site_path
from factoryhub.demo.storage import StorageSetupError, ensure_storage, qgroup_usage
from factoryhub.purge import purge_tier
from factoryhub.site import SITE_ENV, Site, SiteError, load_site, site_from_data
from factoryhub.storage import TIERS, describe_tier


def add_parser(sub: argparse._SubParsersAction) -> None:
    storage = sub.add_parser("storage", help="storage tiers: set up, purge, show usage")
    actions = storage.add_subparsers(dest="storage_action", required=True)
    for name, text in (
        ("setup", "make the embedded site's tiers, folders and quotas (root)"),
        ("purge", "delete files older than each tier's purge_days (root)"),
        ("usage", "your folders on each tier: used, quota, purge rule"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--site", type=Path, help="site.toml (default: the installed site)")
        if name == "purge":
            action.add_argument("--dry-run", action="store_true", help="say, delete nothing")


def _site(given: Path | None) -> Site:
    if given is None and os.environ.get(SITE_ENV):  # inside a session: the hub's site
        return site_from_data(json.loads(os.environ[SITE_ENV]))
    return load_site(site_path(given))


def main(args: argparse.Namespace) -> int:
    try:
        site = _site(args.site)
    except (OSError, SiteError, ValueError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}")
        return 3
    if args.storage_action == "usage":
        return usage(site)
    if os.geteuid() != 0:
        print(f"error: `factoryhub storage {args.storage_action}` runs as root")
        return 2
    if args.storage_action == "setup":
        try:
            mounted = ensure_storage(site)
        except StorageSetupError as exc:
            print(f"error: {exc}")
            return 1
        print("storage ready" + (f"; mounted {', '.join(mounted)}" if mounted else ""))
        return 0
    return purge(site, args.dry_run)


def purge(site: Site, dry_run: bool) -> int:
    for name in TIERS:
        tier = site.storage.tier(name)
        if not tier.path or not tier.purge_days:
            continue
        if dry_run:
            print(f"{name}: would purge files under {tier.path} older than {tier.purge_days} days")
            continue
        report = purge_tier(tier.path, tier.purge_days, time.time())
        print(
            f"{name}: deleted {len(report.deleted)} files ({report.bytes} bytes) not modified "
            f"for {tier.purge_days} days; left {len(report.skipped)} folders alone"
        )
    return 0


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"  # as quota_mb is counted (btrfs limits in MiB)


def _your_folders(site: Site, user: str) -> list[tuple[str, str]]:
    storage = site.storage
    folders = [("home", pwd.getpwnam(user).pw_dir)]
    if storage.scratch.path:
        folders.append(("scratch", f"{storage.scratch.path}/{user}"))
    groups = {grp.getgrgid(g).gr_name for g in os.getgroups()}
    for project, group in sorted(storage.projects.items()):
        if group in groups:
            folders.append(("project", f"{storage.project.path}/{project}"))
    return folders


def usage(site: Site) -> int:
    """The caller's folders: used and quota where the file system keeps a quota group,
    otherwise the free space of the file system; and each tier's rules."""
    user = pwd.getpwuid(os.getuid()).pw_name
    print(f"Storage of {user}:")
    print(f"  {'tier':<8} {'folder':<28} {'used':>12} {'quota':>12}")
    for tier, path in _your_folders(site, user):
        if not os.path.isdir(path):
            print(f"  {tier:<8} {path:<28} {'(missing)':>12}")
            continue
        found = qgroup_usage(path)
        if found is not None and found.limit:
            used, quota = _mb(found.used), _mb(found.limit)
        else:
            disk = shutil.disk_usage(path)
            used, quota = "-", f"none ({_mb(disk.free)} free on its disk)"
        print(f"  {tier:<8} {path:<28} {used:>12} {quota:>12}")
    print("Rules:")
    for name in TIERS:
        tier = site.storage.tier(name)
        if tier.path:
            print(f"  {describe_tier(name, tier)}")
    return 0
