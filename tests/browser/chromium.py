"""Where browser tests put their screenshots (reports/screenshots/, or docs/images/ with
FACTORYHUB_REFRESH_DOCS=1: see conftest.screenshot_dir), and chromium's launch arguments."""

from conftest import CHROMIUM_ARGS, screenshot_dir

IMAGES = screenshot_dir()

__all__ = ["CHROMIUM_ARGS", "IMAGES"]
