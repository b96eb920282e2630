"""The spawn form's notices in a real browser (issue 16): the session the culler stopped and why,
the budget left on the learner's accounts, a maintenance window of the GPU nodes made by the
test (deleted in the `finally`), and a request over the budget explained by the live estimate
before anything is submitted. Nothing here starts a session."""

import asyncio
import os
import pwd
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from chromium import IMAGES

from browser.test_site_pages import log_in
from factoryhub.budget import describe_budget
from factoryhub.culling import CullRecord, records_path, write_record
from factoryhub.scheduler.admin import SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient

pytestmark = pytest.mark.browser

LEARNER = "tlearner3"
MAINT = "tmaintform"


def _run(step):
    """An async Slurm step from this test (Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, step).result()


def _record_a_stop(site) -> None:
    """A stop as the culler records it, in a file the hub's account owns (it is the culler's)."""
    reason = (
        "it held 1 GPU and was idle for 31 minutes (sessions with GPUs are stopped after"
        " 30 minutes idle, so others can use them)"
    )
    write_record(site, CullRecord(LEARNER, "gpu-lab", datetime.now(UTC).isoformat(), reason, 1))
    hub = pwd.getpwnam("factoryhub")
    path = records_path(site, LEARNER)
    for owned in (path.parent, path):
        os.chown(owned, hub.pw_uid, hub.pw_gid)


def _same_budget_line(expected: str, shown: str, slack: float = 1.0) -> bool:
    """A line of `shown` that says what `expected` says, its hours left within `slack`."""
    pattern = re.compile(r"You have ([\d.]+) (\S+) left on (\S+) \(.*of ([\d.]+)\)")
    want = pattern.search(expected)
    assert want, expected
    for got in pattern.finditer(shown):
        same = got.group(2, 3, 4) == want.group(2, 3, 4)
        if same and abs(float(got.group(1)) - float(want.group(1))) <= slack:
            return True
    return False


def test_the_form_says_what_was_stopped_the_budget_and_the_maintenance(page, hub_client, real_hub):
    _record_a_stop(real_hub.site)
    admin = SlurmAdmin()
    settings = {
        "StartTime": "now+90minutes",
        "Duration": "60",
        "Nodes": "gn01,gn02",
        "Flags": "MAINT",
        "Users": "root",
    }
    _run(admin.create_reservation(MAINT, settings))
    try:
        budgets = _run(SlurmClient().account_budgets())
        log_in(page, hub_client, LEARNER)
        page.goto(f"{hub_client.base}/hub/spawn/{LEARNER}")
        page.wait_for_selector("#spawn_form")
        culled = page.inner_text("#fh-culled")
        assert culled.startswith("Your session 'gpu-lab' was stopped at ")
        assert "because it held 1 GPU and was idle for 31 minutes" in culled
        said = page.inner_text("#fh-budget")
        # what sshare says of tlearner3's account, in the same words; usage moves on with every
        # minute's recalculation (running jobs of other tests), so the hours left may differ
        # by a little between the two readings
        for line in describe_budget(budgets["training"]):
            assert _same_budget_line(line, said), (line, said)
        maintenance = page.locator(".fh-maintenance").all_inner_texts()
        assert any(m.startswith("The gpu nodes go into maintenance at ") for m in maintenance)
        # the live estimate of a request that would run into the window
        page.select_option("select[name=partition]", "gpu")
        page.fill("input[name=walltime]", "03:00:00")
        page.wait_for_function(
            "document.querySelector('#fh-estimate strong').textContent.includes('maintenance')"
        )
        page.screenshot(path=IMAGES / "spawn-form-notices.png", full_page=True)
    finally:
        _run(admin.delete_reservation(MAINT))
