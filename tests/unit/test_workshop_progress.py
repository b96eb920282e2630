"""A workshop seat's progress and energy on the cohort page, and the workshop's messages
(issue 15): reports are checked and bounded, kept per workshop and seat, and a workshop's
messages reach its seats only."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from factoryhub.announcements import (
    AnnouncementError,
    NewAnnouncement,
    current,
    parse_workshop_message,
)
from factoryhub.progressstore import ProgressStore
from factoryhub.servicedb import ServiceDB, read_announcements
from factoryhub.site import EnergySettings
from factoryhub.workshopprogress import (
    MAX_CELLS,
    MAX_CELLS_PER_REPORT,
    ProgressError,
    ProgressReport,
    SeatProgress,
    energy_words,
    parse_progress,
    seat_energy,
)
from factoryhub.workshopreport import AccountedJob

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_a_report_is_checked_field_by_field():
    report = parse_progress(
        {
            "notebooks_opened": ["courses/first-steps/01-first-steps.ipynb"],
            "cells_run": 3,
            "exercises_passed": ["first-steps:never-starts", "first-steps:never-starts"],
        }
    )
    assert report == ProgressReport(
        ("courses/first-steps/01-first-steps.ipynb",), 3, ("first-steps:never-starts",)
    )
    assert parse_progress({}) == ProgressReport()


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"seat": "ws-a-02", "cells_run": 1}, "unknown field 'seat'"),
        ({"user": "ws-a-02"}, "unknown field 'user'"),
        ({"cells_run": -1}, "cells_run: a whole number"),
        ({"cells_run": True}, "cells_run: a whole number"),
        ({"cells_run": 1.5}, "cells_run: a whole number"),
        ({"cells_run": MAX_CELLS_PER_REPORT + 1}, "at most"),
        ({"notebooks_opened": "a.ipynb"}, "expected a list"),
        ({"notebooks_opened": ["notes.txt"]}, "is not a notebook's path"),
        ({"notebooks_opened": ["a\nb.ipynb"]}, "is not a notebook's path"),
        ({"notebooks_opened": [f"{n}.ipynb" for n in range(51)]}, "at most 50"),
        ({"exercises_passed": ["no-course"]}, "is not course:exercise"),
        ({"exercises_passed": ["c:x; DROP TABLE"]}, "is not course:exercise"),
        ({"exercises_passed": [7]}, "is not course:exercise"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_a_bad_report_is_refused_with_a_sentence(raw, said):
    with pytest.raises(ProgressError, match=said):
        parse_progress(raw)


def test_progress_is_kept_per_workshop_and_seat_and_capped(tmp_path):
    store = ProgressStore(tmp_path / "p.sqlite")
    report = ProgressReport(("a.ipynb", "b.ipynb"), 5, ("c:x",))
    store.add("w@1", "ws-w-01", report)
    after = store.add("w@1", "ws-w-01", ProgressReport(("a.ipynb",), 2, ("c:x", "c:y")))
    assert after == SeatProgress(notebooks_opened=2, cells_run=7, exercises_passed=2)
    assert store.progress("w@1") == {"ws-w-01": after}
    assert store.progress("w@2") == {}  # a later workshop of the same name starts at zero
    for _ in range(3):
        store.add("w@1", "ws-w-02", ProgressReport((), MAX_CELLS_PER_REPORT, ()))
    with sqlite3.connect(tmp_path / "p.sqlite") as db:
        db.execute("UPDATE cells SET count = ? WHERE seat = 'ws-w-02'", (MAX_CELLS - 1,))
    capped = store.add("w@1", "ws-w-02", ProgressReport((), MAX_CELLS_PER_REPORT, ()))
    assert capped.cells_run == MAX_CELLS
    assert store.progress("w@1")["ws-w-01"] == after  # the other seat is untouched


def test_a_link_planted_where_the_store_goes_is_refused(tmp_path):
    (tmp_path / "p.sqlite").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        ProgressStore(tmp_path / "p.sqlite").add("w@1", "s", ProgressReport((), 1, ()))
    assert not (tmp_path / "elsewhere").exists()


def test_energy_so_far_per_seat_is_an_estimate_from_elapsed_time_and_allocation():
    factors = EnergySettings()
    jobs = [
        AccountedJob("1", "ws-w-01", "ws-w", "RUNNING", 3600, 1, 0, None),
        AccountedJob("2", "ws-w-01", "ws-w", "COMPLETED", 1800, 2, 0, None),
        AccountedJob("3", "ws-w-02", "ws-w", "RUNNING", 60, 1, 0, None),
    ]
    figures = seat_energy(jobs, factors)
    expected = (1 * 3600 + 2 * 1800) / 3600 * factors.watts_per_core * factors.pue
    assert figures["ws-w-01"].wh == pytest.approx(expected)
    assert not figures["ws-w-01"].measured
    assert energy_words(figures["ws-w-01"]).endswith("Wh (estimated)")
    assert energy_words(None) == ""


def test_a_workshop_message_reaches_its_seats_only(tmp_path):
    db = ServiceDB(tmp_path / "factoryhub-service.sqlite")
    end = NOW + timedelta(hours=2)
    message = parse_workshop_message({"text": "Back at 14:00"}, "dl101@t1", end, NOW)
    db.announce(message, "ttrainer", NOW)
    note = NewAnnouncement("Trainer T can see your session", "", end, user="ws-dl101-01")
    db.announce(note, "ttrainer", NOW)
    seat = db.announcements(NOW, None, "ws-dl101-01", ("dl101@t1",))
    assert [a.text for a in seat] == ["Back at 14:00", "Trainer T can see your session"]
    other_seat = db.announcements(NOW, None, "ws-dl101-02", ("dl101@t1",))
    assert [a.text for a in other_seat] == ["Back at 14:00"]
    assert db.announcements(NOW, None, "tlearner1", ()) == []  # another workshop / none
    assert db.announcements(NOW, None, "ws-x-01", ("dl101@t0",)) == []  # an earlier one
    assert seat[0].to_json()["workshop"] == "dl101" and seat[0].audience == "workshop dl101"


def test_the_hubs_pages_never_show_a_workshops_or_a_users_note(tmp_path, demo_site):
    from dataclasses import replace

    site = replace(demo_site, hub=replace(demo_site.hub, state_dir=str(tmp_path)))
    db = ServiceDB(tmp_path / "factoryhub-service.sqlite")
    end = datetime.now(UTC) + timedelta(hours=1)
    db.announce(NewAnnouncement("for the workshop", "", end, workshop="w@1"), "t", NOW)
    db.announce(NewAnnouncement("for one seat", "", end, user="ws-w-01"), "t", NOW)
    db.announce(NewAnnouncement("for everyone", "", end), "admin", NOW)
    assert [a.text for a in read_announcements(site)] == ["for everyone"]


def test_an_older_service_database_gains_the_scope_columns(tmp_path):
    path = tmp_path / "factoryhub-service.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE announcements (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT"
            " NULL, partition TEXT NOT NULL, posted TEXT NOT NULL, expires TEXT NOT NULL,"
            " author TEXT NOT NULL)"
        )
        later = (NOW + timedelta(hours=1)).isoformat()
        db.execute(
            "INSERT INTO announcements (text, partition, posted, expires, author)"
            " VALUES ('old', '', ?, ?, 'admin')",
            (NOW.isoformat(), later),
        )
    shown = ServiceDB(path).announcements(NOW)
    assert [(a.text, a.workshop, a.user) for a in shown] == [("old", "", "")]


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 501}, "at most 500"),
        ({"text": "hi", "workshop": "other"}, "text only"),
        ("hi", "text only"),
    ],
)
def test_a_bad_workshop_message_is_refused(raw, said):
    with pytest.raises(AnnouncementError, match=said):
        parse_workshop_message(raw, "w@1", NOW + timedelta(hours=1), NOW)


def test_a_message_after_the_slot_is_refused():
    with pytest.raises(AnnouncementError, match="slot is over"):
        parse_workshop_message({"text": "hi"}, "w@1", NOW - timedelta(minutes=1), NOW)


def test_current_without_a_viewer_leaves_scoped_ones_out():
    from factoryhub.announcements import Announcement

    later = NOW + timedelta(hours=1)
    items = [
        Announcement(1, "all", "", NOW, later, "a"),
        Announcement(2, "ws", "", NOW, later, "t", workshop="w@1"),
        Announcement(3, "me", "", NOW, later, "t", user="u"),
    ]
    assert [a.id for a in current(items, NOW)] == [1]
    assert {a.id for a in current(items, NOW, None, "u", ("w@1",))} == {1, 2, 3}


def test_the_session_counts_cells_from_the_browsers_execute_requests():
    from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

    from factoryhub.session.progress import Tally, execute_request_metadata

    v1 = "v1.kernel.websocket.jupyter.org"
    header = json.dumps({"msg_type": "execute_request", "msg_id": "1"}).encode()
    run = serialize_msg_to_ws_v1([header, b"{}", b'{"cellId": "c9"}', b"{}"], "shell")
    assert execute_request_metadata(run, v1) == {"cellId": "c9"}
    info = serialize_msg_to_ws_v1(
        [b'{"msg_type": "kernel_info_request"}', b"{}", b"{}", b"{}"], "shell"
    )
    assert execute_request_metadata(info, v1) is None
    legacy = json.dumps({"channel": "shell", "header": {"msg_type": "execute_request"}})
    assert execute_request_metadata(legacy, None) == {}
    assert execute_request_metadata(b"\x00garbage", v1) is None
    assert execute_request_metadata("{", None) is None

    tally = Tally()
    tally.opened("courses/a.ipynb")
    tally.opened("notes.txt")
    tally.opened("bad\n.ipynb")
    tally.cells += 3
    report = tally.take()
    assert report == {"notebooks_opened": ["courses/a.ipynb"], "cells_run": 3}
    assert parse_progress(report)  # what the session sends, the service takes
    tally.done(report)
    tally.opened("courses/a.ipynb")  # reported already
    assert tally.take() is None


# -- the trainers' web page: orders for `factoryhub workshop create|end` ------------------------


def test_an_order_becomes_the_commands_own_arguments():
    from factoryhub.workshoporders import parse_order

    order = parse_order(
        {"action": "create", "name": "dl101", "courses": "first-steps, dask-slurm",
         "start": "now", "end": "now+2h", "seats": "12", "trainers": "trainer ttrainer"},
        NOW.replace(tzinfo=None),
    )  # fmt: skip
    assert order.argv("/s.toml", dry_run=True) == [
        "workshop", "--site", "/s.toml", "create", "dl101", "--start", "now", "--end", "now+2h",
        "--seats", "12", "--course", "first-steps", "--course", "dask-slurm",
        "--trainer", "trainer", "--trainer", "ttrainer", "--dry-run",
    ]  # fmt: skip
    end = parse_order({"action": "end", "name": "dl101", "courses": "x;y"}, NOW)
    assert end.argv("/s.toml") == ["workshop", "--site", "/s.toml", "end", "dl101"]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"action": "purge", "name": "dl101"}, "action: one of create, end"),
        ({"action": "end", "name": "DL-101"}, "name: 2 to 16"),
        ({"action": "end", "name": "--site=/tmp/x"}, "name: 2 to 16"),
        ({"action": "create", "name": "dl101", "courses": "", "start": "now", "end": "now+1h",
          "seats": "2"}, "courses: name at least one"),
        ({"action": "create", "name": "dl101", "courses": "a;rm -rf /", "start": "now",
          "end": "now+1h", "seats": "2"}, "courses: 'a;rm' is not a name"),
        ({"action": "create", "name": "dl101", "courses": "c", "start": "tomorrow",
          "end": "now+1h", "seats": "2"}, "start: 'tomorrow' is not a time"),
        ({"action": "create", "name": "dl101", "courses": "c", "start": "now",
          "end": "now+1h", "seats": "2.5"}, "seats: a whole number"),
        ({"action": "create", "name": "dl101", "courses": "c", "start": "now",
          "end": "now+1h", "seats": "0"}, "seats: a whole number"),
        ({"action": "create", "name": "dl101", "courses": "c", "start": "now",
          "end": "now+1h", "seats": "2", "trainers": "--dry-run"}, "trainers: '--dry-run'"),
        ({"action": ["create", "end"], "name": "dl101"}, "action: one of"),
    ],
)  # fmt: skip
def test_a_bad_order_is_refused_with_a_sentence(fields, said):
    from factoryhub.workshoporders import OrderError, parse_order

    with pytest.raises(OrderError, match=re.escape(said)):
        parse_order(fields, NOW.replace(tzinfo=None))


def test_the_order_queue_keeps_orders_and_results_and_reads_no_links(tmp_path):
    from factoryhub.orderqueue import OrderQueue
    from factoryhub.workshoporders import WorkshopOrder, parse_order

    queue = OrderQueue(tmp_path / "orders")
    create = WorkshopOrder("create", "dl100", ("first-steps", "dask-slurm"), "now", "now+1h",
                           12, ("trainer",))  # fmt: skip
    queue.put(create, "tadmin", NOW - timedelta(days=1))
    (read_back,) = queue.queued()
    assert parse_order(read_back.fields, NOW.replace(tzinfo=None)) == create  # as root reads it
    queue.finish(read_back.id, 0, "made", NOW)
    first = queue.put(WorkshopOrder("end", "dl101"), "tadmin", NOW)
    second = queue.put(WorkshopOrder("end", "dl102"), "tadmin", NOW + timedelta(seconds=1))
    assert [o.id for o in queue.queued()] == [first, second]
    queue.finish(first, 0, "ended", NOW)
    assert [o.id for o in queue.queued()] == [second]
    assert queue.orders()[1].result["output"] == "ended"
    assert queue.orders()[2].result["output"] == "made"
    with pytest.raises(FileExistsError):  # a result is written once
        queue.finish(first, 1, "again", NOW)
    (tmp_path / "orders" / "20261203T100000-deadbeef.json").symlink_to("/etc/passwd")
    assert [o.id for o in queue.orders()][:2] == [second, first]  # the link is not read
    (tmp_path / "elsewhere").mkdir()
    swapped = OrderQueue(tmp_path / "swapped")
    (tmp_path / "swapped").symlink_to(tmp_path / "elsewhere")  # the folder itself a link
    assert swapped.orders() == []
    with pytest.raises(OSError):
        swapped.finish(second, 0, "x", NOW)
    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_a_seats_session_counts_the_notebooks_its_server_opens(tmp_path, demo_site):
    import asyncio
    import types

    import nbformat
    from jupyter_server.serverapp import ServerApp
    from jupyter_server.services.contents.filemanager import AsyncFileContentsManager

    from factoryhub.session.progress import start_progress
    from factoryhub.site import SITE_ENV, public_site_data

    app = ServerApp()
    app.init_event_logger()
    app.web_app = types.SimpleNamespace(settings={})
    environ = {
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_USER": "ws-dl101-01",
        SITE_ENV: json.dumps(public_site_data(demo_site)),
    }
    assert start_progress(app, {**environ, "JUPYTERHUB_API_TOKEN": ""}) is None  # no hub's
    tally = start_progress(app, environ)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    await AsyncFileContentsManager(event_logger=app.event_logger, root_dir=str(tmp_path)).get(
        "a.ipynb"
    )
    await asyncio.sleep(0.05)  # the listener runs as a task of the event
    assert tally.take() == {"notebooks_opened": ["a.ipynb"], "cells_run": 0}
    assert app.web_app.settings["factoryhub_progress"] is tally  # CountingConnection's
