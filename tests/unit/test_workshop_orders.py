"""Workshop orders from the web page (issue 15): what a trainer may order (with themselves among
the trainers, within the site's bounds, an end only of a workshop they train), the page that
applies it (a learner gets 403), root's second check of a queued order, one run of the queue
at a time, and the supervisor that runs the queue periodically."""

from __future__ import annotations

import html
import json
import re
import signal
import subprocess
import sys
import time
import tomllib
from argparse import Namespace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import tomli_w
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from factoryhub.cli import workshop_orders as orders_cli
from factoryhub.demo import orderrunner
from factoryhub.demo.supervise import wait_before_next
from factoryhub.identity import TRAINERS
from factoryhub.orderqueue import OrderQueue, orders_dir
from factoryhub.service.pages import PREFIX, SITE_FILE, SiteFile
from factoryhub.service.workshop_orders_page import WorkshopOrdersHandler
from factoryhub.site import SiteError, load_site, parse_site
from factoryhub.workshoporders import (
    OrderError,
    TrainerBounds,
    WorkshopOrder,
    check_order_rights,
    check_trainer_order,
    gpu_hours,
    parse_order,
    seat_gpus,
    with_trainer,
)

NOW = datetime(2026, 12, 3, 10, 0)
BOUNDS = TrainerBounds(max_seats=20, max_gpu_hours=40.0)
GPU_PRESETS = {"deep": {"partition": "gpu", "gpus": 1}, "intro": {"partition": "cpu"}}


def create(**fields: str) -> WorkshopOrder:
    given = {"action": "create", "name": "dl101", "courses": "intro", "start": "now",
             "end": "now+2h", "seats": "10", **fields}  # fmt: skip
    return parse_order(given, NOW)


def trainer_check(order: WorkshopOrder, who: str = "ttrainer", **facts) -> None:
    check_order_rights(
        order, who, "trainer", BOUNDS,
        presets=facts.get("presets", GPU_PRESETS), trainers_of=facts.get("trainers_of", {}),
        now=NOW,
    )  # fmt: skip


# -- the rules (pure) -----------------------------------------------------------------------


def test_a_trainer_creates_a_workshop_with_themselves_among_its_trainers():
    order = with_trainer(create(trainers="alice"), "ttrainer")
    assert order.trainers == ("ttrainer", "alice")
    assert "--trainer" in order.argv("/s.toml") and "ttrainer" in order.argv("/s.toml")
    trainer_check(order)  # no OrderError
    assert with_trainer(order, "ttrainer") == order  # named once
    assert with_trainer(WorkshopOrder("end", "dl101"), "ttrainer").trainers == ()


def test_a_trainer_may_not_create_a_workshop_whose_trainers_exclude_them():
    with pytest.raises(OrderError, match="has you among its trainers"):
        trainer_check(create(trainers="alice"))
    full = create(trainers=" ".join(f"t{n}" for n in range(10)))
    with pytest.raises(OrderError, match="trainers: at most 10, you included"):
        with_trainer(full, "ttrainer")


def test_a_trainer_ends_only_the_workshops_they_train():
    trainers_of = {"dl101": ("ttrainer",), "dl102": ("other", "admin")}
    trainer_check(WorkshopOrder("end", "dl101"), trainers_of=trainers_of)
    for name in ("dl102", "nosuch"):
        with pytest.raises(OrderError, match=f"not a trainer of workshop {name}"):
            trainer_check(WorkshopOrder("end", name), trainers_of=trainers_of)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"seats": "21"}, "seats: a trainer may order at most 20"),
        # 12 seats × 1 GPU × 4 h = 48 GPU-hours > 40
        ({"courses": "deep", "seats": "12", "end": "now+4h"}, "budget would be 48 GPU-hours"),
        ({"courses": "deep", "seats": "2", "gpu_hours": "40.5"}, "at most 40 on this site"),
    ],
)
def test_a_trainer_may_not_exceed_the_sites_bounds(fields, said):
    order = with_trainer(create(**fields), "ttrainer")
    with pytest.raises(OrderError, match=re.escape(said)):
        trainer_check(order)
    # an admin is not bounded
    check_order_rights(
        order, "admin", "admin", BOUNDS, presets=GPU_PRESETS, trainers_of={}, now=NOW
    )


def test_the_gpu_budget_is_reckoned_as_the_command_reckons_it():
    order = create(courses="intro deep", seats="10", start="now+1h", end="now+4h")
    assert seat_gpus(order, GPU_PRESETS) == 1
    assert seat_gpus(order, {}) == 0  # a course not in the catalogue: the command refuses it
    assert gpu_hours(order, 1, NOW) == 30.0  # 10 seats × 1 GPU × 3 h
    assert gpu_hours(create(seats="10", gpu_hours="7.5"), 1, NOW) == 7.5
    # a budget within the bound makes a larger GPU workshop possible
    trainer_check(with_trainer(create(courses="deep", seats="20", gpu_hours="40"), "ttrainer"))


def test_bounds_of_zero_seats_leave_creation_to_the_admins_and_others_order_nothing():
    order = with_trainer(create(), "ttrainer")
    with pytest.raises(OrderError, match="admins create its workshops"):
        check_trainer_order(order, "ttrainer", TrainerBounds(0, 0.0), gpus_per_seat=0,
                            trains=(), now=NOW)  # fmt: skip
    with pytest.raises(OrderError, match="only the site's trainers and admins"):
        check_order_rights(order, "ttrainer", "learner", BOUNDS, presets={}, trainers_of={},
                           now=NOW)  # fmt: skip


@pytest.mark.parametrize("hours", ["1e3", "-1", "nan", "12,5", "٣", "1.234", "9999999"])
def test_a_gpu_budget_that_is_not_a_plain_number_is_refused(hours):
    with pytest.raises(OrderError, match="gpu_hours: a number of hours"):
        create(gpu_hours=hours)


def test_site_toml_bounds_are_read_and_checked(repo):
    text = (repo / "hub_config" / "site.toml").read_text()
    assert TrainerBounds.of(parse_site(text)) == TrainerBounds(30, 100.0)
    for line, said in (
        ("trainer_max_seats = 301", "workshops.trainer_max_seats"),
        ("trainer_max_seats = -1", "workshops.trainer_max_seats"),
        ("trainer_max_gpu_hours = -2.0", "workshops.trainer_max_gpu_hours"),
        ('trainer_max_gpu_hours = "lots"', "workshops.trainer_max_gpu_hours: expected float"),
    ):
        key = line.split(" = ")[0]
        changed = re.sub(rf"(?m)^{key} = .*$", line, text)
        with pytest.raises(SiteError, match=re.escape(said)):
            parse_site(changed)


# -- the queue: who ordered, one run at a time ----------------------------------------------


def test_the_queue_keeps_who_ordered_and_reads_an_order_without_a_role_as_a_trainers(tmp_path):
    queue = OrderQueue(tmp_path / "orders")
    queue.put(WorkshopOrder("end", "dl101"), "admin", NOW, "admin")
    queue.put(WorkshopOrder("end", "dl102"), "ttrainer", NOW + timedelta(seconds=1))
    old = tmp_path / "orders" / "20261203T090000-0000abcd.json"  # queued before roles
    old.write_text(json.dumps({"by": "x", "created": "", "fields": {"action": "end"}}))
    assert [o.role for o in queue.queued()] == ["trainer", "admin", "trainer"]
    with pytest.raises(ValueError, match="role"):
        queue.put(WorkshopOrder("end", "dl101"), "x", NOW, "root")


def test_only_one_run_of_the_queue_at_a_time(tmp_path):
    queue = OrderQueue(tmp_path / "orders")
    queue.put(WorkshopOrder("end", "dl101"), "admin", NOW, "admin")
    with queue.run_lock() as first:
        assert first
        with OrderQueue(tmp_path / "orders").run_lock() as second:
            assert not second
    with queue.run_lock() as again:
        assert again  # released when the run ended


# -- root's run checks a trainer's order again ----------------------------------------------


@pytest.fixture
def test_site(repo, tmp_path):
    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["hub"].update(id="unit-orders", state_dir=str(tmp_path),
                      catalogue_dir=str(tmp_path / "catalogue"))  # fmt: skip
    raw["workshops"].update(trainer_max_seats=5)
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_root_refuses_a_queued_trainers_order_over_the_bounds_and_runs_nothing(test_site, capsys):
    site = load_site(test_site)
    queue = OrderQueue(orders_dir(site))
    over = with_trainer(create(seats="6"), "ttrainer")  # as if written past the page
    number = queue.put(over, "ttrainer", datetime.now(), "trainer")
    with queue.run_lock():  # another run holds the queue: this one leaves it
        assert orders_cli.main(Namespace(site=test_site)) == 0
    assert "another run" in capsys.readouterr().out and queue.queued()
    assert orders_cli.main(Namespace(site=test_site)) == 0
    (done,) = queue.orders()
    assert done.id == number and done.result["rc"] == 2
    assert "Not run: seats: a trainer may order at most 5" in done.result["output"]
    assert "refused" in capsys.readouterr().out


# -- the page: trainers and admins; a learner gets 403 ----------------------------------------


class _AsUser:
    """The caller named by ?user= (and ?groups=), as the hub's OAuth would name them."""

    def get_current_user(self):
        name = self.get_argument("user", "")
        groups = [g for g in self.get_argument("groups", "").split(",") if g]
        return {"name": name, "admin": name == "admin", "groups": groups} if name else None


class _Orders(_AsUser, WorkshopOrdersHandler):
    pass


@pytest.fixture
async def page(test_site):
    prefix = "/services/factoryhub/"
    app = Application(
        [(f"{prefix}workshops", _Orders)],
        cookie_secret=b"s" * 32,
        **{SITE_FILE: SiteFile(str(test_site)), PREFIX: prefix},
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}{prefix}workshops"
    server.stop()


async def _visit(url: str, who: str, groups: str = "", form: dict | None = None):
    query = urlencode({"user": who, "groups": groups})
    body = {"method": "POST", "body": urlencode(form)} if form is not None else {}
    reply = await AsyncHTTPClient().fetch(f"{url}?{query}", raise_error=False, **body)
    return reply.code, html.unescape(reply.body.decode())


async def _token(url: str, who: str, groups: str = "") -> str:
    code, text = await _visit(url, who, groups)
    assert code == 200, text
    return re.search(r'name="_token" value="([0-9a-f]{64})"', text).group(1)


FORM = {"action": "create", "name": "dl101", "courses": "intro", "start": "now",
        "end": "now+2h", "seats": "3", "trainers": "", "do": "order"}  # fmt: skip


async def test_a_learner_may_neither_see_the_page_nor_order(page, test_site):
    token = await _token(page, "trainer")  # a token of another user's is no use either
    assert (await _visit(page, "alice"))[0] == 403
    code, text = await _visit(page, "alice", form={**FORM, "_token": token})
    assert code == 403 and "not open to your account" in text
    assert OrderQueue(orders_dir(load_site(test_site))).orders() == []


async def test_a_trainer_orders_with_themselves_within_the_bounds(page, test_site):
    queue = OrderQueue(orders_dir(load_site(test_site)))
    token = await _token(page, "trainer")
    code, text = await _visit(page, "trainer", form={**FORM, "_token": token})
    assert code == 202 and "is queued" in text
    (queued,) = queue.orders()
    assert (queued.by, queued.role) == ("trainer", "trainer")
    assert parse_order(queued.fields, datetime.now()).trainers == ("trainer",)
    code, text = await _visit(page, "trainer", form={**FORM, "seats": "6", "_token": token})
    assert code == 400 and "seats: a trainer may order at most 5" in text
    end = {"action": "end", "name": "dl102", "_token": token, "do": "order"}
    code, text = await _visit(page, "trainer", form=end)
    assert code == 400 and "not a trainer of workshop dl102" in text
    assert len(queue.orders()) == 1  # nothing over the bounds was queued


async def test_single_sign_ons_trainers_group_counts_and_admins_are_not_bounded(page, test_site):
    queue = OrderQueue(orders_dir(load_site(test_site)))
    token = await _token(page, "carol", TRAINERS)  # a trainer by the hub's group alone
    code, _ = await _visit(page, "carol", TRAINERS, form={**FORM, "_token": token})
    assert code == 202
    token = await _token(page, "admin")
    code, _ = await _visit(page, "admin", form={**FORM, "name": "dl103", "seats": "50",
                                                 "_token": token})  # fmt: skip
    assert code == 202
    by = {o.by: o for o in queue.orders()}  # (ids of the same second sort at random)
    assert by["carol"].role == "trainer" and by["admin"].role == "admin"
    assert parse_order(by["admin"].fields, datetime.now()).trainers == ()
    _, shown = await _visit(page, "carol", TRAINERS)
    assert "dl103" not in shown  # a trainer sees their own orders only


# -- the supervisor's periodic runs ---------------------------------------------------------


def test_runs_start_every_period_and_a_long_one_is_followed_after_a_pause():
    assert wait_before_next(15, 2) == 13
    assert wait_before_next(15, 40) == 1.0
    assert wait_before_next(0.5, 40) == 0.5


def test_a_failing_periodic_run_is_logged_and_run_again_until_sigterm(tmp_path):
    runs = tmp_path / "runs"
    command = f"echo run >> {runs}; exit 3"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "factoryhub.demo.supervise", "--every", "1", "--",
         "sh", "-c", command],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(_lines(runs)) < 3:
        time.sleep(0.1)
    assert len(_lines(runs)) >= 3  # still running after failures
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=10) == 0
    assert f"supervise: sh -c '{command}' exited (3); next run in 1 s" in supervisor.stderr.read()


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_the_periodic_run_is_quiet_and_light_with_an_empty_queue(test_site, tmp_path):
    """What the runner starts every 15 s: `workshop-orders` as its own module, which prints
    nothing and imports no course tools (papermill: a second of CPU) with nothing queued."""
    hub = Namespace(site=load_site(test_site), hub_site=test_site)
    argv = orderrunner.runner_argv(hub, Path(sys.executable).parent.parent)
    assert argv[argv.index("--") + 1 :][1:] == [
        "-m", "factoryhub.cli.workshop_orders", "--site", str(test_site),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[argv.index("--") + 2 :]],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == ""
    assert "papermill" not in done.stderr and "factoryhub.orderqueue" in done.stderr
