"""fh-act-as refuses whatever is not "run one of Slurm's programs as a learner" (issue 13,
finding 5); what it runs is checked on the real site (tests/integration/test_isolation_hub.py)."""

import os
import pwd
import shlex
import time

import pytest

from factoryhub.scheduler.actas import (
    ALLOCATE_THEN_STEP,
    ALLOCATION_ENV,
    Act,
    Refused,
    Rules,
    allocate_then_step,
    allocation_pipes,
    check,
    header,
    program_path,
    read_header,
)

RULES = Rules(group="root")


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["root", "sbatch"], "system account"),
        (["nobody", "sbatch"], "system account"),
        (["Root;rm", "sbatch"], "not a user name"),
        (["no-such-user-x", "sbatch"], "does not exist"),
        (["root"], "usage"),
        (["root", "sbatch", "x" * 5000], "too long"),
    ],
)
def test_only_learners_are_acted_as(argv, why):
    with pytest.raises(Refused, match=why):
        check(argv, "", {}, RULES)


@pytest.mark.parametrize(
    ("program", "args"),
    [
        ("bash", []),
        ("/usr/bin/sbatch", []),
        ("../sbatch", []),
        ("scontrol", []),
        ("setsid", ["--fork", "/bin/sh"]),
        ("setsid", ["/usr/bin/srun"]),
    ],
)
def test_only_the_listed_programs_run(program, args):
    with pytest.raises(Refused):
        program_path(program, args, Rules())


def test_the_listed_programs_come_from_the_helpers_own_bin_dir():
    rules = Rules(bin_dir="/opt/slurm/bin")
    assert program_path("sbatch", [], rules) == "/opt/slurm/bin/sbatch"
    assert program_path("setsid", ["--fork", "/opt/slurm/bin/srun"], rules) == "/usr/bin/setsid"
    assert program_path("tail", ["-n", "5"], rules) == "/usr/bin/tail"


def test_the_header_leaves_the_programs_own_stdin_in_place():
    read, write = os.pipe()
    os.write(write, header({"A": "1"}, "/home/x") + b"#!/bin/bash\ntrue\n")
    os.close(write)
    assert read_header(read) == ("/home/x", {"A": "1"})
    assert os.read(read, 100) == b"#!/bin/bash\ntrue\n"
    os.close(read)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"abc\n",
        b"99999999\n",
        b"5\n/x\0",
        b"3\n/x",
        b"8\n/\0A B=1\0",
        b"5\n/\0A\0",
        b"2\n\xff\0",
    ],
)
def test_a_malformed_header_is_refused(data):
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    with pytest.raises(Refused):
        read_header(read)
    os.close(read)


def test_the_audit_line_is_json_whatever_the_arguments_hold(tmp_path):
    import json
    import pwd

    from factoryhub.scheduler.actas import Act, audit

    log = tmp_path / "act-as.log"
    act = Act(
        pwd.getpwnam("root"),
        "/usr/bin/sbatch",
        ('--job-name=a"b\\c\n\x01', "é"),
        {"A": "secret"},
        "/",
    )
    audit(Rules(audit_log=str(log)), "factoryhub", act)
    entry = json.loads(log.read_text())
    assert entry["args"] == ['--job-name=a"b\\c\n\x01', "é"] and entry["env"] == ["A"]
    assert "secret" not in log.read_text()


def test_the_rules_file_sets_group_bin_dir_and_audit_log(tmp_path):
    from factoryhub.scheduler.actas import load_rules

    config = tmp_path / "act-as.conf"
    config.write_text("group = learners\nbin_dir = /opt/slurm/bin\nunknown = x\n")
    rules = load_rules(str(config))
    assert (rules.group, rules.bin_dir) == ("learners", "/opt/slurm/bin")
    assert load_rules(str(tmp_path / "absent")).group == "factoryhub"


def _stand_ins(bin_dir, salloc_says: str, salloc_exit: int) -> None:
    """A salloc that writes its environment and arguments and says `salloc_says`; an srun
    that writes its own."""
    bin_dir.mkdir()
    for name, tail in (
        ("salloc", f"printf '%s' {shlex.quote(salloc_says)} >&2; exit {salloc_exit}"),
        ("srun", ""),
    ):
        path = bin_dir / name
        path.write_text(
            f"#!/bin/sh\nenv > {bin_dir}/{name}.env\n"
            f'printf "%s\\n" "$@" > {bin_dir}/{name}.args\n{tail}\n'
        )
        path.chmod(0o755)


def _allocate_then_step(tmp_path, salloc_says: str, salloc_exit: int = 0) -> tuple[int, str]:
    """Runs the helper's one act in a child (it ends in exec), stderr to a file of ours."""
    bin_dir = tmp_path / "bin"
    _stand_ins(bin_dir, salloc_says, salloc_exit)
    account = pwd.getpwuid(os.getuid())
    env = {"SLURM_CONF": "/etc/slurm/slurm.conf", "JUPYTERHUB_API_TOKEN": "secret", "HOME": "/h"}
    act = Act(account, str(bin_dir / "salloc"), ("2", "--partition=cpu", "--time=5",
              "--ntasks=1", "/bin/true"), env, str(tmp_path))  # fmt: skip
    log = tmp_path / "log"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        fd = os.open(log, os.O_WRONLY | os.O_CREAT, 0o600)
        os.dup2(fd, 2)
        os._exit(allocate_then_step(act, str(bin_dir), allocation_pipes()))
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    for _ in range(100):  # setsid --fork: srun runs on after the helper
        if (bin_dir / "srun.args").exists() or status != 0:
            break
        time.sleep(0.05)
    time.sleep(0.1)
    return status, log.read_text()


def test_one_act_allocates_then_starts_the_step_with_the_secret_in_the_step_only(tmp_path):
    status, said = _allocate_then_step(tmp_path, "salloc: Granted job allocation 4242\n")
    bin_dir = tmp_path / "bin"
    assert status == 0 and "Granted job allocation 4242" in said  # the hub reads it there
    salloc_args = (bin_dir / "salloc.args").read_text().split()
    assert salloc_args == ["--immediate", "--no-shell", "--partition=cpu", "--time=5"]
    assert "secret" not in (bin_dir / "salloc.env").read_text()
    assert "SLURM_CONF=/etc/slurm/slurm.conf" in (bin_dir / "salloc.env").read_text()
    srun_args = (bin_dir / "srun.args").read_text().split()
    assert srun_args == ["--jobid=4242", "--ntasks=1", "/bin/true"]
    assert "JUPYTERHUB_API_TOKEN=secret" in (bin_dir / "srun.env").read_text()


@pytest.mark.parametrize(
    ("says", "code"),
    [
        ("salloc: error: Unable to allocate resources: Requested nodes are busy\n", 1),
        ("salloc: Granted job allocation x1\n", 0),  # no job id: nothing to step into
        ("", 0),
    ],
)
def test_without_a_grant_no_step_is_started(tmp_path, says, code):
    status, said = _allocate_then_step(tmp_path, says, code)
    assert status != 0 and said == says
    assert not (tmp_path / "bin" / "srun.args").exists()


def test_the_one_act_takes_the_number_of_sallocs_arguments_first():
    for args in ([], ["x", "--partition=cpu"], ["3", "a", "b"]):
        with pytest.raises(Refused, match="number of salloc"):
            program_path(ALLOCATE_THEN_STEP, args, Rules())
    assert program_path(ALLOCATE_THEN_STEP, ["1", "a", "b"], Rules(bin_dir="/s")) == "/s/salloc"


def test_the_allocation_environment_is_the_hubs_command_environment():
    from factoryhub.scheduler.slurm import PASSED_ENV

    assert set(PASSED_ENV) | {"PATH", "HOME", "USER", "LOGNAME"} == set(ALLOCATION_ENV)
