"""The attacker's tests of today's changes (trainers' workshop orders, root's queue, the notebook
view): each plays a trainer or a learner against one bound.

A test marked ``xfail(strict=True)`` is a FINDING NOT YET FIXED: it fails on the current code
(so it runs as an expected failure) and its reason says the fix proposed; when the fix lands it
passes, strict makes that an error, and the marker is to be removed then."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from factoryhub.capacity import NodeCapacity
from factoryhub.orderqueue import MAX_BYTES, OrderQueue
from factoryhub.workshop import SiteFacts, WorkshopRequest, plan_workshop
from factoryhub.workshoporders import (
    OrderError,
    TrainerBounds,
    WorkshopOrder,
    check_order_rights,
    parse_order,
    with_trainer,
)

NOW = datetime(2026, 12, 3, 10, 0)
BOUNDS = TrainerBounds(max_seats=20, max_gpu_hours=40.0)
PRESETS = {
    "deep": {"partition": "gpu", "cpus": 4, "memory_gb": 16, "gpus": 1, "walltime": "02:00:00",
             "environment": "default"},
    "intro": {"partition": "cpu", "cpus": 2, "memory_gb": 4, "gpus": 0, "walltime": "01:00:00",
              "environment": "default"},
}  # fmt: skip
NODES = tuple(
    NodeCapacity(name, part, "idle", cpus, cpus, 128000, 0, {"h100": gpus} if gpus else {}, {})
    for name, part, cpus, gpus in (
        ("cn01", "cpu", 32, 0), ("cn02", "cpu", 32, 0), ("gn01", "gpu", 16, 4),
        ("gn02", "gpu", 16, 4),
    )
)  # fmt: skip


def trainers_order(**fields: str) -> WorkshopOrder:
    given = {"action": "create", "name": "dl101", "courses": "deep", "start": "now",
             "end": "now+2h", "seats": "4", **fields}  # fmt: skip
    return with_trainer(parse_order(given, NOW), "ttrainer")


def as_trainer(order: WorkshopOrder) -> None:
    check_order_rights(
        order, "ttrainer", "trainer", BOUNDS, presets=PRESETS, trainers_of={}, now=NOW
    )


def planned(order: WorkshopOrder):
    """What root's `workshop create` plans for the order (its argv's values, as the CLI reads
    them)."""
    request = WorkshopRequest(
        name=order.name,
        courses=order.courses,
        start=NOW,
        end=NOW + timedelta(hours=2),
        seats=order.seats,
        gpu_hours=float(order.gpu_hours) if order.gpu_hours else None,
        trainers=order.trainers,
    )
    facts = SiteFacts(now=NOW, presets=PRESETS, nodes=NODES, users=frozenset({"ttrainer"}))
    return plan_workshop(request, facts)


# -- finding: a GPU budget of 0 was no GPU limit at all -------------------------------------


@pytest.mark.parametrize("hours", ["0", "0.0", "0.00"])
def test_a_trainers_gpu_budget_of_zero_is_a_limit_of_zero_not_no_limit(hours):
    """A trainer bounded to 40 GPU-hours orders 4 GPU seats with gpu_hours 0: the page and
    root's check count 0 GPU-hours (within the bound), and the account then got no GPU limit
    at all (GrpTRESMins without gres/gpu): the seats could use every reserved GPU for the
    whole slot, past any bound."""
    order = trainers_order(gpu_hours=hours)
    as_trainer(order)  # within the bound, as the page and root both say
    assert "--gpu-hours" in order.argv("/site.toml")
    limits = planned(order).account_limits()
    assert limits == ["GrpTRESMins=cpu=1920,gres/gpu=0"]  # 4 seats × 4 CPUs × 120 min


def test_an_admins_tiny_gpu_budget_is_never_rounded_to_no_limit():
    plan = planned(replace(trainers_order(), gpu_hours="0.001"))
    assert plan.account_limits() == ["GrpTRESMins=cpu=1920,gres/gpu=0"]
    assert planned(trainers_order()).account_limits() == ["GrpTRESMins=cpu=1920,gres/gpu=480"]


# -- findings proposed: what the reservation holds is not bounded ---------------------------


def test_a_trainer_cannot_hold_the_gpu_nodes_for_a_week_with_a_small_budget():
    week = (NOW + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    with pytest.raises(OrderError):
        as_trainer(trainers_order(seats="8", end=week, gpu_hours="40"))  # holds 1344 GPU-h


def test_a_trainer_cannot_reserve_cores_for_a_year():
    year = (NOW + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M")
    with pytest.raises(OrderError):
        as_trainer(trainers_order(courses="intro", seats="20", end=year))


def test_a_trainer_who_trains_many_workshops_cannot_order_one_more():
    trainers_of = {f"w{n}": ("ttrainer",) for n in range(20)}  # 20 workshops, all theirs
    with pytest.raises(OrderError):
        check_order_rights(
            trainers_order(courses="intro"), "ttrainer", "trainer", BOUNDS, presets=PRESETS,
            trainers_of=trainers_of, now=NOW,
        )  # fmt: skip


# -- finding: a result root wrote that root's own reader refuses ran the order again ---------


def test_a_long_result_is_read_back_so_root_never_runs_the_order_again(tmp_path):
    """The result keeps 8000 characters of output, but JSON writes each non-ASCII character as
    a 6-byte escape and the queue reads no file over MAX_BYTES (16 KB): such a result read as
    none, the order stayed queued, root ran it again every 15 s and its second result
    (O_EXCL) raised FileExistsError, ending the run before the orders after it."""
    queue = OrderQueue(tmp_path / "orders")
    number = queue.put(WorkshopOrder("end", "dl101"), "ttrainer", NOW)
    queue.finish(number, 1, "archive of ws-dl101-01: é→ø\n" + "→" * 9000, NOW)
    assert queue.queued() == []
    (done,) = queue.orders()
    assert done.result is not None and done.result["rc"] == 1
    assert (tmp_path / "orders" / f"{number}.result").stat().st_size <= MAX_BYTES
    assert json.loads((tmp_path / "orders" / f"{number}.result").read_text())["output"]


# -- finding: a trainer's order flood kept root's runner busy --------------------------------


@pytest.fixture
def orders_site(repo, tmp_path):
    import tomllib

    import tomli_w

    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["hub"].update(id="unit-attack", state_dir=str(tmp_path),
                      catalogue_dir=str(tmp_path / "catalogue"))  # fmt: skip
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


@pytest.fixture
async def orders_page(orders_site):
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from tornado.web import Application

    from factoryhub.service.pages import PREFIX, SITE_FILE, SiteFile
    from factoryhub.service.workshop_orders_page import WorkshopOrdersHandler

    class AsUser(WorkshopOrdersHandler):
        def get_current_user(self):
            name = self.get_argument("user", "")
            return {"name": name, "admin": name == "admin", "groups": []} if name else None

    prefix = "/services/factoryhub/"
    app = Application([(f"{prefix}workshops", AsUser)], cookie_secret=b"s" * 32,
                      **{SITE_FILE: SiteFile(str(orders_site)), PREFIX: prefix})  # fmt: skip
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}{prefix}workshops"
    server.stop()


async def _post(url: str, who: str, form: dict) -> int:
    import re
    from urllib.parse import urlencode

    from tornado.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient()
    page = await client.fetch(f"{url}?user={who}", raise_error=False)
    token = re.search(r'name="_token" value="([0-9a-f]{64})"', page.body.decode()).group(1)
    body = urlencode({**form, "_token": token, "do": "order"})
    reply = await client.fetch(f"{url}?user={who}", method="POST", body=body, raise_error=False)
    return reply.code


async def test_a_trainers_order_flood_is_not_queued_for_root(orders_page, orders_site):
    """Every valid order a trainer makes was queued (the page's 30 a minute), and root's
    runner runs each with `factoryhub workshop` (1.35 s of CPU even for the end of a workshop
    that has ended): 'end dl101' 30 times a minute kept most of a core busy. A trainer has at
    most a few orders waiting; an admin is not held."""
    from factoryhub.orderqueue import orders_dir
    from factoryhub.site import load_site

    form = {"action": "create", "courses": "intro", "start": "now", "end": "now+2h",
            "seats": "2", "trainers": ""}  # fmt: skip
    codes = [await _post(orders_page, "trainer", {**form, "name": f"fl{n}"}) for n in range(8)]
    queue = OrderQueue(orders_dir(load_site(orders_site)))
    assert len([o for o in queue.orders() if o.by == "trainer"]) <= 3, codes
    assert 429 in codes
    assert await _post(orders_page, "admin", {**form, "name": "fladmin"}) == 202


# -- held: the learner's server cannot send a gzip bomb past the byte limit -------------------


@pytest.fixture
async def gzip_bomb():
    """A learner's server on its session's port (the learner runs what they like there): it
    answers every read with gzip (asked for or not) of a JSON model 64 MB long once inflated,
    under 70 KB on the wire."""
    import gzip

    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from tornado.web import Application, RequestHandler

    inflated = b'{"type": "notebook", "content": "' + b"a" * (64 << 20) + b'"}'
    body = gzip.compress(inflated, compresslevel=9)

    class Bomb(RequestHandler):
        def get(self, _path: str) -> None:
            self.set_header("Content-Type", "application/json")
            self.set_header("Content-Encoding", "gzip")
            self.finish(body)

    sock, port = bind_unused_port()
    server = HTTPServer(Application([(r"/(.*)", Bomb)]))
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}/user/ws-dl101-01/api/contents/a.ipynb", len(body)
    server.stop()


async def test_the_learners_server_cannot_inflate_an_answer_past_the_limit(gzip_bomb):
    """The service reads at most `limit` bytes of a learner's answer, and tornado's client
    inflates gzip by default: the bound must hold for the inflated body, or 2 x 5 MB of gzip
    would be 10 GB in the hub service's memory (the listing alone, read when a trainer opens
    a seat's folder, reads 5 MB). It holds (tornado's client counts the inflated bytes
    against max_body_size); this test keeps it so."""
    from factoryhub.service.notebook_view import SessionUnavailable, _get

    url, wire = gzip_bomb
    assert wire < 128 * 1024
    with pytest.raises(SessionUnavailable):
        model = await _get(url, "seat-token", None, 128 * 1024)
        pytest.fail(f"read {len(model['content']) >> 20} MB from {wire >> 10} KB on the wire")


async def test_previews_run_one_per_trainer_and_few_at_once(orders_page, monkeypatch):
    """A preview runs the whole `factoryhub workshop create --dry-run` (about a second of CPU,
    100 MB, Slurm queries): the page's rate (a burst of 20) let one trainer run 20 at once."""
    import asyncio
    import re
    from urllib.parse import urlencode

    from tornado.httpclient import AsyncHTTPClient

    from factoryhub.service import workshop_orders_page

    release = asyncio.Event()
    running = []

    async def slow_preview(order, site_path):
        running.append(order.name)
        await release.wait()
        return "Plan (dry run, nothing made):"

    monkeypatch.setattr(workshop_orders_page, "preview", slow_preview)
    client = AsyncHTTPClient()
    page = await client.fetch(f"{orders_page}?user=trainer")
    token = re.search(r'name="_token" value="([0-9a-f]{64})"', page.body.decode()).group(1)
    form = {"action": "create", "courses": "intro", "start": "now", "end": "now+2h",
            "seats": "2", "trainers": "", "_token": token, "do": "preview"}  # fmt: skip

    def post(name: str):
        body = urlencode({**form, "name": name})
        return client.fetch(f"{orders_page}?user=trainer", method="POST", body=body,
                            raise_error=False)  # fmt: skip

    first = asyncio.ensure_future(post("pv1"))
    while not running:
        await asyncio.sleep(0.01)
    seconds = await asyncio.gather(*(post(f"pv{n}") for n in range(2, 6)))
    assert [r.code for r in seconds] == [429] * 4 and running == ["pv1"]
    release.set()
    assert (await first).code == 200
    assert (await post("pv9")).code == 200  # the trainer's next preview, once it is done


def test_only_a_trainers_workshops_not_yet_over_count_against_their_bound():
    """Ended workshops, and workshops past their slot (nothing reserved any more), do not
    count: a trainer who ran twenty workshops may order the next one."""
    trainers_of = {f"w{n}": ("ttrainer",) for n in range(20)}
    check_order_rights(
        trainers_order(courses="intro"), "ttrainer", "trainer", BOUNDS, presets=PRESETS,
        trainers_of=trainers_of, now=NOW, active={"w1", "w2"},
    )  # fmt: skip
    with pytest.raises(OrderError, match="not yet ended"):
        check_order_rights(
            trainers_order(courses="intro"), "ttrainer", "trainer", BOUNDS, presets=PRESETS,
            trainers_of=trainers_of, now=NOW, active={"w1", "w2", "w3"},
        )  # fmt: skip
