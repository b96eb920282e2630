"""The hub's pages carry the site, in a real browser: the site's title and a navigation bar
(Home, Courses, Teaching for trainers) on the hub's own pages and the service's; the test
site's own template (tests/realsite.py `site_templates`) changes the spawn form; the form offers
the effective limits, hides the GPU type where there are no GPUs, brings the walltime within a
shorter partition's limit, and a refused Start keeps the learner's choices with the sentence
next to the field. Nothing here starts a session."""

import pytest
from chromium import IMAGES
from realsite import PASSWORDS, SITE_NOTE

pytestmark = pytest.mark.browser

TITLE = "FactoryHub demo AI factory"  # the test site keeps the demo's title


def log_in(page, hub_client, user: str) -> None:
    page.goto(f"{hub_client.base}/hub/login")
    assert TITLE in page.inner_text("#fh-site-title")  # before logging in too
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORDS[user])
    page.click("#login_submit")
    page.wait_for_url("**/hub/**")


def test_hub_and_service_pages_show_the_site_and_its_navigation(page, hub_client):
    IMAGES.mkdir(parents=True, exist_ok=True)
    log_in(page, hub_client, "ttrainer")
    page.goto(f"{hub_client.base}/hub/home")
    assert page.title() == TITLE
    assert page.inner_text("#fh-site-title") == TITLE
    page.screenshot(path=IMAGES / "hub-home-navigation.png")
    page.click("#fh-nav-courses")
    page.wait_for_url("**/services/factoryhub/catalogue")
    assert page.title() == f"Courses · {TITLE}" and page.inner_text("h1") == "Courses"
    page.click("#fh-nav-teaching")
    page.wait_for_url("**/services/factoryhub/teaching")
    assert page.inner_text("h1") == "Teaching"
    assert page.locator("#fh-published").count() == 1
    page.screenshot(path=IMAGES / "teaching.png")
    page.click("#fh-nav-home")
    page.wait_for_url("**/hub/home")
    # JupyterHub's admin page is not a trainer's: a page that says so, in the site's frame.
    reply = page.goto(f"{hub_client.base}/hub/admin")
    assert reply.status == 403
    assert "not open to your account" in page.inner_text("#fh-forbidden")
    assert page.locator("#fh-nav-teaching").count() == 1


def test_a_learner_sees_no_teaching_link_and_a_page_not_a_bare_403(page, hub_client):
    log_in(page, hub_client, "tlearner2")
    page.goto(f"{hub_client.base}/hub/home")
    assert page.locator("#fh-nav-courses").count() == 1
    assert page.locator("#fh-nav-teaching").count() == 0
    reply = page.goto(f"{hub_client.base}/services/factoryhub/teaching")
    assert reply.status == 403
    assert "not open to your account" in page.inner_text("#fh-message")
    assert page.locator("#fh-nav-courses").count() == 1  # in the site's frame


def test_the_site_template_changes_the_form_and_a_refusal_keeps_the_choices(page, hub_client):
    log_in(page, hub_client, "tlearner2")
    page.goto(f"{hub_client.base}/hub/spawn/tlearner2")
    page.wait_for_selector("#spawn_form")
    assert page.inner_text("#site-note") == SITE_NOTE  # the test site's own form.html
    assert page.title() == TITLE
    # Effective limits: the gpu partition allows 4 GPUs and 24 h, the learner's QoS 2 and 12 h.
    gpu = page.inner_text("select[name=partition] option[value=gpu]")
    assert "2 GPUs, 12 h" in gpu, gpu
    # No GPU type where the partition has no GPUs.
    assert page.locator("#fh-gpu_type-group").is_hidden()
    page.select_option("select[name=partition]", "gpu")
    assert page.locator("#fh-gpu_type-group").is_visible()
    assert page.get_attribute("input[name=gpus]", "max") == "2"
    # A shorter partition brings the walltime within its limit.
    page.fill("input[name=walltime]", "02:00:00")
    page.select_option("select[name=partition]", "debug")
    assert page.input_value("input[name=walltime]") == "00:30:00"
    assert page.locator("#fh-gpu_type-group").is_hidden()

    # Over the limit anyway: refused, with the learner's choices kept and the sentence inline.
    page.fill("input[name=cpus]", "3")
    page.fill("input[name=walltime]", "45")
    with page.expect_navigation():
        page.click("#spawn_form button[type=submit]")
    page.wait_for_selector("#fh-walltime-error")
    assert page.input_value("select[name=partition]") == "debug"
    assert page.input_value("input[name=cpus]") == "3"
    assert page.input_value("input[name=walltime]") == "45"
    error = page.inner_text("#fh-walltime-error")
    assert error == "the debug partition allows at most 30 minutes (00:30:00)", error
    assert page.locator(".spawn-error-msg").is_hidden()  # no second copy above the form
    assert "HTTP 400" not in page.inner_text("body")
    page.locator("#fh-walltime").scroll_into_view_if_needed()
    page.screenshot(path=IMAGES / "spawn-form-refused.png")
