"""Workshops on the test site, for the integration and browser tests: the command as root,
and what a workshop left behind, found and removed by hand when a test failed half-way."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from pathlib import Path

from realsite import FACTORYHUB

COURSE = "first-steps"
RECORDS = Path("/etc/factoryhub/workshops/test")
TRAINER_FILES = Path("/srv/factoryhub-test/workshops")


def workshop_cmd(hub, *args: str) -> subprocess.CompletedProcess:
    argv = [FACTORYHUB, "workshop", "--site", str(hub.site_path), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)


def unique(tag: str) -> str:
    return f"tw{tag}{os.getpid() % 100000}"


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def slurm_account_exists(account: str) -> bool:
    out = subprocess.run(
        ["sacctmgr", "-n", "-P", "show", "account", account, "format=account"],
        capture_output=True,
        text=True,
    ).stdout
    return account in out.split()


def reservation_line(name: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "reservation", name, "--oneliner"], capture_output=True, text=True
    ).stdout.strip()


def _state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def left_behind(name: str) -> list[str]:
    """What a workshop named `name` left on the site."""
    found = []
    if slurm_account_exists(f"ws-{name}"):
        found.append(f"Slurm account ws-{name}")
    if reservation_line(f"ws-{name}").startswith("ReservationName"):
        found.append(f"reservation ws-{name}")
    found += [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(f"ws-{name}-")]
    found += [g.gr_name for g in grp.getgrall() if g.gr_name.startswith(f"ws-{name}-")]
    for path in (RECORDS / f"{name}.json", TRAINER_FILES / name):
        if path.exists():
            found.append(str(path))
    return found


def remove_by_hand(name: str) -> None:
    """What a failed test left: reservation, jobs, users, associations, groups, files."""
    account = f"ws-{name}"
    subprocess.run(["scontrol", "delete", f"ReservationName={account}"], capture_output=True)
    subprocess.run(["scancel", f"--account={account}"], capture_output=True)
    subprocess.run(
        ["sacctmgr", "-i", "remove", "user", "where", f"account={account}"], capture_output=True
    )
    subprocess.run(["sacctmgr", "-i", "remove", "account", account], capture_output=True)
    for user in [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(f"{account}-")]:
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        subprocess.run(["userdel", "--remove", user], capture_output=True)
    subprocess.run(["groupdel", f"{account}-trainers"], capture_output=True)
    subprocess.run(["rm", "-rf", str(RECORDS / f"{name}.json"), str(TRAINER_FILES / name)])
