"""The trainers' cohort rows (factoryhub.workshopcohort): each seat's session state in words,
from what Slurm lists; only a seat's own session job of this hub counts."""

from __future__ import annotations

from datetime import datetime

from conftest import job_info

from factoryhub.capacity import NodeCapacity
from factoryhub.reasons import explain_pending
from factoryhub.workshop import SiteFacts, WorkshopRequest, plan_workshop
from factoryhub.workshopcohort import cohort_rows
from factoryhub.workshoprecord import from_plan

NOW = datetime(2026, 12, 2, 9, 0)


def _workshop():
    node = NodeCapacity("cn01", "cpu", "idle", 32, 32, 64000, 0, {}, {})
    preset = {"partition": "cpu", "cpus": 1, "memory_gb": 2, "walltime": "01:00:00"}
    facts = SiteFacts(now=NOW, presets={"intro": preset}, nodes=(node,))
    request = WorkshopRequest("ws1", ("intro",), NOW, NOW.replace(hour=12), 6)
    return from_plan(plan_workshop(request, facts), "test", "CODE", "salt", NOW)


def _job(job_id: str, seat: str, state: str, **fields: str):
    return job_info(job_id, state, **{"user": seat, "name": f"fh:test:{seat}:", **fields})


def test_each_seat_says_what_its_session_is_doing():
    ws = _workshop()
    names = {f"ws-ws1-0{n}": f"learner {n}" for n in range(1, 6)}
    jobs = [
        _job("10", "ws-ws1-01", "RUNNING", nodes="cn01", time_left="50:00"),
        _job("11", "ws-ws1-02", "PENDING", reason="Reservation"),
        _job("12", "ws-ws1-03", "FAILED", reason="NonZeroExitCode", nodes="cn01"),
        _job("13", "ws-ws1-04", "CANCELLED by 0"),
        _job("9", "ws-ws1-04", "RUNNING"),  # an earlier job: the latest counts
        _job("14", "ws-ws1-05", "RUNNING", name="fh:other:ws-ws1-05:"),  # not this hub's
        _job("15", "tlearner1", "RUNNING", name="fh:test:tlearner1:"),  # not a seat
    ]
    rows = {r.seat: r for r in cohort_rows(ws, names, jobs)}
    assert (rows["ws-ws1-01"].state, rows["ws-ws1-01"].node) == ("running", "cn01")
    assert rows["ws-ws1-01"].time_left == "50:00"
    assert (rows["ws-ws1-02"].state, rows["ws-ws1-02"].detail) == (
        "queued",
        explain_pending("Reservation"),
    )
    assert (rows["ws-ws1-03"].state, rows["ws-ws1-03"].node) == ("failed", "")
    assert (rows["ws-ws1-04"].state, rows["ws-ws1-04"].job_id) == ("stopped", "13")
    assert rows["ws-ws1-05"].state == "not started"
    assert (rows["ws-ws1-06"].state, rows["ws-ws1-06"].display_name) == ("free", "")
    assert list(rows) == list(ws.seats)
