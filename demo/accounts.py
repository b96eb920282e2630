"""Demo accounts: real Unix users with passwords, in the group allowed to log in, and in the
Slurm accounts site.toml's [access] grants them where the site keeps an accounting database.
Homes are private (0700): a learner's notebooks, course copies and session logs are theirs."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from factoryhub.site import AccessSettings, Site

from .accounting import accounting_enabled, ensure_associations
from .embedded import SLURM_ETC

ROLES = ("admin", "trainer", "learner")


@dataclass(frozen=True)
class DemoAccount:
    """A Unix account the embedded demo creates, with its password (never on a real site)."""

    name: str
    password: str
    role: str = "learner"


class DemoAccountsError(ValueError):
    """hub_config/demo-accounts.toml says something the demo cannot do."""


def load_demo_accounts(path: str | Path, site: Site) -> tuple[DemoAccount, ...]:
    """The demo's accounts from their own file (`[[account]]` tables of name, password, role).
    A role must be one site.toml gives the name: admins in `[hub] admin_users`, trainers in
    `[hub] trainers`, so the accounts printed by `make demo` are what they say they are."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DemoAccountsError(f"{path}: {exc}") from None
    if unknown := sorted(set(raw) - {"account"}):
        raise DemoAccountsError(f"{path}: unknown table {unknown[0]!r} (allowed: account)")
    accounts = []
    for i, entry in enumerate(raw.get("account", [])):
        where = f"{path}: account[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "password", "role"}:
            raise DemoAccountsError(f"{where}: keys are name, password and role")
        try:
            account = DemoAccount(**entry)
        except TypeError:
            raise DemoAccountsError(f"{where}: name and password are required") from None
        if account.role not in ROLES:
            raise DemoAccountsError(f"{where}: role {account.role!r} is not one of {ROLES}")
        given = (
            "admin"
            if account.name in site.hub.admin_users
            else "trainer"
            if account.name in site.hub.trainers
            else "learner"
        )
        if given != account.role:
            raise DemoAccountsError(
                f"{where}: {account.name} is a {given} in site.toml, not a {account.role}"
            )
        accounts.append(account)
    return tuple(accounts)


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


HOME_MODE = 0o700


def ensure_private_home(user: str) -> bool:
    """`user`'s home directory mode 0700 (only its owner may enter); True when changed.
    Homes made 0755 by an earlier version are fixed by the next run."""
    home = pwd.getpwnam(user).pw_dir
    if not os.path.isdir(home):
        return False
    mode = stat.S_IMODE(os.stat(home).st_mode)
    if mode == HOME_MODE:
        return False
    os.chmod(home, HOME_MODE)
    return True


def ensure_accounts(
    accounts: tuple[DemoAccount, ...], group: str, access: AccessSettings
) -> list[str]:
    """Create missing users and the group, make homes private, (re)set passwords, and give
    each the Slurm associations `access` grants (with slurmdbd); return the names created."""
    if not _exists(grp.getgrnam, group):
        subprocess.run(["groupadd", group], check=True)
    created = []
    for account in accounts:
        if not _exists(pwd.getpwnam, account.name):
            subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/bash", account.name], check=True
            )
            created.append(account.name)
        ensure_private_home(account.name)
        subprocess.run(["usermod", "--append", "--groups", group, account.name], check=True)
        subprocess.run(
            ["chpasswd"], input=f"{account.name}:{account.password}\n", text=True, check=True
        )
    conf = SLURM_ETC / "slurm.conf"
    if conf.exists() and accounting_enabled(conf.read_text()):
        ensure_associations(access, [account.name for account in accounts])
    return created
