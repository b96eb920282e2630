"""The workshop model (factoryhub.workshop, workshoprecord, workshopstore, workshopreport):
plans and every refusal as a sentence, the locked preset, seat claims under contention, the
usage report from real sacct output."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from factoryhub.capacity import NodeCapacity
from factoryhub.site import EnergySettings
from factoryhub.workshop import (
    SiteFacts,
    TakenSlot,
    WorkshopRefused,
    WorkshopRequest,
    parse_when,
    plan_workshop,
    seat_names,
    workshop_of_seat,
)
from factoryhub.workshoprecord import (
    JoinRefused,
    LockRefused,
    display_name,
    from_plan,
    locked_options,
    new_code,
    workshop_from_json,
)
from factoryhub.workshopreport import (
    handout_csv,
    handout_html,
    parse_sacct,
    report_csv,
    report_html,
    report_json,
    usage_report,
)
from factoryhub.workshopstore import SeatClaims

NOW = datetime(2026, 12, 2, 9, 0)
CPU_PRESET = {
    "partition": "cpu",
    "cpus": 2,
    "memory_gb": 4,
    "gpus": 0,
    "walltime": "01:00:00",
    "environment": "default",
}
GPU_PRESET = {
    "partition": "gpu",
    "cpus": 4,
    "memory_gb": 16,
    "gpus": 1,
    "walltime": "02:00:00",
    "environment": "default",
}


def _node(name: str, partition: str, cpus: int, memory_mb: int, gpus: int = 0) -> NodeCapacity:
    return NodeCapacity(
        name, partition, "idle", cpus, cpus, memory_mb, 0, {"h100": gpus} if gpus else {}, {}
    )


NODES = (
    _node("cn01", "cpu", 32, 64000),
    _node("cn02", "cpu", 32, 64000),
    _node("gn01", "gpu", 16, 128000, 4),
    _node("gn02", "gpu", 16, 128000, 4),
)


def facts(**changes) -> SiteFacts:
    base = SiteFacts(
        now=NOW,
        presets={"intro": CPU_PRESET, "gpu-course": GPU_PRESET},
        nodes=NODES,
        users=frozenset({"ttrainer", "root"}),
    )
    return replace(base, **changes)


def request(**changes) -> WorkshopRequest:
    base = WorkshopRequest(
        name="dl101",
        courses=("intro",),
        start=NOW + timedelta(hours=1),
        end=NOW + timedelta(hours=4),
        seats=10,
        trainers=("ttrainer",),
    )
    return replace(base, **changes)


def test_a_cpu_workshop_reserves_cores_for_every_seat_and_budgets_the_slot():
    plan = plan_workshop(request(), facts())
    assert plan.seats[0] == "ws-dl101-01" and plan.seats[-1] == "ws-dl101-10"
    assert (plan.resources.cpus, plan.resources.memory_gb, plan.nodes) == (2, 4, 0)
    settings = plan.reservation_settings(NOW)
    assert settings["TRES"] == "cpu=20" and settings["PartitionName"] == "cpu"
    assert settings["StartTime"] == "2026-12-02T10:00:00"
    assert settings["EndTime"] == "2026-12-02T13:00:00"
    assert settings["Users"].split(",") == list(plan.seats)
    assert settings["Accounts"] == "ws-dl101"
    assert plan.account_limits() == ["GrpTRESMins=cpu=3600"]  # 10 seats × 2 CPUs × 180 min
    assert any(
        "reservation ws-dl101 on partition cpu: 20 cores" in line for line in plan.describe()
    )


def test_a_gpu_workshop_reserves_whole_nodes_and_takes_the_gpu_budget():
    plan = plan_workshop(request(courses=("gpu-course",), seats=6, gpu_hours=12), facts())
    assert plan.nodes == 2  # 4 seats fit a node (4 GPUs), 6 need two
    assert plan.reservation_settings(NOW)["NodeCnt"] == "2"
    assert plan.account_limits() == ["GrpTRESMins=cpu=4320,gres/gpu=720"]


def test_a_smaller_preset_is_taken_and_locked_per_course():
    plan = plan_workshop(request(cpus=1, memory_gb=2), facts())
    assert plan.reservation_settings(NOW)["TRES"] == "cpu=10"
    assert plan.presets["intro"]["cpus"] == 1 and plan.presets["intro"]["memory_gb"] == 2


def test_seat_names_widen_past_99_and_name_their_workshop():
    assert seat_names("big", 120)[-1] == "ws-big-120"
    assert workshop_of_seat("ws-big-007") == "big"
    assert workshop_of_seat("ws-big") is None and workshop_of_seat("alice") is None


def test_a_slot_that_starts_now_is_reserved_from_now():
    plan = plan_workshop(request(start=parse_when("now", NOW)), facts())
    assert plan.reservation_settings(NOW)["StartTime"] == "now"


@pytest.mark.parametrize(
    ("changes", "site", "sentence"),
    [
        (
            {"end": NOW - timedelta(hours=1), "start": NOW - timedelta(hours=2)},
            {},
            "the end, 2026-12-02 08:00, is in the past",
        ),
        ({"end": NOW + timedelta(minutes=30)}, {}, "is not after the start"),
        ({"start": NOW - timedelta(hours=2)}, {}, "is in the past (use now)"),
        (
            {"courses": ("nope",)},
            {},
            "course 'nope' is not in the catalogue (published: gpu-course, intro)",
        ),
        ({"courses": ()}, {}, "name at least one course"),
        ({}, {"workshops": frozenset({"dl101"})}, "name 'dl101' is taken by another workshop"),
        ({}, {"taken_names": frozenset({"ws-dl101-03"})}, "ws-dl101-03 already exist(s)"),
        ({"name": "Bad Name;rm"}, {}, "use 2 to 16 lower-case letters and digits"),
        ({"name": "a-b"}, {}, "use 2 to 16 lower-case letters and digits"),
        ({"seats": 0}, {}, "ask for 1 to 300"),
        ({"seats": 301}, {}, "the site's pool of seat accounts has 300"),
        ({"seats": 31}, {}, "room for 30 seat(s)"),  # memory: 15 × 4 GB a node
        (
            {"seats": 3},
            {
                "reservations": (
                    TakenSlot(
                        "other", NOW, NOW + timedelta(hours=2), frozenset({"cn01", "cn02"}), 60
                    ),
                )
            },
            "room for 2 seat(s); reservation(s) other hold part of it",
        ),
        (
            {},
            {
                "reservations": (
                    TakenSlot("maint", NOW, NOW + timedelta(days=1), frozenset({"cn01"}), 0, True),
                )
            },
            "overlaps maintenance reservation maint",
        ),
        ({"courses": ("gpu-course",), "seats": 9}, {}, "room for 8 seat(s)"),
        ({"courses": ("intro", "gpu-course")}, {}, "the courses run on different partitions"),
        ({"partition": "gpu"}, {}, "--partition 'gpu': the course preset runs on cpu"),
        ({"cpus": 3}, {}, "--cpus 3: a seat may have 1 to 2"),
        ({"gpu_hours": 5.0}, {}, "the courses' preset has no GPUs"),
        ({"courses": ("gpu-course",), "gpu_hours": -1.0}, {}, "give a number of hours, 0 or more"),
        ({"trainers": ("mallory",)}, {}, "trainer 'mallory' has no account on this site"),
    ],
)
def test_every_impossible_request_is_refused_with_a_sentence(changes, site, sentence):
    with pytest.raises(WorkshopRefused) as refused:
        plan_workshop(request(**changes), facts(**site))
    assert any(sentence in reason for reason in refused.value.reasons), refused.value.reasons


def test_a_node_reservation_printed_with_its_core_count_holds_the_whole_node():
    node = TakenSlot("n", NOW, NOW + timedelta(days=1), frozenset({"cn01"}), 32)
    with pytest.raises(WorkshopRefused, match="room for 15 seat"):
        plan_workshop(request(seats=16), facts(reservations=(node,)))
    gpu = TakenSlot("g", NOW, NOW + timedelta(days=1), frozenset({"gn01"}), 2)  # a few cores
    with pytest.raises(WorkshopRefused, match="room for 4 seat"):  # a GPU node is not shared
        plan_workshop(request(courses=("gpu-course",), seats=5), facts(reservations=(gpu,)))


def test_a_reservation_outside_the_slot_or_partition_does_not_count():
    later = TakenSlot(
        "later", NOW + timedelta(hours=5), NOW + timedelta(hours=6), frozenset({"cn01", "cn02"}), 64
    )
    gpu = TakenSlot("gpus", NOW, NOW + timedelta(hours=6), frozenset({"gn01", "gn02"}), 0)
    plan = plan_workshop(request(seats=30), facts(reservations=(later, gpu)))
    assert len(plan.seats) == 30


def test_all_reasons_come_at_once():
    with pytest.raises(WorkshopRefused) as refused:
        plan_workshop(request(name="X", seats=0, courses=("nope",)), facts())
    assert len(refused.value.reasons) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now+90min", NOW + timedelta(minutes=90)),
        ("now+2h", NOW + timedelta(hours=2)),
        ("2026-12-03T09:30", datetime(2026, 12, 3, 9, 30)),
    ],
)
def test_times_are_read(text, expected):
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T09:00", "now+5d", "now;rm", ""])
def test_a_time_that_is_not_one_is_refused(text):
    with pytest.raises(WorkshopRefused, match="not a"):
        parse_when(text, NOW)


# -- the record, the code and the lock ---------------------------------------------------------


def workshop(**plan_changes):
    big = (_node("cn03", "cpu", 256, 1024000),)  # room for 50 seats and more
    plan = plan_workshop(request(start=NOW, **plan_changes), facts(nodes=NODES + big))
    return from_plan(plan, "test", "ABCDE-FGHJK", "salt", NOW)


def test_the_record_keeps_the_codes_hash_only_and_reads_back():
    ws = workshop()
    text = ws.to_json()
    assert "ABCDE" not in text
    again = workshop_from_json(text)
    assert again == ws
    assert again.code_matches("abcde fghjk") and again.code_matches("ABCDEFGHJK")
    assert not again.code_matches("ABCDE-FGHJJ") and not again.code_matches("")


def test_codes_are_fresh_and_unambiguous():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 11 and c[5] == "-" and not set(c) & set("01OIL") for c in codes)


def test_a_seat_gets_its_courses_preset_on_the_reservation_and_account():
    ws = workshop()
    locked = locked_options(ws, {}, NOW + timedelta(minutes=10))
    assert locked == {
        **CPU_PRESET,
        "course": "intro",
        "account": "ws-dl101",
        "reservation": "ws-dl101",
    }
    # the same values sent again are accepted (the REST API, a form)
    assert locked_options(ws, {"cpus": 2, "partition": "cpu", "course": "intro"}, NOW) == locked


def test_the_walltime_is_cut_to_what_is_left_of_the_slot():
    ws = workshop()
    late = ws.end_time - timedelta(minutes=20)
    assert locked_options(ws, {}, late)["walltime"] == "00:20:00"


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"cpus": 8}, "cpus: a workshop seat runs the course's preset (cpus = 2)"),
        ({"partition": "gpu"}, "partition: a workshop seat runs the course's preset"),
        ({"walltime": "05:00:00"}, "walltime: a workshop seat runs the course's preset"),
        ({"account": "training"}, "account: a workshop seat is charged to ws-dl101"),
        ({"reservation": "other"}, "reservation: a workshop seat is charged"),
        ({"course": "gpu-course"}, "runs its courses only (intro)"),
    ],
)
def test_a_seat_cannot_change_the_preset(options, sentence):
    with pytest.raises(LockRefused) as refused:
        locked_options(workshop(), options, NOW)
    assert sentence in str(refused.value)


def test_an_ended_or_not_yet_open_workshop_starts_nothing():
    ws = workshop()
    with pytest.raises(LockRefused, match="has ended"):
        locked_options(ws.with_state("ended", NOW), {}, NOW)
    with pytest.raises(LockRefused, match="its slot has ended"):
        locked_options(ws, {}, ws.end_time)
    early = from_plan(plan_workshop(request(), facts()), "test", "C", "s", NOW)
    with pytest.raises(LockRefused, match="starts at 10:00"):
        locked_options(early, {}, NOW)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("Ada", "Ada"), ("  Grace   Hopper ", "Grace Hopper"), ("Zoë 李", "Zoë 李")],
)
def test_display_names_are_tidied(text, ok):
    assert display_name(text) == ok


@pytest.mark.parametrize("text", ["", "   ", "x" * 41, "a\u202eb", "a\x00b"])
def test_display_names_that_cannot_be_shown_are_refused(text):
    with pytest.raises(JoinRefused):
        display_name(text)


# -- seat claims ---------------------------------------------------------------------------------


def test_two_hundred_joins_at_once_get_fifty_different_seats(tmp_path):
    ws = workshop(seats=50)
    path = tmp_path / "claims.sqlite"
    SeatClaims(path)
    results: list[str | None] = []
    lock = threading.Lock()
    barrier = threading.Barrier(200)

    def join(n: int) -> None:
        claims = SeatClaims(path)  # a connection of its own, as separate requests have
        barrier.wait()
        seat = claims.claim(ws, f"learner {n}", NOW)
        with lock:
            results.append(seat)

    threads = [threading.Thread(target=join, args=(n,)) for n in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    given = [s for s in results if s is not None]
    assert len(results) == 200
    assert sorted(given) == sorted(ws.seats)  # every seat once, none twice
    assert results.count(None) == 150
    held = SeatClaims(path).claims(ws)
    assert len({c.display_name for c in held.values()}) == 50


def test_a_later_workshop_of_the_same_name_starts_with_free_seats(tmp_path):
    ws = workshop(seats=1)
    claims = SeatClaims(tmp_path / "c.sqlite")
    assert claims.claim(ws, "a", NOW) == "ws-dl101-01"
    assert claims.claim(ws, "b", NOW) is None
    again = replace(ws, created="2026-12-09T09:00:00")
    assert claims.claim(again, "c", NOW) == "ws-dl101-01"
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("SELECT count(*) FROM claims").fetchone() == (2,)


# -- report and handout --------------------------------------------------------------------------

# `sacct --allocations --parsable2 --noheader --format=SACCT_FORMAT` on the embedded 22.05 site
SACCT = """\
41|ws-dl101-01|ws-dl101|COMPLETED|120|billing=2,cpu=2,mem=4G,node=1|0
42|ws-dl101-01|ws-dl101|CANCELLED by 0|3600|billing=2,cpu=2,mem=4G,node=1|0
43|ws-dl101-02|ws-dl101|FAILED|30|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|
44|tlearner1|training|COMPLETED|100|cpu=1,mem=1G,node=1|0
garbage line
"""


def test_the_report_adds_up_what_sacct_says_per_seat():
    jobs = parse_sacct(SACCT)
    assert [j.job_id for j in jobs] == ["41", "42", "43", "44"]
    assert jobs[1].state == "CANCELLED" and jobs[2].gpus == 1 and jobs[2].joules is None
    ws = workshop(seats=3)
    report = usage_report(
        ws, jobs, {"ws-dl101-01": "Ada"}, EnergySettings(watts_per_core=10, pue=1.0)
    )
    one, two, three = report.seats
    assert (one.display_name, one.jobs, one.cpu_hours) == ("Ada", 2, round(2 * 3720 / 3600, 4))
    assert (two.jobs, two.cpu_hours, two.gpu_hours) == (
        1,
        round(4 * 30 / 3600, 4),
        round(30 / 3600, 4),
    )
    assert three.jobs == 0 and three.energy_wh == 0
    assert report.total.jobs == 3  # tlearner1's own job is not the workshop's
    assert one.energy_wh == round(20 * 3720 / 3600, 3)  # 2 cores × 10 W, estimated
    assert report.total.cpu_hours == round(one.cpu_hours + two.cpu_hours, 4)
    assert '"workshop": "dl101"' in report_json(report)
    assert report_csv(report).splitlines()[1].startswith("ws-dl101-01,Ada,2,")
    assert report_csv(report).splitlines()[-1].startswith("total,,3,")


def test_names_learners_typed_are_escaped_and_never_a_formula():
    ws = workshop(seats=1)
    report = usage_report(ws, [], {"ws-dl101-01": '=HYPERLINK("x")<b>'}, EnergySettings())
    assert "'=HYPERLINK" in report_csv(report)
    assert "<b>" not in report_html(report, "T") and "&lt;b&gt;" in report_html(report, "T")


def test_the_handout_has_the_join_address_and_the_code():
    ws = workshop()
    text = handout_csv(ws, "http://hub.example:8000/", "ABCDE-FGHJK")
    assert "http://hub.example:8000/hub/workshop/dl101,ABCDE-FGHJK,intro" in text
    page = handout_html(ws, "http://hub.example:8000", "ABCDE-FGHJK", "Site")
    assert "ABCDE-FGHJK" in page and "/hub/workshop/dl101" in page
