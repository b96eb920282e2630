"""A maintenance window in the spawn form and in JupyterLab, in a real browser (issue 16): the
test makes a real maintenance reservation of the GPU nodes (Slurm's Flags=MAINT, starting three
hours ahead so that it meets no other test's window, under a name of its own, deleted in the
`finally`). The spawn form says when the gpu nodes go into maintenance; in the learner's
JupyterLab the GPU request widget says it too, with when a job started now would end; for a
job that would run into the window, that it starts after the maintenance and what to ask for
instead.

Screenshots: reports/screenshots/widget-maintenance.png and widget-maintenance-later.png
(docs/images/ with FACTORYHUB_REFRESH_DOCS=1; the learner guide shows them)."""

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest
from chromium import IMAGES
from clock import clock
from labkit import run_all
from playwright.sync_api import expect
from realsite import notebook_model

from browser.test_site_pages import log_in
from factoryhub.maintenance import MARGIN_MINUTES
from factoryhub.scheduler.admin import SlurmAdmin

pytestmark = pytest.mark.browser

LEARNER = "tlearner2"
CELLS = [
    "from factoryhub.widgets import GPURequest\nshort = GPURequest()\nshort",
    "long = GPURequest()\nlong.walltime.value = '04:00:00'\nlong",
]


def _run(step):
    """An async Slurm step from this test (Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, step).result()


@pytest.fixture
def maintenance():
    """A maintenance reservation of the gpu nodes, 3 to 4 hours from now: its (start, end)."""
    admin = SlurmAdmin()
    name = f"tmaintlab{secrets.token_hex(3)}"
    settings = {
        "StartTime": "now+180minutes",
        "Duration": "60",
        "Nodes": "gn01,gn02",
        "Flags": "MAINT",
        "Users": "root",
    }
    _run(admin.create_reservation(name, settings))
    try:
        (window,) = [r for r in _run(admin.reservations()) if r.name == name]
        assert window.maintenance
        yield datetime.fromisoformat(window.start), datetime.fromisoformat(window.end)
    finally:
        _run(admin.delete_reservation(name))
        assert name not in [r.name for r in _run(admin.reservations())]


def test_a_maintenance_window_shows_in_the_form_and_the_gpu_widget(maintenance, page, hub_client):
    start, end = maintenance
    head = f"The gpu nodes go into maintenance at {clock(start)} (until {clock(end)})"
    token = hub_client.login_token(LEARNER)
    page.set_viewport_size({"width": 1400, "height": 1000})
    log_in(page, hub_client, LEARNER)
    # the form reads reservations with the partitions' capacity, at most seconds old
    form = page.locator(".fh-maintenance", has_text=head)
    for _ in range(10):
        page.goto(f"{hub_client.base}/hub/spawn/{LEARNER}")
        if form.count():
            break
        page.wait_for_timeout(2000)
    expect(form).to_have_count(1)
    assert re.search(
        r"a session started now would end at (\d+ \w+ )?\d\d:\d\d, before it\.$", form.inner_text()
    )

    hub_client.start(LEARNER, token, options={"partition": "cpu"})
    try:
        api = f"{hub_client.base}/user/{LEARNER}/api/contents/maintenance.ipynb"
        r = httpx.put(api, json=notebook_model(CELLS), headers={"Authorization": f"token {token}"})
        assert r.status_code in (200, 201), r.text
        # ?reset: the learner's saved workspace (another test's notebook) is not restored
        page.goto(f"{hub_client.base}/user/{LEARNER}/lab/tree/maintenance.ipynb?reset")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        run_all(page)
        outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea")

        # a job of the default hour ends before the window: when it would end
        short = outputs.nth(0)
        expect(short).to_contain_text(head, timeout=90_000)
        expect(short).to_contain_text("Start: ")
        expect(short).not_to_contain_text("ask for at most")
        said = re.search(
            r"a job started now would end at ((\d+ \w+ )?\d\d:\d\d), before it\.",
            short.inner_text(),
        )
        assert said, short.inner_text()
        soon = [datetime.now() + timedelta(minutes=m) for m in (59, 60, 61)]
        assert said.group(1) in [clock(moment) for moment in soon]

        # four hours would run into it: the start says after the maintenance, and the
        # maintenance line the longest job that ends in time
        long = outputs.nth(1)
        latest = start - timedelta(minutes=MARGIN_MINUTES)
        expect(long).to_contain_text(
            f"{head}; a job started now would have to end by {clock(latest)}: ask for at most",
            timeout=60_000,
        )
        expect(long).to_contain_text("or it starts after the maintenance.")
        expect(long).to_contain_text("Start: after the maintenance, expected in about")
        expect(long).to_contain_text(f"({end:%H:%M})")
        expect(long).not_to_contain_text("session")
        page.wait_for_timeout(500)
        short.screenshot(path=IMAGES / "widget-maintenance.png")
        long.screenshot(path=IMAGES / "widget-maintenance-later.png")
    finally:
        hub_client.stop(LEARNER, token)
