"""The widgets rendered in JupyterLab in a running session, in a real browser; screenshots of
each go to reports/screenshots/ (widget-*.png; docs/images/ with FACTORYHUB_REFRESH_DOCS=1)."""

import httpx
import pytest
from chromium import IMAGES
from labkit import run_all
from playwright.sync_api import expect
from realsite import PASSWORDS, notebook_model

pytestmark = pytest.mark.browser

CELLS = [
    "from pathlib import Path\n"
    "Path('train.py').write_text('import time\\ntime.sleep(120)\\n')\n"
    "from factoryhub.widgets import DaskCluster, EnergyPanel, GPURequest, JobMonitor\n"
    "monitor = JobMonitor(interval=3)",
    "request = GPURequest(monitor=monitor)\n"
    "request.gpus.value = 6\n"
    "request.run_path.value = 'train.py'\n"
    "request",
    "dask = DaskCluster(workers=2)\ncluster = dask.start()\n"
    "dask.client.wait_for_workers(2, timeout=120)\ndask.refresh()\ndask",
    "monitor",
    "EnergyPanel(interval=3)",
]


def test_widgets_render_in_jupyterlab(page, hub_client):
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token, options={"partition": "cpu", "cpus": 2})
    api = f"{hub_client.base}/user/tlearner1/api/contents/widgets-tour.ipynb"
    r = httpx.put(api, json=notebook_model(CELLS), headers={"Authorization": f"token {token}"})
    assert r.status_code in (200, 201), r.text

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{hub_client.base}/hub/login")
    page.fill("#username_input", "tlearner1")
    page.fill("#password_input", PASSWORDS["tlearner1"])
    page.click("#login_submit")
    page.wait_for_url("**/user/tlearner1/lab**", timeout=60_000)
    # ?reset: tlearner1's saved workspace (another test's notebook left open) is not restored
    page.goto(f"{hub_client.base}/user/tlearner1/lab/tree/widgets-tour.ipynb?reset")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    run_all(page)

    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea")
    gpu = outputs.nth(1)
    expect(gpu).to_contain_text("the gpu partition allows at most 4 GPUs per job", timeout=60_000)
    expect(gpu).to_contain_text("up to 4 GPUs")
    gpu.screenshot(path=IMAGES / "widget-gpu-request.png")

    dask = outputs.nth(2)
    expect(dask).to_contain_text("2 workers connected", timeout=150_000)
    expect(dask.locator("a", has_text="Open the Dask dashboard")).to_have_attribute(
        "href", "/user/tlearner1/dask-dashboard/status"
    )
    dask.screenshot(path=IMAGES / "widget-dask-cluster.png")

    monitor = outputs.nth(3)
    workers = monitor.locator("tr", has_text="Dask worker").filter(has_text="RUNNING")
    expect(workers).to_have_count(2, timeout=30_000)
    expect(monitor).to_contain_text("JupyterLab session")
    monitor.screenshot(path=IMAGES / "widget-job-monitor.png")

    energy = outputs.nth(4)
    expect(energy).to_contain_text("This session:", timeout=30_000)
    expect(energy.locator("img[alt='energy per job']")).to_be_visible()
    energy.screenshot(path=IMAGES / "widget-energy.png")

    # The dashboard opens in the browser through the learner's server.
    # Bokeh draws in shadow DOM: its own console line says when the plots are rendered.
    rendered = "Bokeh items were rendered successfully"
    with page.expect_console_message(lambda m: rendered in m.text, timeout=30_000):
        page.goto(f"{hub_client.base}/user/tlearner1/dask-dashboard/status")
    page.wait_for_timeout(1500)
    assert "Dask" in page.title()
    page.screenshot(path=IMAGES / "dask-dashboard.png")
    hub_client.stop("tlearner1", token)
