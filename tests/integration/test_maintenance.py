"""Maintenance windows on the real site: a maintenance reservation of the GPU nodes made by the
test (with SlurmAdmin, deleted in the `finally`) shows in the spawn form with when a session
started now would end, and the estimate of a session that would run into it says it starts
after the maintenance and what would start now."""

import asyncio
import re
from datetime import datetime, timedelta

import httpx
import pytest
from clock import clock
from realsite import wait_until

from factoryhub.scheduler.admin import SlurmAdmin

pytestmark = pytest.mark.integration

NAME = "tmaint"
LEARNER = "tlearner2"


def test_a_maintenance_reservation_shows_in_the_form_and_the_estimate(real_hub, hub_client):
    admin = SlurmAdmin()
    settings = {
        "StartTime": "now+90minutes",
        "Duration": "60",
        "Nodes": "gn01,gn02",
        "Flags": "MAINT",
        "Users": "root",
    }
    asyncio.run(admin.create_reservation(NAME, settings))
    try:
        # reservations are public on this site: any user could read them as the hub does
        (window,) = [r for r in asyncio.run(admin.reservations()) if r.name == NAME]
        assert window.maintenance
        start = datetime.fromisoformat(window.start)
        end = datetime.fromisoformat(window.end)
        said = (
            f"The gpu nodes go into maintenance at {clock(start)} (until {clock(end)}); a session"
            " started now would end at "
        )
        # the hub reads reservations with the partitions' capacity, at most a few seconds old
        shown: list[str] = []

        def notice_shown() -> bool:
            shown.append(hub_client.spawn_page(LEARNER))
            return said in shown[-1]

        try:
            wait_until(notice_shown, 20, "the maintenance notice in the form", 2)
        except TimeoutError:
            form = shown[-1][shown[-1].find("<form") :]
            raise AssertionError(re.sub(r"<[^>]+>|\s+", " ", form)[:2000]) from None
        html = shown[-1]
        assert "The cpu nodes go" not in html
        token = hub_client.login_token(LEARNER)
        url = f"{real_hub.site.hub.url}/services/factoryhub/estimate"
        headers = {"Authorization": f"token {token}"}
        params = {"partition": "gpu", "gpus": "1", "walltime": "03:00:00"}
        body = httpx.get(url, params=params, headers=headers, timeout=30).json()
        assert body["kind"] == "later", body
        latest = start - timedelta(minutes=5)
        assert (
            f"a session started now would have to end by {clock(latest)}: ask for at most"
            in (body["message"])
        )
        assert body["message"].endswith("or it starts after the maintenance.")
        assert body["start"] == end.isoformat()
        short = httpx.get(url, params={**params, "walltime": "01:00:00"}, headers=headers)
        assert "maintenance" not in short.json()["message"], short.json()
    finally:
        asyncio.run(admin.delete_reservation(NAME))
