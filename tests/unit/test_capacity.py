"""Live capacity parsed from real Slurm 22.05 output, and start estimates phrased from it."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from conftest import user_job

from factoryhub.capacity import Capacity, parse_partitions, parse_sinfo_nodes
from factoryhub.estimate import (
    estimate_from_capacity,
    estimate_from_slurm,
    estimate_start,
    parse_test_only,
    phrase_start,
    qos_wait,
)
from factoryhub.request import RequestError, access_for, parse_request
from factoryhub.scheduler.slurm import Associations, QosLimits, UserJob

PARTITIONS = (
    "PartitionName=cpu AllowGroups=ALL Default=YES DefaultTime=01:00:00 MaxTime=12:00:00"
    " Nodes=cn[01-02] State=UP TotalCPUs=64\n"
    "PartitionName=gpu AllowGroups=ALL Default=NO DefaultTime=01:00:00 MaxTime=1-00:00:00"
    " Nodes=gn[01-02] State=UP TotalCPUs=32\n"
    "PartitionName=debug Default=NO DefaultTime=00:15:00 MaxTime=00:30:00 State=DOWN\n"
)
NODES = (
    "cn01|cpu*|30/2/0/32|(null)|gpu:0|mix|64000|60000|\n"
    "cn02|cpu*|32/0/0/32|(null)|gpu:0|alloc|64000|32000|\n"
    "gn01|gpu|4/12/0/16|gpu:h100:4|gpu:h100:3(IDX:0-2)|mix|128000|8000|\n"
    "gn02|gpu|0/16/0/16|gpu:h100:4|gpu:h100:0(IDX:N/A)|idle*|128000|0|\n"
    "cn01|debug|30/2/0/32|(null)|gpu:0|mix|64000|60000|\n"
)


@pytest.fixture
def capacity() -> Capacity:
    return Capacity(parse_partitions(PARTITIONS), parse_sinfo_nodes(NODES))


def test_parse(capacity):
    assert capacity.partitions["gpu"].max_minutes == 1440
    assert capacity.partitions["debug"].up is False
    gn01 = capacity.nodes_of("gpu")[0]
    assert gn01.gpus_total == {"h100": 4} and gn01.gpus_free("h100") == 1
    assert capacity.nodes_of("cpu")[0].partition == "cpu"  # default marker stripped


def test_summary_counts_only_usable_nodes(capacity):
    # gn02 is idle* (not responding): its GPUs are not free for anyone.
    assert capacity.summary("gpu") == {
        "cpus_idle": 12,
        "cpus_total": 32,
        "gpus_free": 1,
        "gpus_total": 8,
        "nodes_usable": 1,
    }


@pytest.mark.parametrize(
    ("options", "kind", "text"),
    [
        ({"partition": "gpu", "gpus": 1}, "now", "starts now"),
        ({"partition": "gpu", "gpus": 2}, None, None),  # fits a node, not free: ask Slurm
        ({"partition": "cpu", "cpus": 2, "memory_gb": 8}, None, None),  # 2 CPUs idle, 4 GB free
        ({"partition": "cpu", "cpus": 1, "memory_gb": 1}, "now", "starts now"),
        ({"partition": "debug"}, "never", "not accepting jobs"),
        ({"partition": "cpu", "cpus": 32, "memory_gb": 60}, None, None),
    ],
)
def test_estimate_from_capacity(capacity, demo_site, options, kind, text):
    estimate = estimate_from_capacity(parse_request(options, demo_site), capacity)
    if kind is None:
        assert estimate is None
    else:
        assert estimate.kind == kind and text in estimate.message


def test_gpu_request_larger_than_any_node(capacity, demo_site):
    small = tuple(replace(n, gpus_total={"h100": 2}) for n in capacity.nodes_of("gpu"))
    req = parse_request({"partition": "gpu", "gpus": 4}, demo_site)
    estimate = estimate_from_capacity(req, Capacity(capacity.partitions, small))
    assert estimate.kind == "never"
    assert estimate.message == "cannot start: the gpu partition has at most 2 h100 GPUs per node"


def test_slurm_answer_phrased():
    answer = (
        "sbatch: Job 12 to start at 2026-11-25T14:32:00 using 1 processors on nodes gn01"
        " in partition gpu"
    )
    assert parse_test_only(answer) == datetime(2026, 11, 25, 14, 32)
    est = estimate_from_slurm(answer, now=datetime(2026, 11, 25, 14, 20))
    assert est.kind == "later" and est.message == "expected in about 12 minutes (14:32)"
    assert estimate_from_slurm("allocation failure: x", datetime.now()).kind == "unknown"


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (0.5, "starts now"),
        (12, "expected in about 12 minutes (14:32)"),
        (150, "expected in about 2 h 30 min (16:50)"),
        (60 * 30, "expected on 26 Nov at 20:20"),
    ],
)
def test_phrase_start(minutes, text):
    now = datetime(2026, 11, 25, 14, 20)
    assert phrase_start(now + timedelta(minutes=minutes), now) == text


NORMAL = QosLimits("normal", max_gpus_per_job=2, max_gpus_per_user=4)


def _running(gpus: int, qos: str = "normal") -> UserJob:
    return user_job(state="RUNNING", tres=f"gres:gpu:h100:{gpus}", qos=qos)


def test_qos_wait_counts_the_learners_running_gpus_under_the_same_qos(demo_site):
    access = access_for(demo_site, "bob", (), Associations(("training",), ("normal",), (NORMAL,)))
    two = parse_request({"partition": "gpu", "gpus": 2}, demo_site, access)
    assert qos_wait(two, (NORMAL,), [_running(2)]) is None  # 2 + 2 <= 4
    assert qos_wait(two, (NORMAL,), [_running(2), _running(2, "long")]) is None  # other QoS
    pending = user_job(state="PENDING", tres="gres:gpu:h100:2", qos="normal")
    assert qos_wait(two, (NORMAL,), [_running(2), pending]) is None  # pending holds nothing
    assert qos_wait(two, (NORMAL,), [_running(2), _running(1)]) == (
        "waits until one of your GPU jobs ends: the QoS normal allows 4 GPUs at once and your"
        " running jobs use 3"
    )
    assert qos_wait(two, (), [_running(4)]) is None  # no accounting database: no limits


async def test_the_estimate_says_a_qos_wait_before_free_nodes(capacity, demo_site, fake_slurm):
    access = access_for(demo_site, "bob", (), Associations(("training",), ("normal",), (NORMAL,)))
    two = parse_request({"partition": "gpu", "gpus": 1}, demo_site, access)
    fake_slurm.user_rows = [_running(2), _running(2)]
    estimate = await estimate_start(two, capacity, fake_slurm, "bob", (NORMAL,))
    assert estimate.kind == "later" and "the QoS normal allows 4 GPUs at once" in estimate.message
    fake_slurm.user_rows = [_running(2)]
    assert (await estimate_start(two, capacity, fake_slurm, "bob", (NORMAL,))).kind == "now"


def test_one_job_over_the_per_user_limit_is_refused(demo_site):
    five = QosLimits("normal", max_gpus_per_user=3)
    access = access_for(demo_site, "bob", (), Associations(("training",), ("normal",), (five,)))
    with pytest.raises(RequestError, match="the QoS normal allows at most 3 GPUs at once per user"):
        parse_request({"partition": "gpu", "gpus": 4}, demo_site, access)
