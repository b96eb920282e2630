"""`site check`'s judgement (pure): each kind of mismatch between a site.toml and the facts of
the live cluster becomes one sentence naming the key and what Slurm says; a site that agrees
gives none."""

from __future__ import annotations

import dataclasses

import pytest

from factoryhub.capacity import Capacity, parse_partitions, parse_sinfo_nodes
from factoryhub.site import parse_site
from factoryhub.sitecheck import ClusterFacts, PathFacts, check_site, exit_status

LIVE = Capacity(  # what the embedded site's scontrol and sinfo print
    parse_partitions(
        "PartitionName=cpu MaxTime=12:00:00 DefaultTime=01:00:00 State=UP\n"
        "PartitionName=gpu MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP\n"
        "PartitionName=debug MaxTime=00:30:00 DefaultTime=00:15:00 State=UP\n"
        "PartitionName=training MaxTime=08:00:00 DefaultTime=01:00:00 ReqResv=YES State=UP\n"
    ),
    parse_sinfo_nodes(
        "cn01|cpu*|0/32/0/32|(null)|gpu:0|idle|64000|0|\n"
        "gn01|gpu|0/16/0/16|gpu:h100:4|gpu:h100:0(IDX:N/A)|idle|128000|0|\n"
        "cn01|debug|0/32/0/32|(null)|gpu:0|idle|64000|0|\n"
        "tn01|training|0/128/0/128|(null)|gpu:0|idle|140000|0|\n"
    ),
)
GOOD = dict(
    capacity=LIVE,
    node_addresses={"cn01": "127.0.0.1", "gn01": "127.0.0.1", "tn01": "127.0.0.1"},
    munge_ok=True,
    accounting=True,
    accounts=frozenset({"training", "ai-research"}),
    qos=frozenset({"normal", "long"}),
    paths={
        "state_dir": PathFacts("factoryhub", 0o700, True),
        "catalogue_dir": PathFacts("root", 0o755, True),
    },
)


def test_the_demo_site_against_its_own_cluster_has_nothing_to_say(demo_site):
    findings = check_site(demo_site, ClusterFacts(**GOOD))
    assert findings == [] and exit_status(findings) == 0


def _site(demo_site, **partition_changes):
    gpu = dataclasses.replace(demo_site.partitions["gpu"], **partition_changes)
    return dataclasses.replace(demo_site, partitions={**demo_site.partitions, "gpu": gpu})


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (
            {"max_walltime": "2-00:00:00"},
            "partitions.gpu.max_walltime = 2-00:00:00 is above Slurm's MaxTime for gpu (1 day)",
        ),
        (
            {"max_cpus": 64},
            "partitions.gpu.max_cpus = 64 is more than any node of gpu has (16 CPUs)",
        ),
        (
            {"max_memory_gb": 500},
            "partitions.gpu.max_memory_gb = 500 is more than any node of gpu has"
            " (125 GB of memory)",
        ),
        ({"max_gpus": 8}, "partitions.gpu.max_gpus = 8 is more than any node of gpu has (4 GPUs)"),
        (
            {"gpu_types": ("a100",)},
            "partitions.gpu.gpu_types names 'a100', a GPU type no node of gpu has"
            " (Slurm's Gres there: h100)",
        ),
    ],
)
def test_a_limit_slurm_cannot_meet_is_named_with_slurms_own(demo_site, change, sentence):
    findings = check_site(_site(demo_site, **change), ClusterFacts(**GOOD))
    assert [f.level for f in findings] == ["error"]
    assert sentence in findings[0].text
    assert exit_status(findings) == 2


def test_a_partition_slurm_does_not_have(demo_site):
    text = demo_site_path().read_text().replace("[partitions.debug]", "[partitions.debugx]")
    site = parse_site(text.replace('partition = "debug"', 'partition = "debugx"'))
    (finding,) = check_site(site, ClusterFacts(**GOOD))
    assert (
        "partition 'debugx' of site.toml is not a Slurm partition"
        " (Slurm has: cpu, debug, gpu, training)" in finding.text
    )


def test_a_workshops_only_partition_slurm_lets_anyone_use_is_an_error(demo_site):
    """Kept for workshops in site.toml but not in Slurm (no ReqResv=YES): a job without a
    reservation could run there, so the promise site.toml makes is not kept."""
    open_to_all = Capacity(
        parse_partitions(
            "PartitionName=cpu MaxTime=12:00:00 DefaultTime=01:00:00 State=UP\n"
            "PartitionName=gpu MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP\n"
            "PartitionName=debug MaxTime=00:30:00 DefaultTime=00:15:00 State=UP\n"
            "PartitionName=training MaxTime=08:00:00 DefaultTime=01:00:00 ReqResv=NO State=UP\n"
        ),
        LIVE.nodes,
    )
    (finding,) = check_site(demo_site, ClusterFacts(**{**GOOD, "capacity": open_to_all}))
    assert finding.level == "error"
    assert "partitions.training.workshops_only: Slurm's partition training has no" in finding.text
    assert "ReqResv=YES" in finding.text
    assert LIVE.partitions["training"].requires_reservation
    assert not LIVE.partitions["cpu"].requires_reservation


def demo_site_path():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "hub_config" / "site.toml"


@pytest.mark.parametrize(
    ("facts", "sentence"),
    [
        ({"munge_ok": False}, "munge does not answer on this host"),
        ({"capacity": None}, "slurmctld does not answer"),
        ({"accounting": False}, "slurmdbd does not answer"),
        (
            {"accounts": frozenset({"ai-research"})},
            "[access] grants the account 'training', which the accounting database does not have",
        ),
        ({"qos": frozenset({"normal"})}, "[access] grants the QoS 'long'"),
        ({"unresolved": ("gn01",)}, "node gn01's address '127.0.0.1' does not resolve"),
        ({"below_floors": ("tornado 6.4 is below 6.5.7 (CVE-…)",)}, "security floor: tornado 6.4"),
        (
            {"paths": {"state_dir": PathFacts("factoryhub", 0o755, True)}},
            "has mode 0755: it must not be readable or writable by others",
        ),
        (
            {"paths": {"state_dir": PathFacts("root", 0o700, True)}},
            "belongs to root, not factoryhub",
        ),
        (
            {"paths": {"catalogue_dir": PathFacts("root", 0o777, True)}},
            "has mode 0777: it must not be writable by others",
        ),
        (
            {"paths": {"catalogue_dir": PathFacts("root", 0o750, True)}},
            "sessions cannot read the published courses",
        ),
        (
            {"paths": {"state_dir": None}},
            "[hub] state_dir /var/lib/factoryhub (the hub's database and tokens) does not exist",
        ),
    ],
)
def test_each_broken_fact_is_one_sentence(demo_site, facts, sentence):
    findings = check_site(demo_site, ClusterFacts(**{**GOOD, **facts}))
    assert any(sentence in f.text for f in findings), [str(f) for f in findings]
    assert exit_status(findings) == 2


def test_what_could_not_be_read_is_a_warning_not_silence(demo_site):
    findings = check_site(
        demo_site, ClusterFacts(**{**GOOD, "problems": ("node addresses (scontrol failed)",)})
    )
    assert [str(f) for f in findings] == [
        "warning: could not check: node addresses (scontrol failed)"
    ]
    assert exit_status(findings) == 1
