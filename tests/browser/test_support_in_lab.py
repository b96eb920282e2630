"""Support, announcements and data sets in a real browser (issue 16): a learner asks the
support centre from a notebook in JupyterLab, sees exactly what will be sent, sends it and gets
its ticket number; the support staff see it on the support page; an announcement at the top of
the hub's pages and the data sets page. Screenshots: support-*.png, announcement-*.png,
datasets-page.png (reports/screenshots/, docs/images/ with FACTORYHUB_REFRESH_DOCS=1)."""

import os
import subprocess

import httpx
import pytest
from aiosmtpd.controller import Controller
from chromium import IMAGES
from labkit import run_all
from playwright.sync_api import expect
from realsite import FACTORYHUB, PASSWORDS, SMTP_PORT, notebook_model, wait_until

pytestmark = pytest.mark.browser

CELLS = [
    "from factoryhub.widgets import AskSupport, Announcements\nask = AskSupport()\nask",
    "Announcements()",
]


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def log_in(page, hub_client, user: str, then: str = "**/hub/**") -> None:
    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORDS[user])
    page.click("#login_submit")
    page.wait_for_url(then, timeout=60_000)


def test_a_learner_asks_from_jupyterlab_and_staff_see_the_ticket(page, hub_client):
    IMAGES.mkdir(parents=True, exist_ok=True)
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    smtp.start()
    admin = hub_client.login_token("tadmin")
    env = {**os.environ, "FACTORYHUB_TOKEN": admin}
    posted = subprocess.run(
        [
            FACTORYHUB,
            "announce",
            "post",
            "The gpu nodes go into maintenance at 14:00",
            "--for",
            "1h",
            "--site",
            str(hub_client.hub.site_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert posted.returncode == 0, posted.stderr
    token = hub_client.login_token("tlearner2")
    try:
        hub_client.start("tlearner2", token, options={"partition": "cpu"})
        api = f"{hub_client.base}/user/tlearner2/api/contents/ask.ipynb"
        r = httpx.put(api, json=notebook_model(CELLS), headers={"Authorization": f"token {token}"})
        assert r.status_code in (200, 201), r.text
        page.set_viewport_size({"width": 1400, "height": 1000})
        log_in(page, hub_client, "tlearner2", "**/user/tlearner2/lab**")
        # ?reset: tlearner2's saved workspace (another test's notebook left open) is not restored
        page.goto(f"{hub_client.base}/user/tlearner2/lab/tree/ask.ipynb?reset")
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
        run_all(page)
        widget = page.locator(".jp-Cell-outputArea").nth(0)
        expect(widget).to_contain_text("This is exactly what will be sent", timeout=60_000)
        widget.locator("textarea").fill("My training notebook stops after the first epoch.")
        expect(widget.locator(".fh-support-preview")).to_contain_text("Open notebook: ask.ipynb")
        expect(widget.locator(".fh-support-preview")).to_contain_text("partition cpu")
        widget.screenshot(path=IMAGES / "support-widget.png")
        widget.get_by_role("button", name="Send to support").click()
        expect(widget).to_contain_text("is with the support centre", timeout=30_000)
        number = widget.inner_text().split("Ticket #", 1)[1].split(" ", 1)[0]
        news = page.locator(".jp-Cell-outputArea").nth(1)
        expect(news).to_contain_text("maintenance at 14:00", timeout=30_000)
        news.screenshot(path=IMAGES / "announcement-in-lab.png")
        wait_until(lambda: box.messages, 20, "the ticket's mail")

        page.context.clear_cookies()
        log_in(page, hub_client, "tadmin")
        page.goto(f"{hub_client.base}/hub/home")
        expect(page.locator("#fh-page-announcements")).to_contain_text("maintenance at 14:00")
        page.screenshot(path=IMAGES / "announcement-hub-home.png")
        page.click("#fh-nav-support")
        page.wait_for_url("**/services/factoryhub/support")
        ticket = page.locator(f"#ticket-{number}")
        expect(ticket).to_contain_text("My training notebook stops after the first epoch.")
        ticket.locator("textarea").fill("Your session ran out of memory: ask for 4 GB.")
        ticket.get_by_role("button", name="Send answer").click()
        page.wait_for_url("**/services/factoryhub/support**")
        expect(page.locator(f"#ticket-{number} .answer")).to_contain_text("ask for 4 GB")
        page.locator(f"#ticket-{number}").screenshot(path=IMAGES / "support-page-staff.png")
        page.click("#fh-nav-datasets")
        page.wait_for_url("**/services/factoryhub/datasets")
        expect(page.locator("#dataset-digits")).to_contain_text("Open to you")
        page.screenshot(path=IMAGES / "datasets-page.png")
    finally:
        smtp.stop()
        hub_client.stop("tlearner2", token)
        for item in httpx.get(
            f"{hub_client.base}/services/factoryhub/api/announcements",
            headers={"Authorization": f"token {admin}"},
        ).json()["announcements"]:
            httpx.delete(
                f"{hub_client.base}/services/factoryhub/api/announcements/{item['id']}",
                headers={"Authorization": f"token {admin}"},
            )
