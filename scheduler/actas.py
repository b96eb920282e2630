"""`fh-act-as`: the one way the hub and its service act as a learner.

The hub, the proxy and the service run as unprivileged system users. What the hub must still do
as a learner — submit, allocate, start a step, cancel, read the end of a session log — goes
through this small program, which sudo runs as root for the hub's account only
(deploy/sudoers.d/factoryhub), in the spirit of sudospawner:

    sudo -n /opt/factoryhub/bin/fh-act-as <user> <program> [args …]
    stdin: "<n>\\n" and n bytes: the working directory, then KEY=VALUE entries, each ended by
           a NUL byte; then the program's own stdin

It refuses anything but a learner (a member of the login group, uid ≥ 1000, never root) and a
program of a fixed list, drops to the learner's uid, gids and groups *before* it touches their
directory, and runs the program with exactly the environment it was given plus HOME, USER and
LOGNAME: no variable of root's or the hub's. Each act and each refusal is written to an audit log
(names of the variables, never their values). What the hub could do through it is only what the
learner could do themselves.

It is installed as a copy of this file run by the system's Python with ``-I -S`` and imports
only what Python starts with (os, sys, pwd, grp, time): it is on the spawn path once per start
(`ALLOCATE_THEN_STEP`), so it starts in about 10 ms, and it trusts no package outside the
standard library.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
import time

HELPER = "/opt/factoryhub/bin/fh-act-as"
SUDO = "/usr/bin/sudo"
CONFIG = "/etc/factoryhub/act-as.conf"  # root's: "group = …", "bin_dir = …", "audit_log = …"
PROGRAMS = ("sbatch", "salloc", "srun", "scancel")  # from Slurm's bin_dir
SYSTEM_PROGRAMS = {"tail": "/usr/bin/tail", "setsid": "/usr/bin/setsid"}
# A session's immediate start in one act instead of two: `salloc --immediate --no-shell` with
# the first N arguments, then, once granted, `setsid --fork srun --jobid=ID` with the rest.
ALLOCATE_THEN_STEP = "salloc+srun"
ALLOCATION_ENV = ("LANG", "LC_ALL", "TZ", "SLURM_CONF", "PATH", "HOME", "USER", "LOGNAME")
GRANTED = "Granted job allocation "
MAX_SALLOC_OUTPUT = 64 * 1024
MAX_HEADER = 256 * 1024
MAX_ARGS = 64
MAX_ARG = 4096
UID_MIN = 1000
_NAME_FIRST = "abcdefghijklmnopqrstuvwxyz_"
_NAME_REST = _NAME_FIRST + "0123456789.-"
_VARIABLE_FIRST = _NAME_FIRST + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VARIABLE_REST = _VARIABLE_FIRST + "0123456789"


class Refused(Exception):
    """A request this helper does not carry out; the message says why."""


class Rules:
    """Where the helper looks and whom it serves; root's to change in `CONFIG`."""

    __slots__ = ("audit_log", "bin_dir", "group")

    def __init__(
        self,
        group: str = "factoryhub",
        bin_dir: str = "/usr/bin",
        audit_log: str = "/var/log/factoryhub/act-as.log",
    ) -> None:
        self.group, self.bin_dir, self.audit_log = group, bin_dir, audit_log


class Act:
    """One checked request."""

    __slots__ = ("args", "cwd", "env", "name", "program", "user")

    def __init__(self, user, program: str, args: tuple, env: dict, cwd: str, name: str = ""):
        self.user, self.program, self.args, self.env, self.cwd = user, program, args, env, cwd
        self.name = name  # as asked: a program's, or ALLOCATE_THEN_STEP


def load_rules(path: str = CONFIG) -> Rules:
    """`key = value` lines of `path` (group, bin_dir, audit_log); defaults where it is absent."""
    try:
        with open(path, encoding="utf-8") as config:
            lines = config.read().splitlines()
    except FileNotFoundError:
        return Rules()
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() in Rules.__slots__:
            values[key.strip()] = value.strip()
    return Rules(**values)


def prefix() -> list[str]:
    """How the caller starts the helper: through sudo, or directly when it already is root."""
    return [HELPER] if os.geteuid() == 0 else [SUDO, "-n", HELPER]


def header(env: dict[str, str], cwd: str = "") -> bytes:
    """What the caller writes first on the helper's stdin ("" for cwd: the learner's home)."""
    entries = [cwd, *(f"{key}={value}" for key, value in env.items())]
    body = b"".join(entry.encode() + b"\0" for entry in entries)
    return b"%d\n" % len(body) + body


def read_header(fd: int = 0) -> tuple[str, dict[str, str]]:
    """The working directory and environment, read without consuming a byte of the program's
    own stdin."""
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
        entries = body.decode().split("\0")
    except UnicodeDecodeError:
        raise Refused("request header is not UTF-8") from None
    if len(entries) < 2 or entries[-1] != "":
        raise Refused("malformed request header")
    cwd, env = entries[0], {}
    for entry in entries[1:-1]:
        key, sep, value = entry.partition("=")
        if not sep or not _is_variable(key):
            raise Refused(f"{key[:40]!r} is not a variable name")
        env[key] = value
    return cwd, env


def _is_variable(name: str) -> bool:
    return (
        0 < len(name) <= 128
        and name[0] in _VARIABLE_FIRST
        and all(c in _VARIABLE_REST for c in name)
    )


def _is_user_name(name: str) -> bool:
    return 0 < len(name) <= 32 and name[0] in _NAME_FIRST and all(c in _NAME_REST for c in name)


def learner(name: str, rules: Rules):
    """`name`'s account (a `pwd.struct_passwd`) if it is a learner this helper may act as."""
    if not _is_user_name(name):
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


def program_path(name: str, args, rules: Rules) -> str:
    if name in PROGRAMS:
        return os.path.join(rules.bin_dir, name)
    if name == ALLOCATE_THEN_STEP:
        count = args[0] if args else ""
        if not (count.isascii() and count.isdecimal()) or int(count) > len(args) - 1:
            raise Refused(f"{ALLOCATE_THEN_STEP} takes the number of salloc's arguments first")
        return os.path.join(rules.bin_dir, "salloc")
    if name == "setsid":  # only to detach a session's srun from the hub
        if list(args[:2]) != ["--fork", os.path.join(rules.bin_dir, "srun")]:
            raise Refused("setsid runs only --fork srun")
        return SYSTEM_PROGRAMS[name]
    if name == "tail":
        return SYSTEM_PROGRAMS[name]
    raise Refused(f"{name[:40]!r} is not a program the hub runs as a learner")


def check(argv, cwd: str, env: dict[str, str], rules: Rules) -> Act:
    """The act `argv` and the header ask for, or `Refused` (pure but for account lookups)."""
    if len(argv) < 2:
        raise Refused("usage: fh-act-as <user> <program> [args …]")
    name, program, args = argv[0], argv[1], tuple(argv[2:])
    if len(args) > MAX_ARGS or any(len(a) > MAX_ARG or "\0" in a for a in args):
        raise Refused("too many or too long arguments")
    account = learner(name, rules)
    path = program_path(program, args, rules)
    cwd = cwd or account.pw_dir
    if not cwd.startswith("/"):
        raise Refused("the working directory must be an absolute path")
    env = {**env, "HOME": account.pw_dir, "USER": name, "LOGNAME": name}
    return Act(account, path, args, env, cwd, program)


_JSON_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _json(value) -> str:
    """A JSON text of strings and lists of strings (the audit line needs nothing more)."""
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    return '"' + str(value).translate(_JSON_ESCAPES) + '"'


def audit(rules: Rules, caller: str, act: Act | None = None, **refusal: object) -> None:
    """One JSON line per act or refusal: who asked, as whom, what; variable names only (tokens
    travel in the environment)."""
    entry: dict[str, object] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "caller": caller}
    if act is not None:
        entry.update(
            user=act.user.pw_name,
            program=act.name if act.name == ALLOCATE_THEN_STEP else act.program,
            args=[a[:200] for a in act.args],
            env=sorted(act.env),
            cwd=act.cwd[:200],
        )
    entry.update(refusal)
    line = "{" + ", ".join(f"{_json(k)}: {_json(v)}" for k, v in entry.items()) + "}\n"
    os.makedirs(os.path.dirname(rules.audit_log), mode=0o750, exist_ok=True)
    fd = os.open(rules.audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def become(account) -> None:
    """Drop to `account` for good: its groups, gid and uid, in that order."""
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    if os.getuid() != account.pw_uid or os.geteuid() != account.pw_uid:
        raise Refused("could not drop privileges")


def granted_job(said: str) -> str:
    """The job id of salloc's one line "salloc: Granted job allocation N" (ASCII digits), ""
    when it is not there exactly so."""
    for line in said.splitlines():
        if line.startswith("salloc: " + GRANTED):
            job_id = line[len("salloc: " + GRANTED) :]
            if job_id.isascii() and job_id.isdecimal():
                return job_id
    return ""


def allocation_pipes() -> tuple[int, int, int]:
    """salloc's stderr pipe (read, write) and /dev/null, opened while still root: the pipe's
    inode is then root's, and no other process of the learner's can reopen it through
    /proc/<salloc>/fd/2 to write a grant of another job before salloc's own."""
    read, write = os.pipe()
    return read, write, os.open(os.devnull, os.O_RDWR)


def allocate_then_step(act: Act, bin_dir: str, pipes: tuple[int, int, int]) -> int:
    """As the learner (after `become`): `salloc --immediate --no-shell` with the allocation's
    arguments and only the `ALLOCATION_ENV` variables (no token in salloc's environment);
    salloc's messages to our stderr (the hub's step log, where the hub reads the grant); once
    granted, `setsid --fork srun --jobid=ID` with the step's arguments and the whole
    environment in our place. Without a grant, salloc's status (1 when it had none)."""
    count = int(act.args[0])
    allocation, step = act.args[1 : 1 + count], act.args[1 + count :]
    env = {key: value for key, value in act.env.items() if key in ALLOCATION_ENV}
    read, write, null = pipes
    salloc = [act.program, "--immediate", "--no-shell", *allocation]
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, write, 2))
    pid = os.posix_spawn(act.program, salloc, env, file_actions=actions)
    os.close(write)
    os.close(null)
    said = b""
    while chunk := os.read(read, 65536):
        said = (said + chunk)[:MAX_SALLOC_OUTPUT]
    os.close(read)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    os.write(2, said)
    job_id = granted_job(said.decode(errors="replace"))
    if status != 0 or not job_id:
        return status if status > 0 else 1
    srun = os.path.join(bin_dir, "srun")
    setsid = SYSTEM_PROGRAMS["setsid"]
    argv = [setsid, "--fork", srun, f"--jobid={job_id}", *step]
    os.execve(setsid, argv, act.env)  # noqa: S606 - argv, no shell
    return 127  # not reached


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rules = load_rules()
    caller = os.environ.get("SUDO_USER", str(os.getuid()))
    try:
        cwd, env = read_header()
        act = check(argv, cwd, env, rules)
        audit(rules, caller, act)
        pipes = allocation_pipes() if act.name == ALLOCATE_THEN_STEP else None
        become(act.user)
        os.chdir(act.cwd)  # as the learner: their links are followed with their rights only
    except (Refused, OSError) as exc:
        print(f"fh-act-as: refused: {exc}", file=sys.stderr)
        if os.geteuid() == 0:
            try:  # noqa: SIM105 - contextlib is one import more on the spawn path
                audit(rules, caller, refused=str(exc)[:300], argv=[a[:60] for a in argv[:2]])
            except OSError:
                pass
        return 126
    if pipes is not None:
        return allocate_then_step(act, rules.bin_dir, pipes)
    os.execve(act.program, [act.program, *act.args], act.env)  # noqa: S606 - argv, no shell
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
