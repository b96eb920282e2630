"""JupyterLab steps the browser tests share."""

from playwright.sync_api import Error as PlaywrightError

VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RAN = "p => !/^\\[ \\]/.test(p.textContent.trim())"  # queued [*] or run [n]


def run_all(page, tries: int = 3) -> None:
    """Run -> Run All Cells in the open notebook, as a learner does, and wait until its first
    code cell is queued or run. Now and then JupyterLab drops a Run All given in the moment its
    kernel connects (every prompt stays "[ ]", the kernel idle: seen once in a CI run of
    ~1500 tests); the menu is used again then, up to `tries` times, since nothing ran."""
    prompt = page.locator(f"{VISIBLE} .jp-CodeCell .jp-InputArea-prompt").first
    for _ in range(tries):
        page.click(f"{VISIBLE} .jp-Notebook")
        page.keyboard.press("Escape")
        # The menu bar's own items (cell text such as "run_path" must not match).
        page.get_by_role("menuitem", name="Run", exact=True).click(timeout=10_000)
        page.locator("li[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(RAN, arg=prompt.element_handle(), timeout=15_000)
            return
        except PlaywrightError:
            continue
    raise AssertionError(f"Run All ran nothing in {tries} tries: every prompt still [ ]")
