"""Demo accounts: real Unix users with passwords, in the group allowed to log in."""

from __future__ import annotations

import grp
import pwd
import subprocess

from .site import DemoAccount


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def ensure_accounts(accounts: tuple[DemoAccount, ...], group: str) -> list[str]:
    """Create missing users and the group, (re)set passwords; return the names created."""
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
    return created
