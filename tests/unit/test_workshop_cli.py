"""`factoryhub workshop` helpers that need no Slurm: Slurm's host lists, the undo stack of
create, bad times refused with sentences before any command, and a non-seat left alone."""

from __future__ import annotations

import argparse

import pytest

from factoryhub.cli import workshop as cli
from factoryhub.spawners.workshop import seat_options
from factoryhub.workshop import WorkshopRefused


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("cn01", {"cn01"}),
        ("cn[01-02]", {"cn01", "cn02"}),
        ("cn[01-02,05],gn01", {"cn01", "cn02", "cn05", "gn01"}),
        ("(null)", set()),
        ("", set()),
    ],
)
def test_slurm_host_lists_are_expanded(text, names):
    assert cli._expand_nodes(text) == names


def test_undo_runs_newest_first_and_reports_every_failure():
    done: list[str] = []
    undo = cli.Undo()
    undo.push("first", lambda: done.append("first"))
    undo.push("broken", lambda: 1 / 0)

    async def third() -> None:
        done.append("third")

    undo.push("third", third)
    problems = undo.run()
    assert done == ["third", "first"]
    assert problems == ["undoing broken: division by zero"]


def test_times_that_are_not_times_are_refused_before_anything_runs():
    args = argparse.Namespace(
        name="ws1", courses=["intro"], start="tomorrow", end="now;reboot", seats=2,
        partition="", cpus=None, memory_gb=None, gpu_hours=None, trainers=[],
    )  # fmt: skip
    with pytest.raises(WorkshopRefused) as refused:
        cli._request(args, cli.datetime(2026, 12, 2, 9, 0))
    assert refused.value.reasons[0].startswith("--start: 'tomorrow' is not a time")
    assert refused.value.reasons[1].startswith("--end: 'now;reboot' is not a time")


def test_an_account_that_is_no_seat_keeps_its_options(demo_site):
    options = {"cpus": 4, "partition": "gpu"}
    assert seat_options(demo_site, "alice", options) is options
    assert seat_options(demo_site, "ws-nosuch-01", options) is options  # no such workshop


def test_root_touches_only_made_seats_and_the_pools_learner_accounts():
    from factoryhub.cli import seats

    assert seats._seat("ws-dl101-07") == "ws-dl101-07"
    with pytest.raises(seats.SeatError, match="'root' is not a seat account"):
        seats._seat("root", pool={"root"})  # a system account in a pool is still refused
    with pytest.raises(seats.SeatError, match=r"nor in this site's \[workshops\] account_pool"):
        seats._seat("nobody-here")
    with pytest.raises(seats.SeatError, match="is not a seat account"):
        seats.delete_seat("root")  # never a pool account or any other: userdel is not run
