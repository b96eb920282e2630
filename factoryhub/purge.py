"""The scratch purge: delete what was not modified for a number of days, as root, without
ever following a link (`find -P DIR -type f -mtime +N -delete`, written with directory file
descriptors so a folder swapped for a link between two looks is refused, not followed).

Each top-level folder of the tier (a learner's) is walked within its own file system: a mount
or a btrfs subvolume made inside it is not entered. Links themselves are deleted when old
(their own modification time, as `find -P` reads it); what they point at is never touched.
Folders are kept, empty or not.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 256


@dataclass
class PurgeReport:
    """What one purge did: files (and links) deleted, their bytes, and what it left alone."""

    deleted: list[str] = field(default_factory=list)
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # other file systems, too deep, races


def _open_dir(name: str, parent: int, expected: os.stat_result) -> int | None:
    """`name` in `parent` opened as a folder, if it is still the folder `expected` described."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError:
        return None  # gone, or swapped for a link or a file since it was looked at
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(fd)
        return None
    return fd


def _walk(fd: int, where: str, cutoff: float, report: PurgeReport, depth: int) -> None:
    device = os.fstat(fd).st_dev
    for name in sorted(os.listdir(fd)):
        path = f"{where}/{name}"
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode):
            if info.st_dev != device or depth >= MAX_DEPTH:
                report.skipped.append(path)
                continue
            child = _open_dir(name, fd, info)
            if child is None:
                report.skipped.append(path)
                continue
            try:
                _walk(child, path, cutoff, report, depth + 1)
            finally:
                os.close(child)
        elif info.st_mtime < cutoff:
            try:
                os.unlink(name, dir_fd=fd)  # a link is removed itself, never its target
            except FileNotFoundError:
                continue
            report.deleted.append(path)
            report.bytes += info.st_size if stat.S_ISREG(info.st_mode) else 0


def purge_tier(root: str, days: float, now: float) -> PurgeReport:
    """Delete every file under each folder of `root` (a tier such as /scratch) not modified
    for more than `days` days before `now` (seconds since the epoch)."""
    report = PurgeReport()
    cutoff = now - days * 86400
    top = os.open(root, _DIR_FLAGS)
    try:
        for name in sorted(os.listdir(top)):
            info = os.stat(name, dir_fd=top, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                continue  # the tier's own files (none are a learner's) are left alone
            fd = _open_dir(name, top, info)
            if fd is None:
                report.skipped.append(f"{root}/{name}")
                continue
            try:
                _walk(fd, f"{root}/{name}", cutoff, report, 1)
            finally:
                os.close(fd)
    finally:
        os.close(top)
    return report
