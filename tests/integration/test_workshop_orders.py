"""The trainers' web page to create and end workshops on the real site (issue 15): for the
site's admins only; Preview runs the command's own --dry-run as the service's account and makes
nothing; Order queues the order, which root's `factoryhub workshop-orders` checks again and
runs with the same command; bad input is a sentence, a POST without the page's token refused."""

from __future__ import annotations

import html
import json
import re
import subprocess

import pytest
from realsite import FACTORYHUB, REPO, HubClient
from workshopkit import COURSE, RECORDS, left_behind, remove_by_hand, unique

pytestmark = pytest.mark.integration
SERVICE = "/services/factoryhub/"


def test_an_admin_previews_orders_and_ends_a_workshop_from_the_web_page(
    real_hub, hub_client: HubClient
):
    """The page runs the command's own --dry-run as the service's account, queues the real
    order, and root's `factoryhub workshop-orders` runs the same command."""
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("o")
    page = f"{SERVICE}workshops"
    fields = {"action": "create", "name": name, "courses": COURSE, "start": "now",
              "end": "now+30min", "seats": "2", "trainers": "ttrainer"}  # fmt: skip

    def run_orders() -> str:
        done = subprocess.run(
            [FACTORYHUB, "workshop-orders", "--site", str(real_hub.site_path)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        with hub_client._logged_in("ttrainer") as web:  # a trainer, not an admin
            assert web.get(page).status_code == 403
        with hub_client._logged_in("tadmin") as web:
            form = web.get(page)
            assert form.status_code == 200 and 'id="fh-order-form"' in form.text
            token = re.search(r'name="_token" value="([0-9a-f]{64})"', form.text).group(1)
            assert web.post(page, data={**fields, "do": "order"}).status_code == 403  # no token
            bad = web.post(page, data={**fields, "seats": "lots", "_token": token, "do": "order"})
            assert bad.status_code == 400 and "seats: a whole number" in html.unescape(bad.text)
            shown = web.post(page, data={**fields, "_token": token, "do": "preview"})
            assert shown.status_code == 200
            plan = html.unescape(
                re.search(r'<pre id="fh-order-plan">(.*?)</pre>', shown.text, re.S).group(1)
            )
            assert "Plan (dry run, nothing made)" in plan and f"reservation ws-{name}" in plan
            assert left_behind(name) == []  # a preview makes nothing
            queued = web.post(page, data={**fields, "_token": token, "do": "order"})
            assert queued.status_code == 202 and "is queued" in queued.text
            assert left_behind(name) == []  # nothing until root runs it
            assert f"create {name}, exit 0" in run_orders()
            listed = web.get(page).text
            assert f'id="workshop-{name}"' in listed and ">done<" in listed
            assert (RECORDS / f"{name}.json").exists()
            ended = web.post(page, data={"action": "end", "name": name, "_token": token,
                                         "do": "order"})  # fmt: skip
            assert ended.status_code == 202
            assert f"end {name}, exit 0" in run_orders()
            assert json.loads((RECORDS / f"{name}.json").read_text())["state"] == "ended"
    finally:
        remove_by_hand(name)
