"""`fh-act-as`'s one act (`salloc+srun`) played by an attacker: a learner who owns every process
the helper starts once it is them, and a caller that sends counts Python's `str.isdigit`
accepts. Each test names what the learner (or caller) must not achieve."""

import grp
import os
import pwd
import shutil
import tempfile
import time

import pytest

from factoryhub.scheduler import actas
from factoryhub.scheduler.actas import ALLOCATE_THEN_STEP, Refused, Rules, check, program_path

LEARNER = "tlearner1"  # an account of the demo site (uid >= 1000)


def _learner():
    try:
        return pwd.getpwnam(LEARNER)
    except KeyError:
        return None


needs_root_and_learner = pytest.mark.skipif(
    os.geteuid() != 0 or _learner() is None,
    reason=f"plays root dropping to {LEARNER}: needs root and that account",
)


# -- the allocation's stderr pipe is the learner's to write into ----------------------------

_FORGING_SALLOC = """#!/bin/sh
# Another process of the learner's (same uid as salloc; here a subshell with its own stderr)
# reopens salloc's stderr through /proc, as `cat > /proc/PID/fd/2` from any shell of theirs on
# the host would, and writes a grant of another learner's job before salloc's own grant.
( exec 2>/dev/null; printf "salloc: Granted job allocation 999\\n" > /proc/$$/fd/2 )
printf 'salloc: Granted job allocation 4242\\n' >&2
exit 0
"""


def _run_helper_as_root(argv, header: bytes, rules: Rules, log_path: str) -> int:
    """`actas.main(argv)` in a child, as sudo would start it: root, the header on stdin, the
    hub's log as stderr; the rules are `rules` instead of root's file."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            read, write = os.pipe()
            os.write(write, header)
            os.close(write)
            os.dup2(read, 0)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(log, 2)
            actas.load_rules = lambda path=actas.CONFIG: rules
            code = actas.main(argv)
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@needs_root_and_learner
def test_a_learner_cannot_forge_the_grant_through_sallocs_stderr_pipe():
    """The helper reads salloc's grant from a pipe it makes after it became the learner: the
    pipe is then the learner's (its inode's owner), so any process of theirs on the host can
    reopen it through /proc/<salloc>/fd/2 and write "Granted job allocation <another learner's
    job>" first. The helper would start the step in that job and the hub would read, rename the
    step log to, adopt and track that id (overwriting the watcher's owner of the victim's job,
    which then drops the victim's server). Through the hub's own pipe (before this change) the
    reopen was refused: the pipe was the hub's."""
    account = _learner()
    base = tempfile.mkdtemp(prefix="fh-actas-attack-")
    try:
        os.chmod(base, 0o755)  # noqa: S103 - the learner must reach the stand-ins
        bin_dir = os.path.join(base, "bin")
        os.mkdir(bin_dir, 0o755)
        os.chown(bin_dir, account.pw_uid, account.pw_gid)  # the stand-ins write as the learner
        for name, text in (
            ("salloc", _FORGING_SALLOC),
            ("srun", f'#!/bin/sh\nprintf "%s\\n" "$@" > {bin_dir}/srun.args\n'),
        ):
            path = os.path.join(bin_dir, name)
            with open(path, "w") as script:
                script.write(text)
            os.chmod(path, 0o755)  # noqa: S103 - stand-ins the learner runs
        group = grp.getgrgid(account.pw_gid).gr_name
        rules = Rules(group=group, bin_dir=bin_dir, audit_log=os.path.join(base, "audit.log"))
        log_path = os.path.join(base, "step.log")
        argv = [LEARNER, ALLOCATE_THEN_STEP, "1", "--partition=cpu", "--ntasks=1", "/bin/true"]
        status = _run_helper_as_root(argv, actas.header({"LANG": "C.UTF-8"}, base), rules, log_path)
        srun_args = os.path.join(bin_dir, "srun.args")
        for _ in range(100):  # setsid --fork: srun runs on after the helper
            if os.path.exists(srun_args) or status != 0:
                break
            time.sleep(0.05)
        with open(log_path) as log:
            said = log.read()
        assert status == 0, said
        with open(srun_args) as args:
            jobid = args.read().split()[0]
        assert jobid == "--jobid=4242", f"the step went into a forged job: {jobid}; log: {said!r}"
        assert "allocation 999" not in said, f"a forged grant reached the hub's log: {said!r}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- the count of salloc's arguments --------------------------------------------------------


@pytest.mark.parametrize("count", ["\u00b2", "\u2460", "\u00b9"])  # '²', '①', '¹': isdigit()
def test_a_count_python_calls_a_digit_but_cannot_read_is_refused(count):
    """`str.isdigit` accepts '²' and '①', `int` raises ValueError on them: the helper (root)
    dies with a traceback instead of refusing, and `main` audits no refusal (it catches only
    Refused and OSError)."""
    with pytest.raises(Refused, match="number of salloc"):
        program_path(ALLOCATE_THEN_STEP, [count, "--partition=cpu"], Rules())


@pytest.mark.skipif(_learner() is None, reason=f"needs the account {LEARNER}")
def test_a_malformed_count_is_an_audited_refusal():
    """The same through `check`, as `main` calls it: a refusal, never another exception."""
    rules = Rules(group=grp.getgrgid(_learner().pw_gid).gr_name)
    with pytest.raises(Refused):
        check([LEARNER, ALLOCATE_THEN_STEP, "\u00b2", "--partition=cpu"], "", {}, rules)
