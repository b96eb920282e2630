"""Every parser of Slurm's output against each Slurm release FactoryHub supports: the fixtures of
`tests/unit/data/slurm/<release>/` (what each file is and where it comes from: its README).

The same scenario is printed by each release, so the same values must come out; where a
release prints something differently (the JSON data parser, job states as flag lists, the
reservation's Comment, new flags and node states), the fixture carries the difference and the
test says which release it is about.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest

from factoryhub.budget import parse_sshare
from factoryhub.capacity import parse_partitions, parse_reservations, parse_sinfo_nodes
from factoryhub.estimate import parse_test_only
from factoryhub.jobrecords import KNOWN_PARSERS, parse_job_table, parser_version, slurm_release
from factoryhub.jobstate import Phase, classify_state
from factoryhub.reasons import explain_pending
from factoryhub.slurmoutput import (
    Completed,
    SlurmError,
    parse_all_associations,
    parse_allocation,
    parse_consumed_energy,
    parse_job_id,
    parse_node_addresses,
    parse_ping,
    parse_position,
    parse_qos_limits,
)
from factoryhub.slurmversion import TESTED_RELEASES, check_slurm_version, parse_slurm_version
from factoryhub.workshopreport import parse_sacct

DATA = Path(__file__).parent / "data" / "slurm"
RELEASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())
T0 = 1796189000  # the scenario's clock (tests/unit/data/slurm/compose.py)
PARSERS = {
    "22.05": "v0.0.38",
    "23.02": "v0.0.39",
    "23.11": "v0.0.40",
    "24.05": "v0.0.41",
    "24.11": "v0.0.42",
    "25.05": "v0.0.43",
    "25.11": "v0.0.44",
}


def read(release: str, name: str) -> str:
    return (DATA / release / name).read_text()


def local(seconds: int) -> str:
    return datetime.fromtimestamp(seconds).isoformat(timespec="seconds")


def test_every_supported_release_has_fixtures_and_no_other():
    assert RELEASES == list(TESTED_RELEASES) == sorted(PARSERS)


# -- squeue --json (factoryhub.jobrecords) ---------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_the_data_parser_and_the_release_are_read_from_meta(release):
    meta = json.loads(read(release, "squeue.json"))["meta"]
    assert parser_version(meta) == PARSERS[release] and PARSERS[release] in KNOWN_PARSERS
    assert slurm_release(meta).startswith(release + ".")


@pytest.mark.parametrize("release", RELEASES)
def test_squeue_json_gives_the_same_jobs_in_every_release(release):
    table = parse_job_table(read(release, "squeue.json"), now=T0 + 610)
    assert not table.problems
    running, queued = table.jobs["101"], table.jobs["102"]
    assert (running.state, running.user, running.nodes) == ("RUNNING", "alice", "gn01")
    assert running.comment == "fhport:8888" and running.name == "fh:demo:alice:"
    assert running.start == local(T0 + 10) and running.end == local(T0 + 3610)
    assert running.time_left == "50:00"
    assert (queued.state, queued.reason, queued.nodes) == ("PENDING", "Resources", "")
    assert queued.start == local(T0 + 7200) and queued.submit == local(T0)
    job = table.user_jobs["101"]
    assert (job.partition, job.cpus, job.gpus, job.qos) == ("gpu", "4", 1, "normal")
    assert job.time_limit == "1:00:00" and job.time_used == "10:00"
    assert table.user_jobs["102"].time_limit == "2:00:00"
    assert table.user_jobs["104"].time_limit == "UNLIMITED"


@pytest.mark.parametrize("release", RELEASES)
def test_a_state_flag_reads_as_the_word_slurm_prints_for_it(release):
    """From 23.11 (v0.0.40) a state is a list, base state first: ["RUNNING", "CONFIGURING"],
    ["COMPLETED", "COMPLETING"]. Read as its first word a booting job would look running and a
    completing one over; read as squeue's text and 22.05's JSON print it, they do not."""
    jobs = parse_job_table(read(release, "squeue.json"), now=T0 + 610).jobs
    assert jobs["103"].state == "CONFIGURING"
    assert classify_state(jobs["103"].state) is Phase.STARTING
    assert jobs["104"].state == "COMPLETING"
    assert classify_state(jobs["104"].state) is Phase.ENDING


def test_slurm_25_11_expediting_a_requeue_is_queued():
    jobs = parse_job_table(read("25.11", "squeue.json"), now=T0).jobs
    assert jobs["105"].state == "EXPEDITING"
    assert classify_state(jobs["105"].state) is Phase.QUEUED


@pytest.mark.parametrize("release", RELEASES)
def test_a_data_parser_newer_than_known_is_refused_naming_the_slurm(release):
    data = json.loads(read(release, "squeue.json"))
    meta = data["meta"]
    for holder in (meta.get("plugin"), meta.get("plugins")):
        if isinstance(holder, dict):
            holder.update({"type": "openapi/v0.0.99"} if holder.get("type") else {})
            if "data_parser" in holder:
                holder["data_parser"] = "data_parser/v0.0.99"
    with pytest.raises(SlurmError, match=rf"Slurm {release}\.\d+ uses data parser v0\.0\.99"):
        parse_job_table(json.dumps(data))


def test_the_2205_json_recorded_live_still_reads():
    live = (DATA.parent / "squeue-22.05.json").read_text()
    assert sorted(parse_job_table(live, now=T0).jobs) == ["3", "5", "6"]


# -- scontrol show reservation (factoryhub.capacity) -----------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_reservations_in_every_release(release):
    workshop, maintenance = parse_reservations(read(release, "scontrol_show_reservation.txt"))
    assert (workshop.name, workshop.users, workshop.accounts) == (
        "ws-intro",
        ("alice", "bob"),
        ("ws-intro",),
    )
    assert workshop.active and workshop.state == "ACTIVE" and workshop.cores == 8
    assert (workshop.start, workshop.end) == ("2026-12-02T09:00:00", "2026-12-02T17:00:00")
    assert workshop.nodes == "cn[01-02]" and workshop.partition == ""
    assert not workshop.maintenance and "PURGE_COMP=00:05:00" in workshop.flags
    assert maintenance.maintenance and not maintenance.active and maintenance.accounts == ()


@pytest.mark.parametrize("release", [r for r in RELEASES if r >= "23.02"])
def test_a_reservations_comment_is_not_read_as_its_fields(release):
    """23.02 prints an admin's Comment last, free text: its Key=value words are not fields."""
    text = read(release, "scontrol_show_reservation.txt")
    assert "Comment=Intro workshop State=INACTIVE Users=mallory" in text
    workshop = parse_reservations(text)[0]
    assert workshop.users == ("alice", "bob") and workshop.state == "ACTIVE"


@pytest.mark.parametrize(("release", "flag"), [("24.05", "USER_DELETE"), ("25.05", "FORCE_START")])
def test_new_reservation_flags_are_kept_and_mean_no_maintenance(release, flag):
    workshop = parse_reservations(read(release, "scontrol_show_reservation.txt"))[0]
    assert flag in workshop.flags and not workshop.maintenance


# -- sinfo, scontrol show partition / node, ping ---------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_sinfo_nodes_in_every_release(release):
    nodes = {(n.name, n.partition): n for n in parse_sinfo_nodes(read(release, "sinfo_nodes.txt"))}
    gpu = nodes[("gn01", "gpu")]
    assert gpu.gpus_total == {"h100": 4} and gpu.gpus_used == {"h100": 1}
    assert gpu.usable and gpu.cpus_idle == 12 and gpu.memory_alloc_mb == 16384
    assert nodes[("cn01", "cpu")].cpus_total == 32 and nodes[("cn02", "debug")].usable


@pytest.mark.parametrize(("release", "state"), [("24.05", "block"), ("25.05", "ext")])
def test_node_states_new_in_a_release_take_no_sessions(release, state):
    nodes = {n.name: n for n in parse_sinfo_nodes(read(release, "sinfo_nodes.txt"))}
    assert nodes["xn01"].state == state and not nodes["xn01"].usable


@pytest.mark.parametrize("release", RELEASES)
def test_partitions_in_every_release(release):
    parts = parse_partitions(read(release, "scontrol_show_partition.txt"))
    assert (parts["cpu"].max_minutes, parts["cpu"].default_minutes) == (720, 60)
    assert parts["gpu"].max_minutes == 1440 and parts["debug"].max_minutes == 30
    assert parts["cpu"].up


@pytest.mark.parametrize("release", RELEASES)
def test_node_addresses_and_ping_in_every_release(release):
    addresses = parse_node_addresses(read(release, "scontrol_show_node.txt"))
    assert {"cn01", "cn02", "gn01"} <= set(addresses)
    assert all(addresses.values())
    assert parse_ping(read(release, "scontrol_ping.txt"))


def test_node_addresses_are_nodeaddr_not_the_name():
    assert parse_node_addresses(read("22.05", "scontrol_show_node.txt"))["cn01"] == "127.0.0.1"
    assert parse_node_addresses(read("25.05", "scontrol_show_node.txt"))["gn01"] == (
        "gn01.ib.factory"
    )


# -- scontrol show config and --version (the version rule) -----------------------------------


class _Answers:
    """Enough of a Slurm client for `SlurmAdmin.config`: one canned answer."""

    bin_dir = "/usr/bin"

    def __init__(self, stdout: str) -> None:
        self.stdout = stdout

    async def run(self, argv: list[str], **_: object) -> Completed:
        assert argv[1:] == ["show", "config"]
        return Completed(0, self.stdout, "")


@pytest.mark.parametrize("release", RELEASES)
def test_scontrol_show_config_in_every_release(release):
    from factoryhub.scheduler.admin import SlurmAdmin

    admin = SlurmAdmin(_Answers(read(release, "scontrol_show_config.txt")))
    config = asyncio.run(admin.config())
    assert config["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert config["SLURM_VERSION"].startswith(release + ".")
    assert check_slurm_version(config["SLURM_VERSION"]).supported


@pytest.mark.parametrize("release", RELEASES)
def test_the_version_each_release_prints_is_supported(release):
    printed = read(release, "scontrol_version.txt")
    check = check_slurm_version(printed, "Slurm's commands")
    assert check.supported and check.version is not None
    assert check.version.release == release


# -- accounting: sacct, sacctmgr, sshare ------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_sacct_in_every_release(release):
    jobs = {j.job_id: j for j in parse_sacct(read(release, "sacct_workshop.txt"))}
    assert sorted(jobs, key=int) == ["10", "11", "12", "31", "176", "883"]
    assert (jobs["11"].user, jobs["11"].state, jobs["11"].cpus, jobs["11"].gpus) == (
        "bob",
        "CANCELLED",
        2,
        2,
    )
    assert jobs["883"].seconds == 21 and jobs["883"].joules is None
    assert jobs["10"].joules == 0.0 and jobs["176"].state == "NODE_FAIL"
    assert parse_consumed_energy(read(release, "sacct_energy.txt")) == {
        "10": 0.0,
        "11": 0.0,
        "12": 0.0,
    }


@pytest.mark.parametrize("release", RELEASES)
def test_sacctmgr_in_every_release(release):
    users = parse_all_associations(read(release, "sacctmgr_assoc.txt"))
    assert users["alice"].accounts == ("training", "ai-research")
    assert users["trainer"].qos == ("normal", "long")
    limits = {q.name: q for q in parse_qos_limits(read(release, "sacctmgr_qos.txt"))}
    assert limits["normal"].max_walltime_minutes == 720
    assert (limits["normal"].max_gpus_per_job, limits["normal"].max_gpus_per_user) == (2, 4)
    assert limits["long"].max_walltime_minutes == 1440


@pytest.mark.parametrize("release", RELEASES)
def test_sshare_in_every_release(release):
    budgets = parse_sshare(read(release, "sshare.txt"))
    assert set(budgets) == {"root", "ai-research", "training"}
    training = budgets["training"]
    assert training.limits == {"cpu": 6000000, "gres/gpu": 600000}
    assert (training.used["gres/gpu"], training.running["gres/gpu"]) == (21, 13)


@pytest.mark.parametrize("release", RELEASES)
def test_sreport_in_every_release(release):
    from factoryhub.workshoprollup import parse_sreport

    rolled = parse_sreport(read(release, "sreport_account_by_user.txt"), "training")
    assert rolled.total == {"cpu": 219096, "gres/gpu": 1151}
    assert rolled.users["bob"] == {"cpu": 206, "gres/gpu": 22}
    assert parse_sreport(read(release, "sreport_account_by_user.txt"), "ws-intro").users == {}


# -- submission answers -----------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_submission_answers_in_every_release(release):
    assert parse_job_id(read(release, "sbatch_parsable.txt")) == "4243"
    assert parse_position(read(release, "squeue_ids.txt"), "4243") == 2
    assert parse_allocation(read(release, "salloc.txt")) == "4242"
    answer = read(release, "sbatch_test_only.txt")
    assert parse_test_only(answer) == datetime(2026, 12, 2, 12, 40)


def test_slurm_25_05_names_the_cluster_in_test_only_answers():
    assert "on cluster factory a using" in read("25.05", "sbatch_test_only.txt")
    assert "on cluster" not in read("24.11", "sbatch_test_only.txt")


@pytest.mark.parametrize(
    "reason",
    ["QOSGrpJobsLimit", "AssocGrpJobsLimit", "MaxGRESRunMinsPerUser", "MpiPortsBusy"],
)
def test_pending_reasons_new_in_24_05_are_said_not_dropped(reason):
    assert reason in explain_pending(reason) or "group limit" in explain_pending(reason)


# -- the version rule (factoryhub.slurmversion) ------------------------------------------------


@pytest.mark.parametrize(
    ("printed", "version"),
    [
        ("slurm 24.05.4-1", "24.05.4"),
        ("slurm-wlm 22.05.8", "22.05.8"),
        ("slurm 23.11.0-0rc1\n", "23.11.0"),
        ("SLURM_VERSION           = 25.05.0", "25.05.0"),
        ("25.11.7", "25.11.7"),
        ("slurm 24.11", "24.11.0"),
    ],
)
def test_versions_are_read_from_what_slurm_prints(printed, version):
    assert str(parse_slurm_version(printed)) == version


@pytest.mark.parametrize("printed", ["", "slurm", "slurm 2.6.9", "slurm 24.13.1", "v0.0.41"])
def test_no_version_is_made_up(printed):
    assert parse_slurm_version(printed) is None
    check = check_slurm_version(printed)
    assert not check.supported and "cannot read a Slurm version" in check.sentence


@pytest.mark.parametrize(
    ("printed", "supported", "words"),
    [
        ("slurm 22.05.8", True, "tested: 22.05 to 25.11"),
        ("slurm 25.05.3", True, "Slurm 25.05.3"),
        ("slurm 21.08.8-2", False, "older than any release FactoryHub reads"),
        ("slurm 26.05.0", False, "newer than any release FactoryHub was tested with"),
        ("slurm 23.05.1", False, "not a release FactoryHub was tested with"),
    ],
)
def test_supported_or_said_so(printed, supported, words):
    check = check_slurm_version(printed, "Slurm's commands")
    assert check.supported is supported
    assert words in check.sentence and check.sentence.startswith("Slurm's commands")


# -- where the rule is used: site check and the hub's log -------------------------------------


def _facts(**versions: str | None):
    from factoryhub.sitecheck import ClusterFacts

    return ClusterFacts(capacity=None, **versions)


@pytest.mark.parametrize("release", RELEASES)
def test_site_check_says_nothing_of_a_tested_release(release):
    from factoryhub.sitecheck import _versions

    printed = read(release, "scontrol_version.txt")
    assert _versions(_facts(slurm_version=printed, controller_version=printed[6:])) == []


@pytest.mark.parametrize(
    ("versions", "sentence"),
    [
        (
            {"slurm_version": "slurm 26.05.0"},
            "error: Slurm's commands on this host (scontrol --version) is Slurm 26.05.0, newer"
            " than any release FactoryHub was tested with (22.05 to 25.11)",
        ),
        (
            {"slurm_version": "slurm 24.05.4", "controller_version": "21.08.8"},
            "error: slurmctld (SLURM_VERSION of scontrol show config) is Slurm 21.08.8, older"
            " than any release FactoryHub reads (22.05 to 25.11)",
        ),
        (
            {"slurm_version": "Slurm (devel)"},
            "error: Slurm's commands on this host (scontrol --version): cannot read a Slurm"
            " version from 'Slurm (devel)'",
        ),
    ],
)
def test_site_check_names_a_release_it_was_not_tested_with(demo_site, versions, sentence):
    from factoryhub.sitecheck import check_site, exit_status

    findings = check_site(demo_site, _facts(**versions))
    assert any(str(f).startswith(sentence) for f in findings), [str(f) for f in findings]
    assert exit_status(findings) == 2


async def test_the_hub_logs_the_version_it_reads(fake_slurm, caplog):
    from factoryhub.scheduler.slurm import log_slurm_version

    caplog.set_level("INFO")
    assert (await log_slurm_version(fake_slurm)).supported
    assert "Slurm's commands on this host is Slurm 22.05.8 (tested: 22.05 to 25.11)" in (
        caplog.text
    )
    fake_slurm.version = "slurm 26.05.1"
    caplog.clear()
    assert not (await log_slurm_version(fake_slurm)).supported
    (record,) = caplog.records
    assert record.levelname == "ERROR" and "Slurm 26.05.1, newer than any" in record.message


async def test_an_unreadable_version_is_logged_not_guessed(fake_slurm, caplog):
    from factoryhub.scheduler.slurm import log_slurm_version

    fake_slurm.down = True
    check = await log_slurm_version(fake_slurm)
    assert not check.supported and check.version is None
    assert "Slurm's version could not be read" in caplog.text
