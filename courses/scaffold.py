"""`factoryhub course new`: a course that passes `check` and `validate` as it is, for a trainer
to grow from."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from factoryhub.course import COURSE_FILE, COURSE_NAME, CourseError

COURSE_TOML = """\
[course]
title = "{title}"
summary = "One sentence on what learners will be able to do."
audience = "Who this is for (e.g. start-up engineers new to supercomputers)"
level = "beginner"
duration = "01:00:00"
outcomes = ["Name what a learner can do afterwards"]
prerequisites = []
notebooks = ["01-start.ipynb"]
environment = "default"

[resources]
partition = "cpu"
cpus = 1
memory_gb = 2
walltime = "01:00:00"

[validation]
# papermill's smoke parameters: small enough that validation takes seconds.
parameters = {{ steps = 2 }}
cell_timeout = 120
expected_runtime = "00:05:00"
compare_outputs = true
"""


def starter_notebook() -> nbformat.NotebookNode:
    """A first notebook with reference outputs for the smoke parameters (steps = 2)."""
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    nb.cells = [
        new_markdown_cell("# A first step\n\nExplain before you ask."),
        new_code_cell(
            "steps = 10  # papermill's smoke run sets 2",
            metadata={"tags": ["parameters"]},
            execution_count=1,
        ),
        new_code_cell(
            "total = sum(range(steps))\nprint(f'sum of the first {steps} numbers: {total}')",
            execution_count=2,
            outputs=[new_output("stream", name="stdout", text="sum of the first 2 numbers: 1\n")],
        ),
    ]
    return nb


def new_course(root: Path, name: str) -> Path:
    """Create `root/name/` with a course.toml and a notebook; refuses to overwrite."""
    if not COURSE_NAME.fullmatch(name):
        raise CourseError(f"{name!r}: a course name uses a-z, 0-9 and - (at most 41 characters)")
    folder = root / name
    if folder.exists():
        raise CourseError(f"{folder} exists already")
    folder.mkdir(parents=True)
    title = name.replace("-", " ").capitalize()
    (folder / COURSE_FILE).write_text(COURSE_TOML.format(title=title), encoding="utf-8")
    nbformat.write(starter_notebook(), folder / "01-start.ipynb")
    return folder
