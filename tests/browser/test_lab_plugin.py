"""FactoryHub's JupyterLab plugin in a real browser (issue 16), the four of it in one GPU session
to keep CI short:

- the idle warning: the test site's GPU rule is shortened (idle 1.5 min, warned 1 min before).
  A visible JupyterLab is never idle (its polls go through the proxy), so the learner's page is
  then hidden (document.visibilityState, which JupyterLab's polls and the plugin follow): the
  plugin stops asking and warns by its own clock; the notebook the learner typed in is saved
  first, then the notification with the time left and "Keep my session", which records a keep
  for this learner's server;
- the budget indicator: the words the hub service's budget gives for the session's account;
- Help → "Ask the support centre…": the dialog shows what will be sent, sends it, and the
  ticket (with the session's job and notebook) is the learner's on the service;
- an announcement, shown once: not again after the page is reloaded.

Screenshots: lab-idle-warning.png, lab-budget-indicator.png, lab-support-dialog.png,
lab-announcement.png (reports/screenshots/, docs/images/ with FACTORYHUB_REFRESH_DOCS=1)."""

import re
import tomllib

import httpx
import pytest
import tomli_w
from chromium import IMAGES
from playwright.sync_api import expect
from realsite import (
    PASSWORDS,
    TEST_ACCOUNTS,
    assert_between_readings,
    budget_reading,
    hours_left,
    job_id_in,
    notebook_model,
    squeue_row,
)

from factoryhub.culling import exemptions_path, read_exemptions

pytestmark = pytest.mark.browser

LEARNER = "tlearner1"  # may charge training (the default) and ai-research
OPTIONS = {"partition": "gpu", "gpus": 1, "account": "ai-research"}
NEWS = "Jupyter 5 upgrade on Friday: save your work by 17:00"
TOASTS = ".jp-toast-message"


SHOW = """(state) => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def _auth(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def _of(reading: dict, account: str) -> dict:
    return {key: left for key, left in reading.items() if key[0] == account}


def _shorter_culling(original: str) -> str:
    raw = tomllib.loads(original)
    others = [u for u in TEST_ACCOUNTS if u != LEARNER]
    raw["culling"].update(gpu_idle_minutes=1.5, warn_minutes=1.0, exempt_users=others)
    return tomli_w.dumps(raw)


def test_the_plugin_warns_keeps_shows_the_budget_asks_support_and_announces(
    page, real_hub, hub_client
):
    site_file, exemptions = real_hub.hub_site, exemptions_path(real_hub.site)
    original = site_file.read_text()
    kept_before = exemptions.read_bytes() if exemptions.exists() else None
    admin = hub_client.login_token("tadmin")
    service = f"{hub_client.base}/services/factoryhub/api"
    posted = httpx.post(
        f"{service}/announcements", json={"text": NEWS, "for": "1h"}, headers=_auth(admin)
    )
    assert posted.status_code == 201, posted.text
    token = hub_client.login_token(LEARNER)
    try:
        site_file.write_text(_shorter_culling(original))
        job = job_id_in(hub_client.start(LEARNER, token, options=OPTIONS))
        lab = f"{hub_client.base}/user/{LEARNER}"
        contents = f"{lab}/api/contents/lab.ipynb"
        r = httpx.put(contents, json=notebook_model([""]), headers=_auth(token), timeout=30)
        assert r.status_code in (200, 201), r.text
        settings = f"{lab}/lab/api/settings/@jupyterlab/docmanager-extension:plugin"
        r = httpx.put(settings, json={"raw": '{"autosave": false}'}, headers=_auth(token))
        assert r.status_code == 204, r.text  # only FactoryHub's warning can save the typing

        before = budget_reading(hub_client.base, token)  # the plugin reads it once the lab opens
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{hub_client.base}/hub/login")
        page.fill("#username_input", LEARNER)
        page.fill("#password_input", PASSWORDS[LEARNER])
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=60_000)
        page.goto(f"{lab}/lab/tree/lab.ipynb?reset")
        editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .cm-content")
        editor.first.wait_for(timeout=60_000)
        editor.first.click()
        page.keyboard.type("model.fit(data)  # typed, never saved by hand")

        # the budget, as the hub service said it for the session's account while the lab opened
        assert squeue_row(job)["account"] == "ai-research"
        indicator = page.locator("#fh-budget")
        expect(indicator).to_have_text(
            re.compile(r"^[\d.]+ GPU-hours left on ai-research$"), timeout=30_000
        )
        after = budget_reading(hub_client.base, token)
        sentences = indicator.get_attribute("title") or ""
        assert sentences.startswith(f"You have {indicator.inner_text()} ("), sentences
        assert_between_readings(
            hours_left(sentences), *(_of(reading, "ai-research") for reading in (before, after))
        )
        page.locator("#jp-top-panel").screenshot(path=IMAGES / "lab-budget-indicator.png")

        # the announcement; then the page is left in the background: the idle warning, after
        # the save, by the plugin's own clock (its last answer: now, while the page is seen)
        expect(page.locator(TOASTS, has_text=NEWS)).to_be_visible(timeout=30_000)
        expect(page.locator(TOASTS, has_text="Idle with")).to_have_count(0)
        page.evaluate(SHOW, "visible")
        page.evaluate(SHOW, "hidden")
        warning = page.locator(TOASTS, has_text="Idle with 1 GPU: this session stops at")
        expect(warning).to_contain_text("to free it. Your documents were saved.", timeout=90_000)
        saved = httpx.get(contents, headers=_auth(token), timeout=30).json()
        assert "model.fit(data)" in saved["content"]["cells"][0]["source"]
        keep = page.get_by_role("button", name="Keep my session")
        expect(keep).to_be_visible()
        page.wait_for_timeout(1000)  # the notification's slide-in, for the picture
        page.screenshot(path=IMAGES / "lab-idle-warning.png")
        news = page.locator(".Toastify__toast", has_text=NEWS)
        news.screenshot(path=IMAGES / "lab-announcement.png")
        keep.click()
        expect(page.locator(TOASTS, has_text="Kept: this session")).to_be_visible(timeout=30_000)
        page.evaluate(SHOW, "visible")
        keeps = [e for e in read_exemptions(real_hub.site) if e.user == LEARNER]
        assert [(e.server, e.by) for e in keeps] == [("", LEARNER)]

        # Help → Ask the support centre…
        page.get_by_role("menuitem", name="Help", exact=True).click()
        page.locator("li[data-command='factoryhub:ask-support']").click()
        dialog = page.locator("#fh-support-dialog")
        preview = dialog.locator(".fh-support-preview")
        expect(preview).to_contain_text("Open notebook: lab.ipynb", timeout=30_000)
        expect(preview).to_contain_text(f"job {job}")
        expect(preview).to_contain_text("partition gpu, account ai-research")
        dialog.locator("textarea").fill("My training stops after the first epoch.")
        expect(preview).to_contain_text("My training stops after the first epoch.")
        dialog.screenshot(path=IMAGES / "lab-support-dialog.png")
        dialog.get_by_role("button", name="Send to support").click()
        expect(dialog.locator(".fh-support-result")).to_contain_text(
            "is with the support centre", timeout=30_000
        )
        tickets = httpx.get(f"{service}/support", headers=_auth(token), timeout=30).json()
        (ticket,) = [t for t in tickets["tickets"] if t["text"].startswith("My training stops")]
        assert ticket["context"]["job_id"] == job and ticket["context"]["notebook"] == "lab.ipynb"
        dialog.get_by_role("button", name="Close").click()

        # shown once: not again on the next page load
        page.reload()
        page.wait_for_function("document.body.dataset.fhAnnouncements === '1'", timeout=60_000)
        expect(page.locator(TOASTS, has_text=NEWS)).to_have_count(0)
    finally:
        site_file.write_text(original)
        if kept_before is None:
            exemptions.unlink(missing_ok=True)
        else:
            exemptions.write_bytes(kept_before)
        httpx.delete(f"{service}/announcements/{posted.json()['id']}", headers=_auth(admin))
        if hub_client.server(LEARNER, token) is not None:
            hub_client.stop(LEARNER, token)
