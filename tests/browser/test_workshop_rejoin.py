"""Coming back to a workshop seat in a real browser (issue 15): the learner's hub page shows the
rejoin key and a link to bookmark; in a browser without the cookie, the bookmarked link fills
the key in (it travels after '#', never to the server) and brings the learner back to the same
seat, in JupyterLab. Screenshot: workshop-rejoin.png (reports/screenshots/, docs/images/ with
FACTORYHUB_REFRESH_DOCS=1)."""

import re

import pytest
from chromium import IMAGES
from realsite import REPO
from workshopkit import COURSE, left_behind, remove_by_hand, unique, workshop_cmd

pytestmark = pytest.mark.browser


@pytest.fixture
def workshop(real_hub, hub_client):
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("j")
    try:
        made = workshop_cmd(
            real_hub, "create", name, "--course", COURSE, "--start", "now",
            "--end", "now+30min", "--seats", "2",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        yield name, re.search(r"access code (\S+)", made.stdout).group(1)
        assert workshop_cmd(real_hub, "end", name).returncode == 0
    finally:
        remove_by_hand(name)
        assert left_behind(name) == []


def test_the_bookmarked_rejoin_link_brings_the_learner_back_to_the_same_seat(
    page, hub_client, workshop
):
    name, code = workshop
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.goto(f"{hub_client.base}/hub/workshop/{name}")
    page.fill("#fh-code", code)
    page.fill("#fh-name", "Katherine")
    page.click("#fh-join")
    page.wait_for_url(f"**/lab/tree/courses/{COURSE}/**", timeout=120_000)
    page.goto(f"{hub_client.base}/hub/home")  # Hub Control Panel
    key = page.inner_text("#fh-rejoin-key")
    link = page.get_attribute("#fh-rejoin-link", "href")
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", key)
    assert link.endswith(f"/hub/workshop/{name}#rejoin={key}")
    assert f"seat ws-{name}-01 (Katherine)" in page.inner_text("#fh-seat-rejoin")

    other = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    fresh = other.new_page()  # another computer: no cookie
    fresh.goto(link)
    assert fresh.input_value("#fh-rejoin") == key  # filled from the fragment
    assert "#rejoin" not in fresh.url  # and taken out of the address bar
    fresh.screenshot(path=IMAGES / "workshop-rejoin.png")
    fresh.click("#fh-rejoin-submit")
    fresh.wait_for_url(f"**/user/ws-{name}-01/**", timeout=120_000)
    fresh.goto(f"{hub_client.base}/hub/workshop/{name}")
    assert f"You hold seat ws-{name}-01 as Katherine" in fresh.inner_text("#fh-my-seat")
    other.close()
    shown = workshop_cmd(hub_client.hub, "status", name).stdout
    assert "1 of 2 taken" in shown  # the same seat, not a second one
