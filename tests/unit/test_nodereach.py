"""`factoryhub site check --from-nodes` (pure parts, and the edge with a faked runner): the
addresses a session's server must reach, the probe job's argv, its output read back, and each
outcome one sentence: an address a node cannot reach is an error naming the partition, the node
and the address; a probe job that could not run is a warning that says why."""

from __future__ import annotations

import dataclasses
import os
import pwd
import socket

from factoryhub.cli import nodeprobe
from factoryhub.cli.sitecheck import RUNUSER, as_user, probe_nodes
from factoryhub.nodereach import (
    NodeProbe,
    parse_probe,
    probe_argv,
    reach_findings,
    reached_everything,
    session_addresses,
)
from factoryhub.scheduler.slurm import Completed
from factoryhub.sitecheck import exit_status
from factoryhub.slurmoutput import SlurmError


def test_a_session_must_reach_the_hubs_api_and_its_public_address(demo_site):
    api, public = session_addresses(demo_site, "hubhost")
    assert (str(api), str(public)) == ("127.0.0.1:8081", "127.0.0.1:8000")
    assert api.what == "the hub's API"


def test_a_hub_on_every_interface_is_reached_at_its_host_name_as_jupyterhub_does(demo_site):
    every_interface = "0.0.0.0"  # noqa: S104 - what the site says; nothing binds it
    hub = dataclasses.replace(demo_site.hub, hub_ip=every_interface, url="https://hub.example.org/")
    api, public = session_addresses(dataclasses.replace(demo_site, hub=hub), "hubhost")
    assert (str(api), str(public)) == ("hubhost:8081", "hub.example.org:443")


def test_the_probe_job_is_one_short_task_that_must_start_at_once(demo_site):
    addresses = session_addresses(demo_site, "hubhost")
    argv = probe_argv("/usr/bin/srun", "gpu", "/opt/factoryhub/venv/bin/python", addresses)
    assert argv[:9] == [
        "/usr/bin/srun",
        "--partition=gpu",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=1",
        "--mem=256M",
        "--time=1",
        "--immediate=30",
        "--job-name=fh-site-check",
    ]
    assert argv[-6:] == [
        "-I",
        "-m",
        "factoryhub.cli.nodeprobe",
        "--timeout=5",
        "127.0.0.1:8081",
        "127.0.0.1:8000",
    ]


PROBED = (
    "Lmod is automatically replacing something\n"  # a prologue's noise is passed over
    "node gn01\n"
    "reach 127.0.0.1 8081 connection refused (nothing listens there)\n"
    "reach 127.0.0.1 8000 ok\n"
)


def test_the_probes_output_is_read_back_past_other_lines():
    assert parse_probe(PROBED) == (
        "gn01",
        {
            ("127.0.0.1", 8081): "connection refused (nothing listens there)",
            ("127.0.0.1", 8000): "ok",
        },
    )


def test_an_address_a_node_cannot_reach_is_an_error_naming_partition_node_and_address(demo_site):
    addresses = session_addresses(demo_site, "hubhost")
    (finding,) = reach_findings((NodeProbe("gpu", addresses, output=PROBED),))
    assert finding.level == "error"
    assert finding.text.startswith(
        "from a node of partition gpu (gn01), the hub's API at 127.0.0.1:8081 is not reachable:"
        " connection refused (nothing listens there): its sessions can never report to the hub"
    )
    assert exit_status([finding]) == 2


def test_a_node_that_reaches_everything_has_nothing_to_say(demo_site):
    addresses = session_addresses(demo_site, "hubhost")
    output = "node cn01\nreach 127.0.0.1 8081 ok\nreach 127.0.0.1 8000 ok\n"
    probes = (
        NodeProbe("cpu", addresses, output=output),
        NodeProbe("gpu", addresses, output=PROBED),
    )
    assert reach_findings(probes[:1]) == []
    assert reached_everything(probes) == (
        "from a node of cpu (cn01): 127.0.0.1:8081 and 127.0.0.1:8000 reachable"
    )


def test_a_probe_job_that_did_not_run_or_said_nothing_is_a_warning(demo_site):
    addresses = session_addresses(demo_site, "hubhost")
    refused = (
        "srun failed (exit 1): srun: error: Unable to allocate resources: Requested nodes are busy"
    )
    findings = reach_findings(
        (
            NodeProbe("debug", addresses, failure=refused),
            NodeProbe("cpu", addresses, output="python: No module named factoryhub\n"),
        )
    )
    assert [f.level for f in findings] == ["warning"] * 3
    assert findings[0].text == (
        f"could not check partition debug from its nodes: the probe job did not run ({refused})"
    )
    assert findings[1].text.startswith(
        "from a node of partition cpu (unnamed), the probe said nothing of the hub's API at"
        " 127.0.0.1:8081 (its output: 'python: No module named factoryhub')"
    )
    assert exit_status(findings) == 1


class FakeRunner:
    """Stands in for `SlurmClient.run`: a probe's output per partition, or Slurm's refusal."""

    def __init__(self, answers: dict[str, str | SlurmError]) -> None:
        self.answers = answers
        self.argvs: list[list[str]] = []

    async def run(self, argv: list[str], **_: object) -> Completed:
        self.argvs.append(argv)
        answer = self.answers[next(a for a in argv if a.startswith("--partition="))[12:]]
        if isinstance(answer, SlurmError):
            raise answer
        return Completed(0, answer, "")


async def test_each_partition_gets_one_probe_job_as_the_named_account(demo_site):
    answers: dict[str, str | SlurmError] = {name: PROBED for name in demo_site.partitions}
    answers["debug"] = SlurmError(  # srun's stderr, two lines, as Slurm prints it
        "runuser failed (exit 1): srun: error: AssocMaxSubmitJobLimit\n"
        "srun: error: Unable to allocate resources: Job violates accounting/QOS policy"
    )
    fake = FakeRunner(answers)
    probes = await probe_nodes(demo_site, "nobody", fake)  # type: ignore[arg-type]
    # not the partition kept for workshops: Slurm takes a job there only on a reservation
    assert sorted(p.partition for p in probes) == ["cpu", "debug", "gpu"]
    assert "training" in demo_site.partitions and len(fake.argvs) == 3
    if os.geteuid() == 0:  # root drops to the account; nobody else may act for it
        assert all(argv[:4] == [RUNUSER, "-u", "nobody", "--"] for argv in fake.argvs)
    failed = {p.partition: p.failure for p in probes if p.failure}
    assert failed == {  # one line: a finding is one sentence
        "debug": "srun failed (exit 1): srun: error: AssocMaxSubmitJobLimit srun: error: Unable"
        " to allocate resources: Job violates accounting/QOS policy"
    }


async def test_root_is_never_the_probes_account(demo_site):
    fake = FakeRunner({})
    probes = await probe_nodes(demo_site, "root", fake)  # type: ignore[arg-type]
    assert fake.argvs == []
    assert all("never run as root" in p.failure for p in probes)


def test_only_root_acts_for_another_account():
    nobody = pwd.getpwnam("nobody").pw_uid
    assert as_user("nobody", 0) == ([RUNUSER, "-u", "nobody", "--"], "")
    assert as_user("nobody", nobody) == ([], "")
    assert (
        as_user("nobody", nobody + 1)[1] == "only root or nobody can run the probe jobs as nobody"
    )
    assert "no account of this host" in as_user("no-such-user-x", 0)[1]


def test_the_probe_says_ok_or_why_not_for_each_address(capsys, monkeypatch):
    monkeypatch.setenv("SLURMD_NODENAME", "cn02")
    with socket.create_server(("127.0.0.1", 0)) as listening:
        open_port = listening.getsockname()[1]
        with socket.create_server(("127.0.0.1", 0)) as closed:
            closed_port = closed.getsockname()[1]
        assert (
            nodeprobe.main(["--timeout=2", f"127.0.0.1:{open_port}", f"127.0.0.1:{closed_port}"])
            == 0
        )
    node, reached = parse_probe(capsys.readouterr().out)
    assert node == "cn02"
    assert reached == {
        ("127.0.0.1", open_port): "ok",
        ("127.0.0.1", closed_port): "connection refused (nothing listens there)",
    }
