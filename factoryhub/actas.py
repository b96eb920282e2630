"""`fh-act-as`: the one way the hub and its service act as a learner.

The hub, the proxy and the service run as unprivileged system users. What the hub must still do
as a learner — submit, allocate, start a step, cancel, read the end of a session log — goes
through this small program, which sudo runs as root for the hub's account only
(deploy/sudoers.d/factoryhub), in the spirit of sudospawner:

    sudo -n /opt/factoryhub/bin/fh-act-as <user> <program> [args …]
    stdin: "<n>\\n" and n bytes of JSON {"env": {…}, "cwd": "…"}, then the program's own stdin

It refuses anything but a learner (a member of the login group, uid ≥ 1000, never root) and a
program of a fixed list, drops to the learner's uid, gids and groups *before* it touches their
directory, and runs the program with exactly the environment it was given plus HOME, USER and
LOGNAME: no variable of root's or the hub's. Each act is written to an audit log (names of the
variables, never their values). What the hub could do through it is only what the learner could
do themselves.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HELPER = "/opt/factoryhub/bin/fh-act-as"
SUDO = "/usr/bin/sudo"
CONFIG = Path("/etc/factoryhub/act-as.json")  # root's: {"group", "bin_dir", "audit_log"}
PROGRAMS = ("sbatch", "salloc", "srun", "scancel")  # from Slurm's bin_dir
SYSTEM_PROGRAMS = {"tail": "/usr/bin/tail", "setsid": "/usr/bin/setsid"}
MAX_HEADER = 256 * 1024
MAX_ARGS = 64
MAX_ARG = 4096
UID_MIN = 1000
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.ASCII)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)


class Refused(Exception):
    """A request this helper does not carry out; the message says why."""


@dataclass(frozen=True)
class Rules:
    group: str = "factoryhub"
    bin_dir: str = "/usr/bin"
    audit_log: str = "/var/log/factoryhub/act-as.log"


@dataclass(frozen=True)
class Act:
    """One checked request."""

    user: pwd.struct_passwd
    program: str  # absolute path
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str


def load_rules(path: Path = CONFIG) -> Rules:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Rules()
    return Rules(**{k: str(v) for k, v in raw.items() if k in Rules.__dataclass_fields__})


def prefix() -> list[str]:
    """How the caller starts the helper: through sudo, or directly when it already is root."""
    return [HELPER] if os.geteuid() == 0 else [SUDO, "-n", HELPER]


def header(env: Mapping[str, str], cwd: str = "") -> bytes:
    """What the caller writes first on the helper's stdin ("" for cwd: the learner's home)."""
    request: dict[str, object] = {"env": dict(env)}
    if cwd:
        request["cwd"] = cwd
    body = json.dumps(request).encode()
    return b"%d\n" % len(body) + body


def read_header(fd: int = 0) -> dict:
    """The request's JSON, read without consuming a byte of the program's own stdin."""
    digits = b""
    while not digits.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte or len(digits) > 8:
            raise Refused("no request header on stdin")
        digits += byte
    if not digits.strip().isdigit() or int(digits) > MAX_HEADER:
        raise Refused("malformed request header")
    size, body = int(digits), b""
    while len(body) < size:
        chunk = os.read(fd, size - len(body))
        if not chunk:
            raise Refused("request header cut short")
        body += chunk
    try:
        return json.loads(body)
    except ValueError:
        raise Refused("request header is not JSON") from None


def learner(name: str, rules: Rules) -> pwd.struct_passwd:
    """`name`'s account if it is a learner this helper may act as."""
    if not _USER.fullmatch(name):
        raise Refused(f"{name[:40]!r} is not a user name")
    try:
        account = pwd.getpwnam(name)
        group = grp.getgrnam(rules.group)
    except KeyError:
        raise Refused(f"{name} or the group {rules.group} does not exist") from None
    if account.pw_uid < UID_MIN or account.pw_uid == 65534:
        raise Refused(f"{name} is a system account")
    if name not in group.gr_mem and account.pw_gid != group.gr_gid:
        raise Refused(f"{name} is not in the group {rules.group}")
    return account


def program_path(name: str, args: Sequence[str], rules: Rules) -> str:
    if name in PROGRAMS:
        return os.path.join(rules.bin_dir, name)
    if name == "setsid":  # only to detach a session's srun from the hub
        if list(args[:2]) != ["--fork", os.path.join(rules.bin_dir, "srun")]:
            raise Refused("setsid runs only --fork srun")
        return SYSTEM_PROGRAMS[name]
    if name == "tail":
        return SYSTEM_PROGRAMS[name]
    raise Refused(f"{name[:40]!r} is not a program the hub runs as a learner")


def check(argv: Sequence[str], request: Mapping, rules: Rules) -> Act:
    """The act `argv` and the header ask for, or `Refused` (pure but for account lookups)."""
    if len(argv) < 2:
        raise Refused("usage: fh-act-as <user> <program> [args …]")
    name, program, args = argv[0], argv[1], tuple(argv[2:])
    if len(args) > MAX_ARGS or any(len(a) > MAX_ARG or "\0" in a for a in args):
        raise Refused("too many or too long arguments")
    account = learner(name, rules)
    path = program_path(program, args, rules)
    env, cwd = request.get("env", {}), request.get("cwd", account.pw_dir)
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and _VARIABLE.fullmatch(k) and isinstance(v, str) and "\0" not in v
        for k, v in env.items()
    ):
        raise Refused("the environment must map variable names to strings")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise Refused("the working directory must be an absolute path")
    env = {**env, "HOME": account.pw_dir, "USER": name, "LOGNAME": name}
    return Act(account, path, args, env, cwd)


def audit(rules: Rules, caller: str, act: Act | None = None, **refusal: object) -> None:
    """One JSON line per act or refusal: who asked, as whom, what; variable names only (tokens
    travel in the environment)."""
    entry: dict[str, object] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "caller": caller}
    if act is not None:
        entry.update(
            user=act.user.pw_name,
            program=act.program,
            args=[a[:200] for a in act.args],
            env=sorted(act.env),
            cwd=act.cwd[:200],
        )
    entry.update(refusal)
    path = Path(rules.audit_log)
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "a") as log:
        log.write(json.dumps(entry) + "\n")


def become(account: pwd.struct_passwd) -> None:
    """Drop to `account` for good: its groups, gid and uid, in that order."""
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    if os.getuid() != account.pw_uid or os.geteuid() != account.pw_uid:
        raise Refused("could not drop privileges")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rules = load_rules()
    caller = os.environ.get("SUDO_USER", str(os.getuid()))
    try:
        act = check(argv, read_header(), rules)
        audit(rules, caller, act)
        become(act.user)
        os.chdir(act.cwd)  # as the learner: their links are followed with their rights only
    except (Refused, OSError) as exc:
        print(f"fh-act-as: refused: {exc}", file=sys.stderr)
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                audit(rules, caller, refused=str(exc)[:300], argv=[a[:60] for a in argv[:2]])
        return 126
    os.execve(act.program, [act.program, *act.args], act.env)  # noqa: S606 - argv, no shell
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
