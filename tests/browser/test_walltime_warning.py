"""F11 in a real browser: a session near its walltime warns in JupyterLab (a notification that
stays) and saves the notebook the learner left unsaved, before Slurm ends the job."""

import httpx
import pytest
from chromium import IMAGES
from realsite import PASSWORDS, notebook_model

pytestmark = pytest.mark.browser

NOTEBOOK = notebook_model([""])


def test_walltime_warning_notifies_and_saves_open_notebooks(page, hub_client):
    token = hub_client.login_token("tlearner3")
    # 2 minutes, started at once (an immediate allocation): the session's own clock warns
    # halfway, a minute before the end (a batch job's Slurm signal may come up to a minute early:
    # tests/integration/test_session_end.py keeps 3 minutes for it)
    events = hub_client.start("tlearner3", token, options={"walltime": "00:02:00"})
    assert any("Room in cpu now" in e["message"] for e in events), events  # the immediate path
    api = f"{hub_client.base}/user/tlearner3/api/contents/unsaved-work.ipynb"
    headers = {"Authorization": f"token {token}"}
    assert httpx.put(api, json=NOTEBOOK, headers=headers, timeout=30).status_code in (200, 201)
    # JupyterLab's own autosave off, so only FactoryHub's warning can save the typed text.
    settings = (
        f"{hub_client.base}/user/tlearner3/lab/api/settings/@jupyterlab/docmanager-extension:plugin"
    )
    r = httpx.put(settings, json={"raw": '{"autosave": false}'}, headers=headers, timeout=30)
    assert r.status_code == 204, r.text

    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", "tlearner3")
    page.fill("#password_input", PASSWORDS["tlearner3"])
    page.click("#login_submit")
    page.wait_for_url("**/user/tlearner3/lab**", timeout=60_000)
    page.goto(f"{hub_client.base}/user/tlearner3/lab/tree/unsaved-work.ipynb?reset")
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .cm-content").first
    editor.wait_for(timeout=60_000)
    editor.click()
    page.keyboard.type("answer = 42  # typed, never saved by hand")
    on_disk = httpx.get(api, headers=headers, timeout=30).json()
    assert on_disk["content"]["cells"][0]["source"] == ""  # typed, not saved yet

    notice = page.locator(
        ".jp-toast-message, .Toastify__toast-body", has_text="This session ends at"
    )
    notice.first.wait_for(timeout=110_000)
    page.screenshot(path=IMAGES / "walltime-warning.png")
    saved = httpx.get(api, headers=headers, timeout=30).json()
    assert "answer = 42" in saved["content"]["cells"][0]["source"]
    hub_client.stop("tlearner3", token)
