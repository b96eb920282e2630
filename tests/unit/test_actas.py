"""fh-act-as refuses whatever is not "run one of Slurm's programs as a learner" (issue 13,
finding 5); what it runs is checked on the real site (tests/integration/test_isolation_hub.py)."""

import os

import pytest

from factoryhub.scheduler.actas import Refused, Rules, check, header, program_path, read_header

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
