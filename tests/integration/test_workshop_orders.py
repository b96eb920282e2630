"""The trainers' web page to create and end workshops on the real site (issue 15): admins and
trainers order (a learner gets 403); Preview runs the command's own --dry-run as the service's
account and makes nothing; Order queues the order, and root runs the queue by itself: the test
hub is started as the product starts a hub (`start_hub`), with root's periodic `factoryhub
workshop-orders` every 15 s beside it (factoryhub.demo.orderrunner), so nothing here runs the
queue by hand. Bad input and a trainer's order over the site's bounds are a sentence, nothing
queued; a POST without the page's token is refused."""

from __future__ import annotations

import html
import json
import re

import pytest
from realsite import REPO, HubClient, wait_until
from workshopkit import COURSE, RECORDS, left_behind, remove_by_hand, reservation_line, unique

from factoryhub.demo import orderrunner
from factoryhub.demo.hubprocess import hub_status
from factoryhub.orderqueue import orders_dir

pytestmark = pytest.mark.integration
SERVICE = "/services/factoryhub/"
PAGE = f"{SERVICE}workshops"
RUN_WITHIN = 90  # seconds: a run every 15 s, and a creation or an end takes a few


def _token(web) -> str:
    form = web.get(PAGE)
    assert form.status_code == 200 and 'id="fh-order-form"' in form.text
    return re.search(r'name="_token" value="([0-9a-f]{64})"', form.text).group(1)


def _result(web, number: str) -> str:
    """The order's result as the page shows it: "queued", "done" or "failed (exit N)"."""
    page = web.get(PAGE)
    assert page.status_code == 200, page.status_code  # 429: the service's rate limit
    row = re.search(rf'<tr id="order-{number}">(.*?)</tr>', page.text, re.S)
    assert row, f"order {number} is not on the page"
    return re.search(r'class="result">([^<]*)<', row.group(1)).group(1)


def _order(web, fields: dict) -> str:
    """Order from the page; the queued order's number."""
    queued = web.post(PAGE, data={**fields, "_token": _token(web), "do": "order"})
    assert queued.status_code == 202 and "is queued" in queued.text, queued.text[-500:]
    return re.search(r"Order (\d{8}T\d{6}-[0-9a-f]{8})", queued.text).group(1)


def _run_by_root(web, number: str, site) -> None:
    """Wait for root's periodic run to take the order (nobody runs it by hand): its result
    file in the queue, looked for every half second (the page allows a user 30 looks a
    minute, site.toml [limits]); then the page must say "done"."""
    result = orders_dir(site) / f"{number}.result"
    wait_until(result.exists, RUN_WITHIN, f"order {number}", 0.5)
    assert _result(web, number) == "done", web.get(PAGE).text[-3000:]


def test_root_runs_the_queue_by_itself_beside_the_test_hub(real_hub):
    """The runner is started with the hub, as root, its pid file in root's own folder."""
    pid = hub_status(real_hub)["workshop orders"]
    assert pid and orderrunner.runner_pid(real_hub) == pid
    with open(f"/proc/{pid}/status") as status:
        assert re.search(r"(?m)^Uid:\s+0\s", status.read())
    assert (real_hub.state_dir / orderrunner.LOG).exists()


def test_a_trainer_orders_and_ends_a_workshop_from_the_web_page(real_hub, hub_client: HubClient):
    """A trainer orders a workshop with no trainer named: the page adds them, root's periodic
    run makes it (a reservation in Slurm), and the trainer ends it the same way. Over the
    site's bounds, or another's workshop, is a sentence and nothing queued; a learner 403."""
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("t")
    fields = {"action": "create", "name": name, "courses": COURSE, "start": "now",
              "end": "now+30min", "seats": "2", "trainers": ""}  # fmt: skip
    try:
        with hub_client._logged_in("tlearner1") as web:
            assert web.get(PAGE).status_code == 403
        with hub_client._logged_in("ttrainer") as web:
            token = _token(web)
            over = web.post(PAGE, data={**fields, "seats": "31", "_token": token, "do": "order"})
            assert over.status_code == 400
            assert "a trainer may order at most 30" in html.unescape(over.text)
            number = _order(web, fields)
            _run_by_root(web, number, real_hub.site)
            assert reservation_line(f"ws-{name}").startswith("ReservationName")
            record = json.loads((RECORDS / f"{name}.json").read_text())
            assert record["trainers"] == ["ttrainer"] and record["state"] == "active"
            assert f'id="workshop-{name}"' in web.get(PAGE).text
            other = web.post(PAGE, data={"action": "end", "name": "nosuchws", "_token": token,
                                         "do": "order"})  # fmt: skip
            assert other.status_code == 400 and "not a trainer of workshop" in other.text
            number = _order(web, {"action": "end", "name": name})
            _run_by_root(web, number, real_hub.site)
            assert json.loads((RECORDS / f"{name}.json").read_text())["state"] == "ended"
            assert not reservation_line(f"ws-{name}").startswith("ReservationName")
    finally:
        remove_by_hand(name)


def test_an_admin_previews_and_orders_and_a_bad_order_is_refused(real_hub, hub_client: HubClient):
    """The page runs the command's own --dry-run as the service's account; the order is
    run by root's periodic run with the same command."""
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("o")
    fields = {"action": "create", "name": name, "courses": COURSE, "start": "now",
              "end": "now+30min", "seats": "2", "trainers": "ttrainer"}  # fmt: skip
    try:
        with hub_client._logged_in("tadmin") as web:
            token = _token(web)
            assert web.post(PAGE, data={**fields, "do": "order"}).status_code == 403  # no token
            bad = web.post(PAGE, data={**fields, "seats": "lots", "_token": token, "do": "order"})
            assert bad.status_code == 400 and "seats: a whole number" in html.unescape(bad.text)
            shown = web.post(PAGE, data={**fields, "_token": token, "do": "preview"})
            assert shown.status_code == 200
            plan = html.unescape(
                re.search(r'<pre id="fh-order-plan">(.*?)</pre>', shown.text, re.S).group(1)
            )
            assert "Plan (dry run, nothing made)" in plan and f"reservation ws-{name}" in plan
            assert left_behind(name) == []  # a preview makes nothing
            number = _order(web, fields)
            _run_by_root(web, number, real_hub.site)
            assert reservation_line(f"ws-{name}").startswith("ReservationName")
            _run_by_root(web, _order(web, {"action": "end", "name": name}), real_hub.site)
            assert json.loads((RECORDS / f"{name}.json").read_text())["state"] == "ended"
    finally:
        remove_by_hand(name)
