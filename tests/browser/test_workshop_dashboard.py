"""The cohort dashboard's progress in a real browser (issue 15): a seat's learner runs cells of
the course's notebook in JupyterLab (Chromium, JupyterLab's own kernel protocol), and the
trainer's cohort page, left open, shows the notebook opened, the cells run and the notebook
completed (its last code cell run) without a reload. Screenshots: workshop-progress-lab.png and
workshop-progress.png (the guide's; reports/screenshots/, docs/images/ with
FACTORYHUB_REFRESH_DOCS=1)."""

import re

import pytest
from realsite import PASSWORDS, REPO
from workshopkit import COURSE, left_behind, remove_by_hand, unique, workshop_cmd

pytestmark = pytest.mark.browser
REPORTED_WITHIN_MS = 60_000  # the session reports every 10 s, the page refreshes every 5 s


@pytest.fixture
def workshop(real_hub, hub_client):
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    name = unique("p")
    try:
        made = workshop_cmd(
            real_hub, "create", name, "--course", COURSE, "--start", "now",
            "--end", "now+30min", "--seats", "2", "--trainer", "ttrainer",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        yield name, re.search(r"access code (\S+)", made.stdout).group(1)
        assert workshop_cmd(real_hub, "end", name).returncode == 0
    finally:
        remove_by_hand(name)
        assert left_behind(name) == []


def run_cell(page, index: int) -> None:
    """Run the notebook's code cell `index` (0-based) in place, as a learner does with
    Ctrl+Enter, and wait until the kernel has answered it."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    page.wait_for_function(
        "p => /\\[\\d+\\]/.test(p.textContent)", arg=prompt.element_handle(), timeout=60_000
    )


def cohort_number(tpage, seat: str, column: str, at_least: int) -> int:
    """The cohort page's figure in `column` for `seat` once it reaches `at_least` (the page
    refreshes itself; it is never reloaded here)."""
    selector = f"#seat-{seat} .{column}"
    tpage.wait_for_function(
        "([s, n]) => Number(document.querySelector(s)?.textContent) >= n",
        arg=[selector, at_least],
        timeout=REPORTED_WITHIN_MS,
    )
    return int(tpage.inner_text(selector))


def answer(page, index: int, value: str) -> None:
    """Replace the ``None`` of the exercise cell `index`'s ``answer = None`` by `value`."""
    line = page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".cm-line")
    token = line.filter(has_text="answer = None").get_by_text("None", exact=True)
    token.dblclick()
    page.keyboard.insert_text(value)


def test_cells_run_in_jupyterlab_show_on_the_trainers_cohort_page(
    page, hub_client, workshop, screenshots
):
    name, code = workshop
    seat = f"ws-{name}-01"
    page.goto(f"{hub_client.base}/hub/workshop/{name}")
    page.fill("#fh-code", code)
    page.fill("#fh-name", "Grace")
    page.click("#fh-join")
    page.wait_for_url(f"**/lab/tree/courses/{COURSE}/**", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

    trainer = page.context.browser.new_context(viewport={"width": 1400, "height": 520})
    tpage = trainer.new_page()
    tpage.goto(f"{hub_client.base}/hub/login")
    tpage.fill("#username_input", "ttrainer")
    tpage.fill("#password_input", PASSWORDS["ttrainer"])
    tpage.click("#login_submit")
    tpage.wait_for_url("**/hub/**")
    tpage.goto(f"{hub_client.base}/services/factoryhub/workshops/{name}")
    assert tpage.inner_text(f"#seat-{seat} .cells") == "0"

    for index in (0, 1):  # solve = False; where the session runs
        run_cell(page, index)
    answer(page, 5, '"PartitionTimeLimit"')
    run_cell(page, 5)  # the first exercise, answered right
    assert "never-starts: correct" in page.locator(".jp-Notebook .jp-CodeCell").nth(5).inner_text()
    assert cohort_number(tpage, seat, "cells", 3) == 3
    assert cohort_number(tpage, seat, "exercises", 1) == 1
    assert cohort_number(tpage, seat, "notebooks", 1) == 1
    assert tpage.inner_text(f"#seat-{seat} .completed") == "0"  # its last cell not run yet

    last = page.locator(".jp-Notebook .jp-CodeCell").count() - 1
    for index in (last - 1, last):  # the closing questions, then the assessment's record
        run_cell(page, index)
    page.screenshot(path=screenshots / "workshop-progress-lab.png")
    assert cohort_number(tpage, seat, "completed", 1) == 1
    assert cohort_number(tpage, seat, "cells", 5) == 5
    assert tpage.inner_text(f"#seat-ws-{name}-02 .cells") == "0"  # the other seat did nothing
    tpage.screenshot(path=screenshots / "workshop-progress.png")
    trainer.close()
