"""Parsers and error classification, with output and messages as Slurm 22.05 prints them."""

import pytest

from factoryhub.scheduler.slurm import (
    Associations,
    Completed,
    QosLimits,
    SchedulerUnavailable,
    SlurmError,
    UnknownJob,
    classify_failure,
    parse_all_associations,
    parse_allocation,
    parse_associations,
    parse_job_id,
    parse_node_addresses,
    parse_qos_limits,
)
from factoryhub.slurmoutput import parse_tres


@pytest.mark.parametrize(
    ("stderr", "rc", "kind"),
    [
        (
            "squeue: error: Unable to contact slurm controller (connect failure)",
            1,
            SchedulerUnavailable,
        ),
        ("slurm_load_jobs error: Socket timed out on send/recv operation", 1, SchedulerUnavailable),
        ("slurm_load_jobs error: Zero Bytes were transmitted or received", 1, SchedulerUnavailable),
        ("", 1, SchedulerUnavailable),
        ("slurm_load_jobs error: Invalid job id specified", 1, UnknownJob),
        (
            "sbatch: error: Batch job submission failed: Requested node configuration is not"
            " available",
            1,
            SlurmError,
        ),
    ],
)
def test_classify_failure(stderr, rc, kind):
    error = classify_failure(["/usr/bin/squeue"], Completed(rc, "", stderr))
    assert type(error) is kind
    assert "squeue failed" in str(error)


def test_job_ids():
    assert parse_job_id("123\n") == "123"
    assert parse_job_id("123;factory\n") == "123"
    with pytest.raises(SlurmError):
        parse_job_id("sbatch: error: something\n")


def test_allocation_ids():
    # salloc prints to stderr; a refusal ("Requested nodes are busy") carries no id.
    assert parse_allocation("salloc: Granted job allocation 1059\n") == "1059"
    busy = "salloc: error: Job submit/allocate failed: Requested nodes are busy\n"
    assert parse_allocation(busy) is None


def test_associations_put_the_users_defaults_first():
    # `sacctmgr --noheader --parsable2 show user withassoc where name=trainer
    #  format=DefaultAccount,Account,QOS,DefaultQOS` (22.05: rows sorted by account)
    text = "training|ai-research|long,normal|normal\ntraining|training|long,normal|normal\n"
    assert parse_associations(text) == Associations(
        accounts=("training", "ai-research"), qos=("normal", "long")
    )
    assert parse_associations("") == Associations()  # no association: cannot submit


def test_everyones_associations_in_one_reading():
    # `sacctmgr --noheader --parsable2 show user withassoc
    #  format=User,DefaultAccount,Account,QOS,DefaultQOS` (every user)
    text = (
        "alice|training|ai-research|normal|normal\n"
        "alice|training|training|normal|normal\n"
        "root|root|root|normal|\n"
    )
    found = parse_all_associations(text)
    assert found["alice"] == Associations(("training", "ai-research"), ("normal",))
    assert set(found) == {"alice", "root"} and parse_all_associations("") == {}


def test_qos_limits():
    # `sacctmgr --noheader --parsable2 show qos format=Name,MaxWall,MaxTRES,MaxTRESPU`
    text = "normal|12:00:00|gres/gpu=2,mem=16G,cpu=8|gres/gpu=4\nlong|1-00:00:00||\nfree|||\n"
    normal, long, free = parse_qos_limits(text)
    assert normal == QosLimits("normal", 720, 8, 2, 16384, 4)
    assert long == QosLimits("long", max_walltime_minutes=1440)
    assert free == QosLimits("free")
    assert parse_tres("cpu=4,mem=1500M,gres/gpu:h100=1,billing=N/A") == {
        "cpu": 4,
        "mem": 1500,
        "gres/gpu:h100": 1,
    }


def test_node_addresses():
    text = (
        "NodeName=gn01 Arch=x86_64 CoresPerSocket=1 NodeAddr=127.0.0.1 NodeHostName=vm\n"
        "NodeName=cn02 Arch=x86_64 NodeAddr=10.1.2.3 NodeHostName=cn02\n"
    )
    assert parse_node_addresses(text) == {"gn01": "127.0.0.1", "cn02": "10.1.2.3"}


def test_ping():
    from factoryhub.scheduler.slurm import parse_ping

    assert parse_ping("Slurmctld(primary) at vm is UP\n")
    assert not parse_ping("Slurmctld(primary) at vm is DOWN\n")


def test_position():
    from factoryhub.scheduler.slurm import parse_position

    assert parse_position("12\n9\n15\n", "9") == 2
    assert parse_position("12\n", "9") is None
