"""A trainer's read-only look at a seat's hostile notebook in a real browser (issue 15): from the
cohort page's "Notebooks (read-only)" button to the folder, the notebook's page; nothing the
learner wrote runs (no dialog, the page's title untouched). Screenshot:
workshop-notebook-view.png."""

import re

import httpx
import pytest
from hostilenotebook import hostile_notebook
from integration.test_workshop_dashboard import join, seat_token
from realsite import PASSWORDS, REPO
from workshopkit import COURSE, left_behind, remove_by_hand, unique, workshop_cmd

pytestmark = pytest.mark.browser
PWNED = "PWNED"


def _attacking_notebook() -> dict:
    """The shared hostile notebook, and outputs that would retitle the page if they ran."""
    notebook = hostile_notebook()
    title = f"document.title='{PWNED}'"
    notebook["cells"][2]["outputs"] += [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"text/html": f'<img src="x" onerror="{title}"><script>{title}</script>'},
        },
        {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": title}},
    ]
    return notebook


@pytest.fixture
def seat_with_notebook(real_hub, hub_client):
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("v")
    base = real_hub.site.hub.url
    try:
        made = workshop_cmd(
            real_hub, "create", name, "--course", COURSE, "--start", "now",
            "--end", "now+30min", "--seats", "1", "--trainer", "ttrainer",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        seat, joined = join(base, name, re.search(r"access code (\S+)", made.stdout)[1], "Eve")
        hub_client.start(seat, joined)
        token = seat_token(hub_client, hub_client.login_token("tadmin"), seat)
        with httpx.Client(base_url=base, headers={"Authorization": f"token {token}"}) as lab:
            for path, model in (
                ("week1", {"type": "directory"}),
                ("week1/hostile.ipynb", {"type": "notebook", "content": _attacking_notebook()}),
            ):
                put = lab.put(f"/user/{seat}/api/contents/{path}", json=model, timeout=120)
                assert put.status_code in (200, 201), put.text[:300]
        yield name, seat
        assert workshop_cmd(real_hub, "end", name).returncode == 0
    finally:
        remove_by_hand(name)
        assert left_behind(name) == []


def test_the_trainer_looks_and_nothing_of_the_learners_runs(
    page, hub_client, seat_with_notebook, screenshots
):
    name, seat = seat_with_notebook
    dialogs = []
    context = page.context
    context.on("page", lambda p: p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss())))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", "ttrainer")
    page.fill("#password_input", PASSWORDS["ttrainer"])
    page.click("#login_submit")
    page.wait_for_url("**/hub/**")
    page.goto(f"{hub_client.base}/services/factoryhub/workshops/{name}")
    with context.expect_page() as opened:
        page.click(f"#seat-{seat} .fh-look")
    listing = opened.value
    listing.wait_for_selector("#fh-notebooks")
    listing.click("button.fh-folder:has-text('week1/')")
    listing.wait_for_selector("button.fh-notebook:has-text('hostile.ipynb')")
    listing.click("button.fh-notebook:has-text('hostile.ipynb')")
    listing.wait_for_selector("#fh-notebook")
    listing.wait_for_timeout(1500)  # an onerror or a script would have run by now
    assert listing.title().startswith("week1/hostile.ipynb"), listing.title()
    assert PWNED not in listing.title() and dialogs == []
    assert "<script>alert('md')</script>" in listing.inner_text("#fh-notebook")
    listing.screenshot(path=screenshots / "workshop-notebook-view.png", full_page=False)
