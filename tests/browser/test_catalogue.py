"""The course catalogue in the hub, in a real browser: published courses with their outcomes,
resources and current estimated start; "Start course" shows the spawn form prefilled with the
course's resources (the link alone starts nothing), and its Start button lands in JupyterLab
with the course's notebooks in the learner's home; a second start keeps the learner's edits
and duplicates nothing."""

import sys
from pathlib import Path

import httpx
import pytest
from chromium import IMAGES
from realsite import PASSWORDS, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coursekit import good_course

pytestmark = pytest.mark.browser


def contents(hub_client, token: str, path: str) -> dict:
    r = httpx.get(
        f"{hub_client.base}/user/ttrainer/course-good-course/api/contents/{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def confirm_start(page, hub_client, course: str) -> None:
    """The link shows the spawn form with the course's resources; nothing runs until Start."""
    page.wait_for_selector("#fh-confirm", timeout=30_000)
    assert "/hub/spawn/ttrainer/course-" in page.url
    assert page.locator('#spawn_form input[name="course"]').get_attribute("value") == course
    token = hub_client.login_token("ttrainer")
    assert hub_client.server("ttrainer", token, f"course-{course}") is None
    page.locator('#spawn_form button[type="submit"]').click()


REPO = Path(__file__).resolve().parents[2]
SKILLS = [
    "first-steps",
    "pytorch-gpu",
    "dask-slurm",
    "ddp-training",
    "energy-aware",
    "trustworthy-ai",
]


def test_catalogue_start_course_lands_in_its_notebooks(page, hub_client, tmp_path):
    for name in SKILLS:
        hub_client.publish_course(REPO / "notebooks" / name)
    hub_client.publish_course(good_course(tmp_path))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", "ttrainer")
    page.fill("#password_input", PASSWORDS["ttrainer"])
    page.click("#login_submit")
    page.wait_for_url("**/hub/**")
    page.goto(f"{hub_client.base}/services/factoryhub/")
    card = page.locator("#course-good-course")
    card.wait_for(timeout=30_000)
    assert "starts now" in card.inner_text()
    assert "cpu partition · 1 CPU · 1 GB" in card.inner_text()
    for name in SKILLS:
        assert page.locator(f"#course-{name} a.start").count() == 1
    gpu = page.locator("#course-pytorch-gpu").inner_text()
    assert "gpu partition · 4 CPUs · 1 GPU · 16 GB" in gpu and "Start:" in gpu
    page.screenshot(path=IMAGES / "catalogue.png")

    card.locator("a.start").click()
    confirm_start(page, hub_client, "good-course")
    page.wait_for_selector(".jp-NotebookPanel", timeout=120_000)
    assert "/user/ttrainer/course-good-course/lab/tree/courses/good-course/01-sum.ipynb" in page.url
    page.wait_for_timeout(1500)
    page.screenshot(path=IMAGES / "course-started.png")

    token = hub_client.login_token("ttrainer")
    listing = contents(hub_client, token, "courses/good-course")
    names = {item["name"] for item in listing["content"]}
    assert {"01-sum.ipynb", "02-data.ipynb", "course.toml"} <= names
    # The learner edits a notebook; the course is started again: the edit stays, nothing doubles.
    nb = contents(hub_client, token, "courses/good-course/01-sum.ipynb")
    nb["content"]["cells"][0]["source"] = "# My notes"
    r = httpx.put(
        f"{hub_client.base}/user/ttrainer/course-good-course/api/contents/courses/good-course/01-sum.ipynb",
        json={"type": "notebook", "content": nb["content"]},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    hub_client.stop("ttrainer", token, name="course-good-course")
    page.goto(f"{hub_client.base}/services/factoryhub/catalogue")
    page.locator("#course-good-course a.start").click()
    confirm_start(page, hub_client, "good-course")
    page.wait_for_selector(".jp-NotebookPanel", timeout=120_000)
    again = contents(hub_client, token, "courses/good-course")
    assert {item["name"] for item in again["content"]} == names
    kept = contents(hub_client, token, "courses/good-course/01-sum.ipynb")
    assert kept["content"]["cells"][0]["source"] == "# My notes"
    hub_client.stop("ttrainer", token, name="course-good-course")
    wait_until(
        lambda: not hub_client.server("ttrainer", token, "course-good-course"), 30, "stopped"
    )
