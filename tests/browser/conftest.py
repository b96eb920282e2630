"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser).

- `page`   a fresh 1280×800 page in headless chromium
"""

import pytest
from chromium import CHROMIUM_ARGS
from playwright.sync_api import sync_playwright


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()
