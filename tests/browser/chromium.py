"""Where browser tests put their screenshots (docs/images/), and chromium's launch arguments."""

from pathlib import Path

from conftest import CHROMIUM_ARGS

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

__all__ = ["CHROMIUM_ARGS", "IMAGES"]
