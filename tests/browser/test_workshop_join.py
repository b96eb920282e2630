"""A workshop in a real browser (issue 15): the join page from the handout, a learner who joins
lands in the course's first notebook in JupyterLab, and the workshop's trainer sees them on the
cohort page, live. Screenshots: workshop-join.png, workshop-lab.png, workshop-cohort.png."""

import re

import pytest
from chromium import IMAGES
from realsite import PASSWORDS, REPO
from workshopkit import COURSE, left_behind, remove_by_hand, unique, workshop_cmd

pytestmark = pytest.mark.browser


@pytest.fixture
def workshop(real_hub, hub_client):
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("w")
    try:
        made = workshop_cmd(
            real_hub, "create", name, "--course", COURSE, "--start", "now",
            "--end", "now+45min", "--seats", "2", "--trainer", "ttrainer",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        yield name, re.search(r"access code (\S+)", made.stdout).group(1)
        assert workshop_cmd(real_hub, "end", name).returncode == 0
    finally:
        remove_by_hand(name)
        assert left_behind(name) == []


def test_a_learner_joins_lands_in_the_notebook_and_the_trainer_sees_them(
    page, hub_client, workshop
):
    name, code = workshop
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.goto(f"{hub_client.base}/hub/workshop/{name}")
    assert page.inner_text("h1") == f"Join workshop {name}"
    page.fill("#fh-code", "WRONG-CODE1")
    page.fill("#fh-name", "Grace")
    page.click("#fh-join")
    assert "not this workshop's" in page.inner_text("#fh-join-message")
    page.fill("#fh-code", code)
    page.fill("#fh-name", "Grace")
    page.screenshot(path=IMAGES / "workshop-join.png")
    page.click("#fh-join")
    page.wait_for_url(f"**/lab/tree/courses/{COURSE}/**", timeout=120_000)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.screenshot(path=IMAGES / "workshop-lab.png")

    trainer = page.context.browser.new_context(viewport={"width": 1280, "height": 600})
    tpage = trainer.new_page()
    tpage.goto(f"{hub_client.base}/hub/login")
    tpage.fill("#username_input", "ttrainer")
    tpage.fill("#password_input", PASSWORDS["ttrainer"])
    tpage.click("#login_submit")
    tpage.wait_for_url("**/hub/**")
    tpage.goto(f"{hub_client.base}/services/factoryhub/workshops/{name}")
    seat = f"#seat-ws-{name}-01"
    assert "Grace" in tpage.inner_text(seat)
    assert tpage.inner_text(f"{seat} .state") == "running"
    assert tpage.inner_text(f"#seat-ws-{name}-02 .state") == "free"
    tpage.screenshot(path=IMAGES / "workshop-cohort.png")
    trainer.close()
