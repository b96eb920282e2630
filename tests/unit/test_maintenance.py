"""Maintenance windows from Slurm's MAINT reservations (real 22.05 output): said in the form,
held against a request in the estimate; and the GPU widget holding a request against the
learner's budget."""

from dataclasses import replace
from datetime import datetime

import pytest

from factoryhub.budget import AccountBudget
from factoryhub.capacity import Capacity, parse_reservations
from factoryhub.estimate import estimate_start, maintenance_estimate
from factoryhub.maintenance import (
    blocking_window,
    expand_hostlist,
    maintenance_notice,
    maintenance_windows,
)
from factoryhub.request import ResourceRequest

# `scontrol show reservation --oneliner` on the embedded site, 2 Dec 2026 (times changed only)
MAINT = (
    "ReservationName=fhmaint StartTime=2030-01-01T14:00:00 EndTime=2030-01-01T16:00:00"
    " Duration=02:00:00 Nodes=gn[01-02] NodeCnt=2 CoreCnt=32 Features=(null)"
    " PartitionName=(null) Flags=MAINT,SPEC_NODES TRES=cpu=32 Users=root Groups=(null)"
    " Accounts=(null) Licenses=(null) State=INACTIVE BurstBuffer=(null) Watts=n/a"
    " MaxStartDelay=(null)\n"
)
WORKSHOP = MAINT.replace("fhmaint", "ws1").replace("MAINT,SPEC_NODES", "SPEC_NODES")
NOON = datetime(2030, 1, 1, 12, 0)


@pytest.fixture
def live(fake_slurm) -> Capacity:
    return replace(fake_slurm.live, reservations=parse_reservations(MAINT + WORKSHOP))


def gpu_request(minutes: int, partition: str = "gpu") -> ResourceRequest:
    return ResourceRequest(partition, 1, 2, minutes, "default", gpus=1 if partition == "gpu" else 0)


def test_host_lists():
    assert expand_hostlist("gn[01-02],cn01") == ["gn01", "gn02", "cn01"]
    assert expand_hostlist("n[1,3-4]") == ["n1", "n3", "n4"]
    assert expand_hostlist("") == []


def test_only_maint_reservations_not_yet_over_are_windows(live):
    (window,) = maintenance_windows(live, NOON)
    assert (window.name, window.nodes) == ("fhmaint", frozenset({"gn01", "gn02"}))
    assert maintenance_windows(live, datetime(2030, 1, 1, 16, 0)) == []


@pytest.mark.parametrize(
    ("now", "minutes", "expected"),
    [
        (
            NOON,
            90,
            "The gpu nodes go into maintenance at 14:00 (until 16:00); a session started now"
            " would end at 13:30, before it.",
        ),
        (
            NOON,
            240,
            "The gpu nodes go into maintenance at 14:00 (until 16:00); a session started now"
            " would have to end by 13:55: ask for at most 1 h 55 min, or it starts after the"
            " maintenance.",
        ),
        (
            datetime(2030, 1, 1, 15, 0),
            60,
            "The gpu nodes are in maintenance until 16:00; a session there starts after it.",
        ),
        (datetime(2029, 12, 30, 12, 0), 60, None),  # two days ahead: not yet said
    ],
)
def test_the_form_says_when_and_what_fits(live, now, minutes, expected):
    assert maintenance_notice(live, "gpu", minutes, now) == expected
    assert maintenance_notice(live, "cpu", minutes, now) is None  # other nodes


def test_a_window_on_some_nodes_names_them_and_blocks_nothing(live):
    some = replace(live, reservations=parse_reservations(MAINT.replace("gn[01-02]", "gn01")))
    two_gpu_nodes = replace(
        some, nodes=(*some.nodes, replace(some.nodes_of("gpu")[0], name="gn02"))
    )
    said = maintenance_notice(two_gpu_nodes, "gpu", 240, NOON)
    assert said.startswith("gn01 of the gpu nodes goes into maintenance at 14:00")
    assert blocking_window(two_gpu_nodes, "gpu", 240, NOON) is None


def test_the_estimate_waits_for_the_maintenance_only_when_the_session_would_overlap(live):
    late = maintenance_estimate(gpu_request(240), live, NOON)
    assert late.kind == "later" and late.start == datetime(2030, 1, 1, 16, 0)
    assert "ask for at most 1 h 55 min" in late.message
    assert maintenance_estimate(gpu_request(90), live, NOON) is None
    assert maintenance_estimate(gpu_request(240, "cpu"), live, NOON) is None


async def test_estimate_start_says_so_without_asking_slurm(live, fake_slurm):
    # a window under way now on every GPU node
    now = datetime.now().replace(microsecond=0)
    text = MAINT.replace("2030-01-01T14:00:00", f"{now:%Y-%m-%dT%H}:00:00").replace(
        "2030-01-01T16:00:00", "2099-01-01T16:00:00"
    )
    capacity = replace(live, reservations=parse_reservations(text))
    estimate = await estimate_start(gpu_request(60), capacity, fake_slurm, "alice")
    assert estimate.kind == "later"
    assert estimate.message.startswith("The gpu nodes are in maintenance until")
    assert fake_slurm.count("test_only") == 0


def test_the_gpu_widget_holds_the_request_against_the_budget(demo_site, fake_slurm, tmp_path):
    from factoryhub.widgets import GPURequest, SessionContext

    context = SessionContext(
        site=demo_site,
        user="alice",
        home=tmp_path,
        session_job="50",
        service_prefix="/user/alice/",
        client=fake_slurm,
    )
    widget = GPURequest(context)
    widget.budgets = {"training": AccountBudget("training", {"gres/gpu": 90}, {}, {})}
    widget.gpus.value = 2
    widget.walltime.value = "01:00:00"
    assert "This session needs 2 GPU-hours (2 GPUs × 1 h)" in widget.message.value
    assert "ask for at most 45 minutes with 2 GPUs or 1 GPU for 1 h" in widget.message.value
    assert widget.submit_button.disabled
    widget.gpus.value = 1
    assert widget.message.value == "" and not widget.submit_button.disabled
