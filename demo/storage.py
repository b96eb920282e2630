"""The embedded site's storage tiers (run as root): project and scratch as btrfs file systems
in loop images, mounted at their paths, with a btrfs quota group per folder.

This machine's kernel has no quota support for ext4 or XFS (CONFIG_QUOTA is off: mounting with
usrquota fails), but btrfs quota groups are part of btrfs itself: a folder made a subvolume
with a limit refuses writes past it with EDQUOT, "Disk quota exceeded". The figures are in
sysfs (/sys/fs/btrfs/<uuid>/qgroups/0_<id>/), readable by everyone, so learners read their
usage without privileges (`factoryhub storage usage`).

Idempotent: an image is made once, mounted again after a restart, folders and limits made
or corrected. Root never follows a link here: a tier's mount point and its folders must be
real folders (a subvolume for a folder with a quota), checked without following links.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from factoryhub.site import Site
from factoryhub.storage import StorageFolder, StorageTier, project_members, storage_plan

BTRFS = "/usr/bin/btrfs"
SUBVOLUME_INODE = 256  # the root folder of every btrfs subvolume has inode 256


class StorageSetupError(RuntimeError):
    """A tier or folder root will not touch, or a file system that cannot be made."""


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StorageSetupError(f"{argv[0]} {' '.join(argv[1:3])}: {done.stderr.strip()[:300]}")
    return done.stdout


@dataclass(frozen=True)
class Mount:
    source: str
    point: str
    fstype: str


def mounts(mountinfo: str | None = None) -> list[Mount]:
    """The mounts of /proc/self/mountinfo (or the text given), in order."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    found = []
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 2:
            point = fields[4].replace("\\040", " ")
            found.append(Mount(source=rest[1], point=point, fstype=rest[0]))
    return found


def mount_of(path: str) -> Mount | None:
    """The mount `path` lies on (the longest mount point above it; the last mounted wins)."""
    best: Mount | None = None
    for mount in mounts():
        inside = path == mount.point or path.startswith(mount.point.rstrip("/") + "/")
        if inside and (best is None or len(mount.point) >= len(best.point)):
            best = mount
    return best


def _real_dir(path: Path, mode: int = 0o755) -> None:
    """`path` is a folder (made if missing) and not a link: root will not follow one."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise StorageSetupError(f"{path} is not a folder (a link?): left alone")


def ensure_filesystem(images: Path, name: str, tier: StorageTier) -> bool:
    """The tier's btrfs image exists and is mounted at its path with quotas on; True when it
    was mounted now."""
    _real_dir(images, 0o700)
    os.chmod(images, 0o700)
    image = images / f"{name}.img"
    if not image.exists():
        with open(image, "xb") as sparse:
            sparse.truncate(tier.size_mb * 1024 * 1024)
        _run(["mkfs.btrfs", "--quiet", "--label", f"fh-{name}", str(image)])
    point = Path(tier.path)
    _real_dir(point)
    current = mount_of(str(point))
    mounted_now = False
    if current is None or current.point != str(point):
        _run(["mount", "-o", "loop,nodev,nosuid", str(image), str(point)])
        mounted_now = True
    elif current.fstype != "btrfs":
        raise StorageSetupError(f"{point} is a {current.fstype} mount, not the tier's btrfs")
    _run([BTRFS, "quota", "enable", str(point)])
    os.chown(point, 0, 0)
    os.chmod(point, 0o755)  # noqa: S103 - everyone reaches their own folder below it
    return mounted_now


def ensure_folder(folder: StorageFolder) -> None:
    """The folder as a subvolume with its owner, group, mode and quota limit."""
    path = Path(folder.path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        _run([BTRFS, "subvolume", "create", str(path)])
        info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_ino != SUBVOLUME_INODE:
        raise StorageSetupError(f"{path} is not a btrfs subvolume (a link or a folder?)")
    uid = pwd.getpwnam(folder.owner).pw_uid
    gid = grp.getgrnam(folder.group).gr_gid if folder.group else pwd.getpwnam(folder.owner).pw_gid
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, folder.mode, follow_symlinks=False)
    limit = f"{folder.quota_mb}M" if folder.quota_mb else "none"
    _run([BTRFS, "qgroup", "limit", limit, str(path)])


def ensure_project_groups(site: Site, everyone: Iterable[str]) -> None:
    """Each project's group exists with the users its Slurm account lists; the login group
    (a project open to everyone) is made when missing (a fresh machine before its first
    learner) but its members are the accounts' own and are not changed here."""
    everyone = list(everyone)
    for project, group in site.storage.projects.items():
        try:
            present = set(grp.getgrnam(group).gr_mem)
        except KeyError:
            _run(["groupadd", group])
            present = set()
        if group == site.hub.allowed_group:
            continue
        for user in project_members(project, site.access.accounts, everyone):
            if user not in present and _user_exists(user):
                _run(["usermod", "--append", "--groups", group, user])


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def learners(site: Site) -> list[str]:
    """The members of the login group: each gets a scratch folder."""
    try:
        return sorted(grp.getgrnam(site.hub.allowed_group).gr_mem)
    except KeyError:
        return []


def ensure_storage(site: Site) -> list[str]:
    """The embedded site's tiers and folders; the paths mounted now (empty when all were
    already). Nothing when the site has no embedded images (a real site's own file systems)."""
    storage = site.storage
    if not storage.embedded_images:
        return []
    mounted = []
    for name in ("project", "scratch"):
        tier = storage.tier(name)
        if (
            tier.path
            and tier.size_mb
            and ensure_filesystem(Path(storage.embedded_images), name, tier)
        ):
            mounted.append(tier.path)
    users = learners(site)
    ensure_project_groups(site, users)
    for folder in storage_plan(storage, users):
        ensure_folder(folder)
    return mounted


@dataclass(frozen=True)
class Usage:
    """A folder's use of its quota group, in bytes (limit 0: none)."""

    used: int
    limit: int


def _sysfs_dir(mount: Mount) -> Path | None:
    device = Path(mount.source).name
    for fs in Path("/sys/fs/btrfs").glob("*-*"):
        if (fs / "devices" / device).exists():
            return fs
    return None


def qgroup_usage(path: str) -> Usage | None:
    """What the btrfs quota group of the subvolume at `path` holds and allows, read as any
    user (sysfs and `btrfs inspect-internal rootid`); None where there is none."""
    mount = mount_of(path)
    if mount is None or mount.fstype != "btrfs":
        return None
    fs = _sysfs_dir(mount)
    done = subprocess.run(
        [BTRFS, "inspect-internal", "rootid", path], capture_output=True, text=True, timeout=10
    )
    if fs is None or done.returncode != 0 or not done.stdout.strip().isdigit():
        return None
    qgroup = fs / "qgroups" / f"0_{done.stdout.strip()}"
    try:
        used = int((qgroup / "referenced").read_text())
        limit = int((qgroup / "max_referenced").read_text())
    except (OSError, ValueError):
        return None
    return Usage(used, limit)
