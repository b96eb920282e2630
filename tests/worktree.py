"""`make unit`'s view of the working tree: the installed package's layout (pyproject.toml's
packages and package-dir: factoryhub/ with spawners/ as factoryhub/spawners, …) built of
symbolic links into the checkout, so that with PYTHONPATH=<it> the unit tests import the files
being edited, not the copy installed in the venv.

    python tests/worktree.py build/worktree
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def link_tree(target: Path, repo: Path = REPO) -> Path:
    """(Re)build `target`: each package a folder of links to its files, or one link to its
    folder where package-dir maps it elsewhere."""
    setuptools = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})
    shutil.rmtree(target, ignore_errors=True)
    for package in sorted(setuptools["packages"]):
        place = target.joinpath(*package.split("."))
        if place.exists():
            continue  # a folder of its parent package, linked with it
        if package in mapped:
            place.symlink_to(repo / mapped[package], target_is_directory=True)
            continue
        place.mkdir(parents=True)
        for entry in (repo / package.replace(".", "/")).iterdir():
            if entry.name != "__pycache__" and not (place / entry.name).exists():
                (place / entry.name).symlink_to(entry)
    return target


if __name__ == "__main__":
    print(link_tree(Path(sys.argv[1]).resolve()))
