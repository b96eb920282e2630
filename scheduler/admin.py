"""The administrator's side of the one Slurm seam: the accounting database (`sacctmgr`:
accounts, users' associations, QoS, limits) and reservations (`scontrol`), as a site's
administrators keep them.

It runs its commands through the same `SlurmClient.run` as everything else (argv lists, a
deadline, the explicit environment, classified errors) and is used by whoever acts as the
site's Slurm administrator: the embedded site's set-up (`factoryhub.demo.accounting`) and the
support centre's commands (workshops). Names are checked against what Slurm takes before any
command runs, so no caller's text reaches `sacctmgr` or `scontrol` unchecked.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Iterable, Mapping
from typing import TypeVar

from factoryhub.capacity import Reservation, parse_reservations
from factoryhub.slurmoutput import SlurmError

from .slurm import SlurmClient

NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")  # users, accounts, QoS, reservations
_SETTING = re.compile(r"[A-Za-z]+=[\w/=:,.+-]*")  # Key=value as sacctmgr and scontrol take it
T = TypeVar("T")


class AdminError(SlurmError):
    """A name or setting Slurm would not take (refused before any command runs)."""


def checked_name(name: str, what: str = "name") -> str:
    if not NAME.fullmatch(name):
        raise AdminError(f"not a {what} Slurm takes: {name[:40]!r}")
    return name


def checked_settings(settings: Iterable[str]) -> list[str]:
    out = []
    for setting in settings:
        if not _SETTING.fullmatch(setting):
            raise AdminError(f"not a Key=value setting: {setting[:60]!r}")
        out.append(setting)
    return out


class SlurmAdmin:
    """Accounting and reservations, through `client`'s `run` (as the calling process: root or
    a Slurm operator/administrator)."""

    def __init__(self, client: SlurmClient | None = None) -> None:
        self.client = client or SlurmClient(timeout=60.0)

    def _cmd(self, name: str) -> str:
        return os.path.join(self.client.bin_dir, name)

    async def sacctmgr(self, *args: str) -> str:
        """`sacctmgr --immediate ARGS` (no prompt); its standard output."""
        argv = [self._cmd("sacctmgr"), "--immediate", *args]
        return (await self.client.run(argv)).stdout

    async def rows(self, *what: str) -> list[list[str]]:
        """`sacctmgr show WHAT` as rows of fields (parsable, no header)."""
        text = await self.sacctmgr("--noheader", "--parsable2", "show", *what)
        return [line.split("|") for line in text.splitlines() if line.strip()]

    async def accounts(self) -> set[str]:
        return {row[0] for row in await self.rows("account", "format=Account")}

    async def add_account(
        self,
        name: str,
        *,
        description: str = "",
        organization: str = "",
        limits: Iterable[str] = (),
    ) -> None:
        """A new account (its description and organization are names too: no free text)."""
        checked_name(name, "account name")
        args = ["add", "account", name]
        for key, value in (("description", description or name), ("organization", organization)):
            if value:
                args.append(f"{key}={checked_name(value, key)}")
        await self.sacctmgr(*args, *checked_settings(limits))

    async def set_account_limits(self, name: str, limits: Iterable[str]) -> None:
        """E.g. `GrpTRESMins=gres/gpu=600`: what the account's jobs may use in all."""
        checked_name(name, "account name")
        await self.sacctmgr(
            "modify", "account", "where", f"name={name}", "set", *checked_settings(limits)
        )

    async def remove_account(self, name: str) -> None:
        await self.sacctmgr("remove", "account", "where", f"name={checked_name(name)}")

    async def add_users(self, users: Iterable[str], settings: Iterable[str]) -> None:
        """Associations for `users` (one command), e.g. `account=a,b`, `defaultaccount=a`."""
        names = ",".join(checked_name(u, "user name") for u in sorted(set(users)))
        if names:
            await self.sacctmgr("add", "user", f"name={names}", *checked_settings(settings))

    async def modify_user(self, user: str, where: Iterable[str], settings: Iterable[str]) -> None:
        """`sacctmgr modify user [where …] set …`."""
        checked_name(user, "user name")
        condition = checked_settings(where)
        args = ["modify", "user", *(["where", f"user={user}", *condition] if condition else [user])]
        await self.sacctmgr(*args, "set", *checked_settings(settings))

    async def remove_user(self, user: str, account: str) -> None:
        where = [f"user={checked_name(user)}", f"account={checked_name(account)}"]
        await self.sacctmgr("remove", "user", "where", *where)

    async def remove_users(self, users: Iterable[str], account: str) -> None:
        """The associations of `users` with `account`, in one command."""
        names = ",".join(checked_name(u, "user name") for u in sorted(set(users)))
        if names:
            where = [f"name={names}", f"account={checked_name(account)}"]
            await self.sacctmgr("remove", "user", "where", *where)

    async def add_qos(self, name: str) -> None:
        await self.sacctmgr("add", "qos", checked_name(name, "QoS name"))

    async def set_qos(self, name: str, settings: Iterable[str]) -> None:
        checked_name(name, "QoS name")
        settings = checked_settings(settings)
        await self.sacctmgr("modify", "qos", "where", f"name={name}", "set", *settings)

    async def reservations(self) -> list[Reservation]:
        argv = [self._cmd("scontrol"), "show", "reservation", "--oneliner"]
        return list(parse_reservations((await self.client.run(argv)).stdout))

    async def create_reservation(self, name: str, settings: Mapping[str, str]) -> None:
        """`scontrol create reservation ReservationName=NAME Key=value…` (values checked)."""
        checked_name(name, "reservation name")
        pairs = checked_settings(f"{key}={value}" for key, value in settings.items())
        argv = [self._cmd("scontrol"), "create", "reservation", f"ReservationName={name}"]
        await self.client.run([*argv, *pairs])

    async def update_reservation(self, name: str, settings: Mapping[str, str]) -> None:
        checked_name(name, "reservation name")
        pairs = checked_settings(f"{key}={value}" for key, value in settings.items())
        argv = [self._cmd("scontrol"), "update", f"ReservationName={name}"]
        await self.client.run([*argv, *pairs])

    async def config(self) -> dict[str, str]:
        """`scontrol show config` as Key → value (what the controller runs with)."""
        shown = await self.client.run([self._cmd("scontrol"), "show", "config"])
        pairs = (line.split("=", 1) for line in shown.stdout.splitlines() if " = " in line)
        return {key.strip(): value.strip() for key, value in pairs}

    async def delete_reservation(self, name: str) -> None:
        argv = [self._cmd("scontrol"), "delete", f"ReservationName={checked_name(name)}"]
        await self.client.run(argv)

    async def cancel_account_jobs(self, account: str) -> None:
        """Every queued and running job charged to `account` (`scancel --account`)."""
        await self.client.run([self._cmd("scancel"), f"--account={checked_name(account)}"])

    async def queued_jobs(self, account: str) -> list[str]:
        """Ids of the jobs charged to `account` that are still queued or running."""
        argv = [self._cmd("squeue"), "--noheader", f"--account={checked_name(account)}"]
        out = (await self.client.run([*argv, "--format=%i"])).stdout
        return [line.strip() for line in out.splitlines() if line.strip().isdigit()]

    async def accounted_jobs(self, account: str, since: str, fields: str) -> str:
        """`sacct` rows (parsable, no header, one per allocation) of every job charged to
        `account` since `since` (a Slurm time), with `fields` (a comma list of names)."""
        if not re.fullmatch(r"[\dT:-]{10,19}", since) or not re.fullmatch(r"[A-Za-z,]+", fields):
            raise AdminError(f"not a sacct time or field list: {since[:30]!r} {fields[:60]!r}")
        argv = [self._cmd("sacct"), "--noheader", "--parsable2", "--allocations", "--allusers"]
        argv += [f"--accounts={checked_name(account)}", f"--starttime={since}", "--endtime=now"]
        return (await self.client.run([*argv, f"--format={fields}"])).stdout

    async def accounted_jobs_between(self, account: str, start: str, end: str, fields: str) -> str:
        """As `accounted_jobs`, cut to `start`–`end` (`--truncate`: the time each job ran
        inside the window), the figures `sreport` rolls up for the same window."""
        times = [t for t in (start, end) if re.fullmatch(r"[\dT:-]{10,19}", t)]
        if len(times) != 2 or not re.fullmatch(r"[A-Za-z,]+", fields):
            raise AdminError(f"not sacct times or fields: {start[:30]!r} {end[:30]!r}")
        argv = [self._cmd("sacct"), "--noheader", "--parsable2", "--allocations", "--allusers"]
        argv += [f"--accounts={checked_name(account)}", f"--starttime={start}"]
        argv += [f"--endtime={end}", "--truncate", f"--format={fields}"]
        return (await self.client.run(argv)).stdout

    async def rolled_up_usage(self, account: str, start: str, end: str) -> str:
        """`sreport` of `account` per user for `start`–`end` in CPU- and GPU-seconds (parsable,
        no header): what slurmdbd rolled up hourly, the site's usage reports' own figures."""
        if not all(re.fullmatch(r"[\dT:-]{10,19}", t) for t in (start, end)):
            raise AdminError(f"not sreport times: {start[:30]!r} {end[:30]!r}")
        argv = [self._cmd("sreport"), "--noheader", "--parsable2", "cluster"]
        argv += ["AccountUtilizationByUser", f"account={checked_name(account)}"]
        argv += [f"start={start}", f"end={end}", "--tres=cpu,gres/gpu", "-t", "seconds"]
        return (await self.client.run(argv)).stdout


def run_now(step: Awaitable[T]) -> T:
    """One admin step from synchronous code (the set-up and the command line)."""
    return asyncio.run(_awaited(step))


async def _awaited(step: Awaitable[T]) -> T:
    return await step
