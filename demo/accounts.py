"""Demo accounts: real Unix users with passwords, in the group allowed to log in, and in the
Slurm accounts site.toml's [access] grants them where the site keeps an accounting database.
Homes are private (0700): a learner's notebooks, course copies and session logs are theirs."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess

from factoryhub.site import AccessSettings, DemoAccount

from .accounting import accounting_enabled, ensure_associations
from .embedded import SLURM_ETC


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
