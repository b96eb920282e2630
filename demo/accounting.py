"""The embedded site's accounting database: MariaDB, slurmdbd, the cluster's QoS and each
user's associations, kept as a real site's administrators keep them with `sacctmgr`.

FactoryHub itself only reads the database (`SlurmClient.associations`); this module is the
demo site's administrator, through the admin side of the one Slurm seam
(`factoryhub.scheduler.admin.SlurmAdmin`). Idempotent: each step looks first and changes only
what differs. MariaDB runs without networking; slurmdbd reaches it over its Unix socket as the
`slurm` user, authenticated by the socket's peer (no password anywhere).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from factoryhub.scheduler.admin import SlurmAdmin, run_now
from factoryhub.site import AccessSettings
from factoryhub.slurmoutput import SlurmError

from .daemons import run_daemon, spawn_daemon, stop_daemon, wait_for

DB_DATA = Path("/var/lib/mysql")
DB_RUN = Path("/run/mysqld")
DB_PID = Path("/run/slurm/mariadb.pid")  # ours; mariadbd (as mysql) writes its own in DB_RUN
DB_SOCKET = DB_RUN / "mysqld.sock"
DB_LOG = Path("/var/log/mysql/factoryhub-mariadb.log")
DBD_PID = Path("/run/slurm/slurmdbd.pid")
DBD_PORT = 6819
# slurmdbd warns below these (its documented recommendations)
DB_ARGV = [
    "/usr/sbin/mariadbd",
    "--user=mysql",
    "--skip-networking",
    f"--pid-file={DB_RUN / 'mysqld.pid'}",
    f"--socket={DB_SOCKET}",
    "--innodb-buffer-pool-size=1G",
    "--innodb-lock-wait-timeout=900",
]
DB_GRANT = (
    "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;"
    " GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
)
_QOS_SETTING = re.compile(r"(MaxWall|MaxTRESPerJob|MaxTRESPerUser|Priority|Flags)=[\w/=:,.-]+")
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


class AccountingError(RuntimeError):
    """A `sacctmgr` step of the embedded site failed; the message is its own."""


def accounting_enabled(slurm_conf: str) -> bool:
    """True when slurm.conf stores accounting in slurmdbd (pure)."""
    return bool(
        re.search(r"^AccountingStorageType=accounting_storage/slurmdbd\s*$", slurm_conf, re.M)
    )


def cluster_name(slurm_conf: str) -> str:
    match = re.search(r"^ClusterName=(\S+)", slurm_conf, re.M)
    return match.group(1) if match else "cluster"


def parse_qos_conf(text: str) -> dict[str, list[str]]:
    """`deploy/slurm/qos.conf`: one QoS a line, its name then `sacctmgr` settings (pure);
    anything outside the allow-list is an error, not a command."""
    qos: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, settings = words[0], words[1:]
        bad = [w for w in settings if not _QOS_SETTING.fullmatch(w)]
        if not _NAME.fullmatch(name) or bad:
            raise AccountingError(f"qos.conf line {number}: not understood: {line.strip()[:80]}")
        qos[name] = settings
    return qos


def _sacctmgr(*args: str) -> str:
    try:
        return run_now(SlurmAdmin().sacctmgr(*args))
    except SlurmError as exc:
        raise AccountingError(str(exc)) from None


def _rows(*what: str) -> list[list[str]]:
    try:
        return run_now(SlurmAdmin().rows(*what))
    except SlurmError as exc:
        raise AccountingError(str(exc)) from None


def _accepts(address: str | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(address) == 0


def ensure_database() -> None:
    """MariaDB up, with the `slurm` database user slurmdbd logs in as."""
    if not (DB_DATA / "mysql").is_dir():  # Debian's package creates it; a wiped one is remade
        subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={DB_DATA}"], check=True)
    DB_RUN.mkdir(parents=True, exist_ok=True)
    shutil.chown(DB_RUN, "mysql", "mysql")
    DB_LOG.parent.mkdir(parents=True, exist_ok=True)
    shutil.chown(DB_LOG.parent, "mysql", "adm")
    if not _accepts(str(DB_SOCKET)):  # one already serving (e.g. the distribution's) will do
        spawn_daemon(DB_ARGV, DB_PID, DB_LOG)
    wait_for(lambda: _accepts(str(DB_SOCKET)), 60, "MariaDB", interval=0.1)
    subprocess.run(["mariadb", f"--socket={DB_SOCKET}", "-e", DB_GRANT], check=True, timeout=30)


def ensure_slurmdbd(cluster: str) -> None:
    """slurmdbd up and answering, and `cluster` registered in it (slurmctld registers its
    nodes and TRES when it starts)."""
    run_daemon(["/usr/sbin/slurmdbd"], DBD_PID)
    wait_for(lambda: _accepts(("127.0.0.1", DBD_PORT)), 60, "slurmdbd", interval=0.1)
    if [cluster] not in _rows("cluster", "format=Cluster"):
        _sacctmgr("add", "cluster", cluster)


def ensure_qos(qos: Mapping[str, list[str]]) -> None:
    """Every QoS of `qos.conf` with its settings (GPU limits need slurmctld to have registered
    the gres/gpu TRES first: waited for)."""
    if any("gres/" in s for settings in qos.values() for s in settings):
        wait_for(lambda: ["gres", "gpu"] in _rows("tres", "format=Type,Name"), 30, "gres/gpu TRES")
    known = {row[0] for row in _rows("qos", "format=Name")}
    for name, settings in qos.items():
        if name not in known:
            _sacctmgr("add", "qos", name)
        if settings:
            _sacctmgr("modify", "qos", "where", f"name={name}", "set", *settings)


def ensure_operator(user: str) -> bool:
    """`user` (the hub's own system account) a Slurm operator, so that with `PrivateData` it
    still sees every learner's jobs and records; True when that changed anything. Its
    association (in `root`, which every cluster has) may submit no job of its own."""
    for name, level in _rows("user", "where", f"name={user}", "format=User,AdminLevel"):
        if name == user and level == "Operator":
            return False
        if name == user:
            _sacctmgr("modify", "user", user, "set", "adminlevel=Operator")
            return True
    _sacctmgr("add", "user", user, "account=root", "adminlevel=Operator", "maxsubmitjobs=0")
    return True


def plan_associations(
    access: AccessSettings,
    users: Iterable[str],
    existing: Mapping[str, Mapping[str, frozenset[str]]],
    defaults: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """`sacctmgr` arguments that give each of `users` the accounts and QoS [access] grants
    them, the first its default (pure). `existing` is user → account → QoS, `defaults` user →
    default account. Users needing the same addition share one command; nothing is removed."""
    defaults = defaults or {}
    additions: dict[tuple[str, ...], list[str]] = {}
    changes: list[list[str]] = []
    names = [*sorted(set(users)), *access.accounts, *access.qos]
    if bad := [n for n in names if n != "*" and not _NAME.fullmatch(n)]:
        raise AccountingError(f"not a user, account or QoS name Slurm takes: {bad[0][:40]!r}")
    for user in sorted(set(users)):
        accounts, qos = access.accounts_of(user), access.qos_of(user)
        if not accounts:
            continue
        have = existing.get(user, {})
        missing = tuple(a for a in accounts if a not in have)
        if missing:
            args = [f"account={','.join(missing)}"]
            if qos:
                args += [f"qos={','.join(qos)}", f"defaultqos={qos[0]}"]
            if not have:
                args.append(f"defaultaccount={accounts[0]}")
            additions.setdefault(tuple(args), []).append(user)
        if have and defaults.get(user, accounts[0]) != accounts[0]:
            changes.append(["modify", "user", user, "set", f"defaultaccount={accounts[0]}"])
        for account in accounts:
            if account in have and qos and have[account] != frozenset(qos):
                where = ["where", f"user={user}", f"account={account}"]
                changes.append(["modify", "user", *where, "set", f"qos={','.join(qos)}"])
    adds = [["add", "user", f"name={','.join(names)}", *args] for args, names in additions.items()]
    return adds + changes


# Each demo account's allocation, in TRES-minutes (GrpTRESMins): what Slurm lets its jobs use
# in all (usage is reset monthly, slurm.conf) and what the spawn form and the GPU widget show.
# Generous, since the tests' accounts charge the same Slurm accounts.
DEMO_BUDGETS = {
    "ai-research": "GrpTRESMins=cpu=600000,gres/gpu=60000",  # 10,000 CPU-h, 1,000 GPU-h
    "training": "GrpTRESMins=cpu=6000000,gres/gpu=600000",  # 100,000 CPU-h, 10,000 GPU-h
}


def ensure_budgets(budgets: Mapping[str, str] = DEMO_BUDGETS) -> int:
    """Each existing account of `budgets` has its GrpTRESMins; returns the changes made."""
    have = {
        account: limits
        for account, user, limits in _rows("association", "format=Account,User,GrpTRESMins")
        if not user
    }
    changes = 0
    for account, setting in budgets.items():
        wanted = setting.removeprefix("GrpTRESMins=")
        if account in have and parse_tres_text(have[account]) != parse_tres_text(wanted):
            try:
                run_now(SlurmAdmin().set_account_limits(account, [setting]))
            except SlurmError as exc:
                raise AccountingError(str(exc)) from None
            changes += 1
    return changes


def parse_tres_text(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def ensure_associations(access: AccessSettings, users: Iterable[str]) -> int:
    """Accounts of [access] exist, and `users` are in those [access] grants them; returns the
    number of `sacctmgr` changes made."""
    have_accounts = {row[0] for row in _rows("account", "format=Account")}
    for account in access.accounts:
        if account not in have_accounts:
            _sacctmgr("add", "account", account, f"description={account}", "organization=demo")
    existing: dict[str, dict[str, frozenset[str]]] = {}
    for user, account, qos in _rows("associations", "format=User,Account,QOS"):
        if user:
            existing.setdefault(user, {})[account] = frozenset(q for q in qos.split(",") if q)
    defaults = {user: account for user, account in _rows("user", "format=User,DefaultAccount")}
    plan = plan_associations(access, users, existing, defaults)
    for args in plan:
        _sacctmgr(*args)
    return len(plan) + ensure_budgets()


def stop_accounting() -> None:
    stop_daemon(DBD_PID)
    stop_daemon(DB_PID, timeout=60)
