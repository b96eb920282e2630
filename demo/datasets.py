"""The demo's shared data sets (run as root): each data set's Unix groups and their members,
and its folder, root's with the set's first group, mode 0750 (files 0640), so that the file
system itself refuses everyone outside the groups. The embedded site's one set, digits, is the
copy of the UCI digits that scikit-learn ships (no download).

Root never follows a link here: every folder on the way is opened with O_NOFOLLOW, must be
root's and writable by root alone, and files are written through the folder's descriptor."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import stat
import subprocess
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from factoryhub.site import Dataset, Site


class DatasetSetupError(RuntimeError):
    """A data set's folder that root will not touch (a link, or not root's alone)."""


def load_members(path: str | Path) -> dict[str, tuple[str, ...]]:
    """hub_config/demo-datasets.toml: ``[members] group = ["user", …]``."""
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    members = raw.get("members", {})
    if set(raw) - {"members"} or not all(isinstance(v, list) for v in members.values()):
        raise DatasetSetupError(f"{path}: one table, [members], of group = [users]")
    return {group: tuple(users) for group, users in members.items()}


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def ensure_groups(site: Site, members: Mapping[str, Iterable[str]]) -> None:
    """Each data set's groups exist, with `members` (those accounts that exist) in them."""
    groups = sorted({g for dataset in site.datasets.values() for g in dataset.groups})
    for group in groups:
        if not _exists(grp.getgrnam, group):
            subprocess.run(["groupadd", group], check=True)
        # Slurm caches a user's groups (GroupUpdateTime, 10 min by default): a member added
        # now is in the group for jobs once that entry has expired or slurmctld restarted
        present = set(grp.getgrnam(group).gr_mem)
        for user in members.get(group, ()):
            if user not in present and _exists(pwd.getpwnam, user):
                subprocess.run(["usermod", "--append", "--groups", group, user], check=True)


def _open_dir(name: str, parent: int, create: bool) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
        os.mkdir(name, 0o755, dir_fd=parent)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:  # ELOOP / ENOTDIR: a link or a file where a folder should be
        raise DatasetSetupError(f"{name}: not a folder root may use ({exc.strerror})") from None
    info = os.fstat(fd)
    if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise DatasetSetupError(f"{name}: not root's alone; left as it is")
    return fd


def open_folder(path: str, start: str = "/") -> int:
    """A descriptor of `path` (under `start`), made where missing (0755), every component
    root's alone and none a link."""
    fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in Path(path).relative_to(start).parts:
            child = _open_dir(part, fd, create=True)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file(folder: int, name: str, data: bytes, gid: int) -> None:
    """`name` in `folder` holds `data`, root's, group `gid`, 0640; never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        fd = os.open(name, flags, 0o640, dir_fd=folder)
    except OSError as exc:
        raise DatasetSetupError(f"{name}: not a file root may write ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise DatasetSetupError(f"{name}: not a plain file of its own; left as it is")
        os.write(fd, data)
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)


def ensure_dataset(dataset: Dataset, files: Mapping[str, bytes]) -> None:
    """The data set's folder: root's, group its first group, 0750, with `files` in it."""
    gid = grp.getgrnam(dataset.groups[0]).gr_gid
    fd = open_folder(dataset.path)
    try:
        for name, data in files.items():
            write_file(fd, name, data, gid)
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o750)
    finally:
        os.close(fd)


def digits_files() -> dict[str, bytes]:
    """The digits set as scikit-learn ships it (found without importing scikit-learn)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetSetupError("scikit-learn is not installed: no digits data to share")
    base = Path(spec.origin).parent / "datasets"
    readme = (base / "descr" / "digits.rst").read_bytes()
    return {
        "digits.csv.gz": (base / "data" / "digits.csv.gz").read_bytes(),
        "README.rst": readme,
    }


EMBEDDED = {"digits": digits_files}  # the data sets the embedded site can write itself


def ensure_datasets(site: Site, members: Mapping[str, Iterable[str]]) -> list[str]:
    """The groups and, for each data set the demo knows how to make, its folder; returns the
    names written. A data set of another name is the site's own to provide."""
    ensure_groups(site, members)
    made = []
    for name, dataset in site.datasets.items():
        if name in EMBEDDED:
            ensure_dataset(dataset, EMBEDDED[name]())
            made.append(name)
    return made
