"""Shared data sets in notebooks: ``factoryhub.datasets.path("digits")``.

site.toml's ``[datasets]`` names each set, its read-only folder and the Unix groups that may
read it. The file system enforces that (the folder is root's, group-readable by those groups
only); this module only finds the folder and says clearly when it is not open to you, instead
of a bare PermissionError.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .site import SITE_ENV, Dataset, Site, SiteError, site_from_data

LINK_FOLDER = "datasets"  # ~/datasets/<name> in every session of those allowed


class DatasetError(LookupError):
    """A data set that is not on this site or not open to this account."""


@dataclass(frozen=True)
class DatasetView:
    """One data set as a page or a notebook lists it, for one user."""

    name: str
    dataset: Dataset
    allowed: bool


def groups_of(user: str) -> tuple[str, ...]:
    """The Unix groups of `user` (the primary one included); () for an unknown user."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return ()
    names = []
    for gid in os.getgrouplist(user, account.pw_gid):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return tuple(names)


def my_groups() -> tuple[str, ...]:
    """The groups of the running process (what the file system checks)."""
    names = []
    for gid in {os.getegid(), *os.getgroups()}:
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return tuple(names)


def may_read(dataset: Dataset, groups: tuple[str, ...]) -> bool:
    return any(group in dataset.groups for group in groups)


def datasets_for(site: Site, groups: tuple[str, ...]) -> list[DatasetView]:
    """Every data set of the site, by name, and whether `groups` may read it."""
    return [
        DatasetView(name, dataset, may_read(dataset, groups))
        for name, dataset in sorted(site.datasets.items())
    ]


def session_site(environ: Mapping[str, str]) -> Site:
    """The public site the spawner exported into the session (`DatasetError` outside one)."""
    text = environ.get(SITE_ENV)
    if not text:
        raise DatasetError(
            f"{SITE_ENV} is not set: data sets are found inside a FactoryHub session"
        )
    try:
        return site_from_data(json.loads(text))
    except (json.JSONDecodeError, SiteError) as exc:
        raise DatasetError(f"{SITE_ENV} cannot be read: {exc}") from None


def path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The folder of data set `name`, for reading, in a notebook of a FactoryHub session.

    Raises `DatasetError` when the site has no such set or your account is not in one of its
    groups (the file system would refuse you anyway)."""
    site = session_site(os.environ if environ is None else environ)
    dataset = site.datasets.get(name)
    if dataset is None:
        offered = ", ".join(sorted(site.datasets)) or "none"
        raise DatasetError(f"no data set {name!r} on this site (offered: {offered})")
    if not may_read(dataset, my_groups()):
        groups = ", ".join(dataset.groups)
        raise DatasetError(
            f"the data set {name!r} is open to the groups {groups} only; ask your site's"
            " support centre for access"
        )
    return Path(dataset.path)


def available(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of the data sets open to you in this session."""
    site = session_site(os.environ if environ is None else environ)
    return [view.name for view in datasets_for(site, my_groups()) if view.allowed]
