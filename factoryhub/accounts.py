"""Demo accounts: real Unix users with passwords, in the group allowed to log in, and in the
Slurm accounts site.toml's [access] grants them where the site keeps an accounting database."""

from __future__ import annotations

import grp
import pwd
import subprocess

from .accounting import accounting_enabled, ensure_associations
from .embedded import SLURM_ETC
from .site import AccessSettings, DemoAccount


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def ensure_accounts(
    accounts: tuple[DemoAccount, ...], group: str, access: AccessSettings
) -> list[str]:
    """Create missing users and the group, (re)set passwords, and give each the Slurm
    associations `access` grants (with slurmdbd); return the names created."""
    if not _exists(grp.getgrnam, group):
        subprocess.run(["groupadd", group], check=True)
    created = []
    for account in accounts:
        if not _exists(pwd.getpwnam, account.name):
            subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/bash", account.name], check=True
            )
            created.append(account.name)
        subprocess.run(["usermod", "--append", "--groups", group, account.name], check=True)
        subprocess.run(
            ["chpasswd"], input=f"{account.name}:{account.password}\n", text=True, check=True
        )
    conf = SLURM_ETC / "slurm.conf"
    if conf.exists() and accounting_enabled(conf.read_text()):
        ensure_associations(access, [account.name for account in accounts])
    return created
