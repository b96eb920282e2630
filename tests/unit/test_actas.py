"""fh-act-as refuses whatever is not "run one of Slurm's programs as a learner" (issue 13,
finding 5); what it runs is checked on the real site (tests/integration/test_isolation_hub.py)."""

import os

import pytest

from factoryhub.actas import Refused, Rules, check, header, program_path, read_header

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
        check(argv, {}, RULES)


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
    assert read_header(read) == {"env": {"A": "1"}, "cwd": "/home/x"}
    assert os.read(read, 100) == b"#!/bin/bash\ntrue\n"
    os.close(read)


@pytest.mark.parametrize("data", [b"", b"abc\n", b"99999999\n", b"5\n{", b"3\n[1"])
def test_a_malformed_header_is_refused(data):
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    with pytest.raises(Refused):
        read_header(read)
    os.close(read)
