"""A learner in a real browser (Debian's chromium via Playwright): log in, start, land in
JupyterLab running inside a Slurm job. Screenshots go to reports/screenshots/
(docs/images/ with FACTORYHUB_REFRESH_DOCS=1)."""

import subprocess

import pytest
from chromium import CHROMIUM_ARGS, IMAGES
from playwright.sync_api import sync_playwright
from realsite import PASSWORDS, job_of, squeue_row, wait_until

pytestmark = pytest.mark.browser


def test_login_start_and_land_in_jupyterlab(page, hub_client):
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", "tlearner3")
    page.fill("#password_input", PASSWORDS["tlearner3"])
    page.screenshot(path=IMAGES / "login.png")
    page.click("#login_submit")

    page.wait_for_selector("#spawn_form")
    assert page.locator("select[name=partition] option").count() == 3
    assert page.locator("#fh-capacity tbody tr").count() == 3  # live capacity per partition
    assert "starts now" in page.inner_text("#fh-estimate")
    # The estimate follows the learner's edits (JSON endpoint), with the limit in the message.
    page.select_option("select[name=partition]", "gpu")
    page.fill("input[name=gpus]", "9")
    page.wait_for_function(
        "document.querySelector('#fh-estimate').innerText.includes('at most 4 GPUs')"
    )
    page.screenshot(path=IMAGES / "spawn-form-limit.png")
    # Within the partition but over tlearner3's QoS (from the accounting database, sacctmgr).
    assert "normal (per job: at most 2 GPUs, 12 h)" in page.inner_text("#fh-qos")
    page.fill("input[name=gpus]", "3")
    page.wait_for_function(
        "document.querySelector('#fh-estimate').innerText.includes('the QoS normal allows')"
    )
    assert "at most 2 GPUs per job" in page.inner_text("#fh-estimate")
    page.locator("#fh-qos").scroll_into_view_if_needed()
    page.screenshot(path=IMAGES / "spawn-form-qos-limit.png")
    page.fill("input[name=gpus]", "0")
    page.select_option("select[name=partition]", "cpu")
    page.wait_for_function("document.querySelector('#fh-estimate').dataset.kind === 'now'")
    page.screenshot(path=IMAGES / "spawn-form.png")
    page.click("#spawn_form input[type=submit], #spawn_form button[type=submit]")

    page.wait_for_selector(".jp-LabShell", timeout=120_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    assert "/user/tlearner3/lab" in page.url
    page.screenshot(path=IMAGES / "jupyterlab-in-slurm-job.png")

    job_id = job_of("tlearner3")
    assert squeue_row(job_id)["user"] == "tlearner3"
    token = hub_client.login_token("tlearner3")
    hub_client.stop("tlearner3", token)


def test_queued_session_says_why_and_where_in_line(page, hub_client):
    """Nodes drained: the learner sees the plain-language reason and their place in line."""
    tlearner1 = hub_client.login_token("tlearner1")
    subprocess.run(
        ["scontrol", "update", "nodename=cn[01-02]", "state=drain", "reason=factoryhub-test"],
        check=True,
    )
    try:
        with hub_client.api(tlearner1) as api:
            assert api.post("/users/tlearner1/server", json={"user_options": {}}).status_code == 202
        page.goto(f"{hub_client.base}/hub/login")
        page.fill("#username_input", "tlearner3")
        page.fill("#password_input", PASSWORDS["tlearner3"])
        page.click("#login_submit")
        page.wait_for_selector("#spawn_form")
        page.click("#spawn_form input[type=submit], #spawn_form button[type=submit]")
        page.wait_for_function(
            "document.body !== null && document.body.innerText.includes('number 2 in line')",
            timeout=30_000,
        )
        text = page.inner_text("body")
        assert "the nodes that fit your request are down or reserved" in text
        page.screenshot(path=IMAGES / "spawn-queued.png")
    except BaseException:
        _resume_and_stop(hub_client, tlearner1)  # leave no server behind for the next tests
        raise
    _resume_and_stop(hub_client, tlearner1, check=True)


def _resume_and_stop(hub_client, tlearner1: str, check: bool = False) -> None:
    """Resume the nodes; both queued sessions become ready (asserted when `check`), then stop."""
    subprocess.run(["scontrol", "update", "nodename=cn[01-02]", "state=resume"], check=False)
    for user in ("tlearner1", "tlearner3"):
        token = tlearner1 if user == "tlearner1" else hub_client.login_token("tlearner3")
        try:
            wait_until(
                lambda u=user, t=token: (hub_client.server(u, t) or {}).get("ready"),
                60,
                f"{user} ready after resume",
            )
        except AssertionError:
            if check:
                raise
        if hub_client.server(user, token):
            hub_client.stop(user, token)


def test_form_without_javascript_refuses_with_the_limit_inline(hub_client):
    """Server-rendered: with JavaScript off our form still submits, and an over-limit request
    comes back as the form with the partition's limit in the message, and no job."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(java_script_enabled=False, viewport={"width": 1280, "height": 900})
        page.goto(f"{hub_client.base}/hub/login")
        page.fill("#username_input", "tlearner2")
        page.fill("#password_input", PASSWORDS["tlearner2"])
        page.click("#login_submit")
        page.wait_for_selector("#spawn_form")
        before = squeue_jobs("tlearner2")
        # (9 GPUs the browser itself refuses: the field carries max="4".) A walltime over the
        # debug partition's limit passes the browser and must be refused by the hub.
        page.select_option("select[name=partition]", "debug")
        page.fill("input[name=walltime]", "01:00:00")
        with page.expect_navigation():
            # JupyterHub's own pages lay a "requires JavaScript" notice over everything without
            # JS; our form is plain HTML underneath, so Enter submits it natively.
            page.press("input[name=walltime]", "Enter")
        assert "the debug partition allows at most 30 minutes" in page.inner_text("body")
        page.screenshot(path=IMAGES / "spawn-form-no-js-error.png")
        browser.close()
    assert squeue_jobs("tlearner2") == before


def squeue_jobs(user: str) -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-u", user, "-o", "%i"], capture_output=True, text=True
    ).stdout
    return set(out.split())
