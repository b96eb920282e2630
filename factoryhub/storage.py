"""Storage tiers as the site declares them: home, project and scratch, each with its quota and
purge rule (pure). `storage_plan` says which folder each learner and project gets, with its
owner, group, mode and limit; the embedded site makes them (`factoryhub.demo.storage`), a real
site has its own file systems and only describes them here, for the course and the usage
command (`factoryhub storage usage`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,200}", re.ASCII)
TIERS = ("home", "project", "scratch")


class StorageError(ValueError):
    """A storage setting that cannot be used; the message names the key."""


@dataclass(frozen=True)
class StorageTier:
    """One tier: where it is, each folder's quota in MiB (0: none enforced), the purge rule (files
    not modified for `purge_days` days are deleted; 0: never) and, on the embedded site, the
    size of the file system made for it (`size_mb`)."""

    path: str = ""
    quota_mb: int = 0
    purge_days: int = 0
    size_mb: int = 0
    description: str = ""


@dataclass(frozen=True)
class StorageSettings:
    """The site's storage. `projects` maps each project (a Slurm account) to the Unix group
    whose members share its folder. `embedded_images`: the folder where the embedded site
    keeps a btrfs image per tier that has a `size_mb` (quotas are btrfs quota groups, one per
    folder); empty on a real site, whose file systems exist already."""

    home: StorageTier = field(default_factory=lambda: StorageTier(path="/home"))
    project: StorageTier = field(default_factory=StorageTier)
    scratch: StorageTier = field(default_factory=StorageTier)
    projects: dict[str, str] = field(default_factory=dict)
    embedded_images: str = ""

    def tier(self, name: str) -> StorageTier:
        return getattr(self, name)


@dataclass(frozen=True)
class StorageFolder:
    """A folder the site gives a learner (their scratch) or a project (its shared folder)."""

    tier: str
    path: str
    owner: str  # a Unix user; "root" for a project's folder
    group: str  # the learner's own group is given as "" (their primary group)
    mode: int
    quota_mb: int


def check_storage(storage: StorageSettings) -> None:
    for name in TIERS:
        tier = storage.tier(name)
        where = f"storage.{name}"
        if tier.path and (not _PATH.fullmatch(tier.path) or "/../" in f"{tier.path}/"):
            raise StorageError(f"{where}.path: {tier.path!r} is not an absolute path")
        if min(tier.quota_mb, tier.purge_days, tier.size_mb) < 0:
            raise StorageError(f"{where}: quota_mb, purge_days and size_mb are 0 or more")
        if tier.size_mb and not storage.embedded_images:
            raise StorageError(f"{where}.size_mb: only with storage.embedded_images")
        if tier.size_mb and tier.quota_mb > tier.size_mb:
            raise StorageError(f"{where}.quota_mb: larger than the tier ({tier.size_mb} MB)")
    if storage.embedded_images and not _PATH.fullmatch(storage.embedded_images):
        raise StorageError("storage.embedded_images: not an absolute path")
    for project, group in storage.projects.items():
        if not _NAME.fullmatch(project) or not _NAME.fullmatch(group):
            raise StorageError(f"storage.projects.{project}: names are a-z, 0-9, - and _")
    if storage.projects and not storage.project.path:
        raise StorageError("storage.projects: the project tier has no path")


def storage_plan(storage: StorageSettings, users: Iterable[str]) -> list[StorageFolder]:
    """Each learner's scratch folder (theirs alone, 0700) and each project's folder (root's,
    the project's group, 2770: members share it, the group inherited by what they make,
    nobody else may enter)."""
    folders = []
    if storage.scratch.path:
        for user in sorted(set(users)):
            if _NAME.fullmatch(user):
                path = f"{storage.scratch.path}/{user}"
                folders.append(
                    StorageFolder("scratch", path, user, "", 0o700, storage.scratch.quota_mb)
                )
    for project, group in sorted(storage.projects.items()):
        path = f"{storage.project.path}/{project}"
        folders.append(
            StorageFolder("project", path, "root", group, 0o2770, storage.project.quota_mb)
        )
    return folders


def project_members(
    project: str, accounts: Mapping[str, tuple[str, ...]], everyone: Iterable[str]
) -> list[str]:
    """Who is in a project's group: the users the site lets charge its Slurm account ("*":
    `everyone`)."""
    allowed = accounts.get(project, ())
    return sorted(set(everyone) if "*" in allowed else set(allowed))


def describe_tier(name: str, tier: StorageTier) -> str:
    """One sentence a learner reads about a tier."""
    quota = f"quota {tier.quota_mb} MiB" if tier.quota_mb else "no quota enforced"
    purge = (
        f"files not modified for {tier.purge_days} days are deleted"
        if tier.purge_days
        else "never purged"
    )
    per = "per project" if name == "project" else "per user"
    return f"{name} ({tier.path}): {quota} {per if tier.quota_mb else ''}; {purge}".replace(
        "  ", " "
    ).replace(" ;", ";")
