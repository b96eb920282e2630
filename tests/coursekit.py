"""Small courses built in a test's temporary directory: a good one and a deliberately broken one
(an error cell, a wrong output, a hanging cell, a killed kernel, and one notebook that passes)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(*cells) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = [new_markdown_cell("# Test notebook"), *cells]
    return nb


def printed(source: str, text: str, count: int, **kw) -> nbformat.NotebookNode:
    """A code cell whose stored reference output is `text` on stdout."""
    output = new_output("stream", name="stdout", text=text)
    return new_code_cell(source, execution_count=count, outputs=[output], **kw)


def course_toml(name: str, notebooks: list[str], extra: str = "") -> str:
    listed = ", ".join(f'"{n}"' for n in notebooks)
    return (
        f'[course]\ntitle = "{name}"\nsummary = "s"\naudience = "a"\nlevel = "beginner"\n'
        f'duration = "00:30:00"\noutcomes = ["o"]\nnotebooks = [{listed}]\n\n'
        '[resources]\npartition = "cpu"\ncpus = 1\nmemory_gb = 1\nwalltime = "00:30:00"\n\n'
        f'[validation]\nexpected_runtime = "00:05:00"\n{extra}'
    )


def write_course(root: Path, name: str, notebooks: dict, extra: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "course.toml").write_text(course_toml(name, list(notebooks), extra))
    for file, nb in notebooks.items():
        nbformat.write(nb, folder / file)
    return folder


def good_course(root: Path) -> Path:
    params = new_code_cell("n = 10", execution_count=1, metadata={"tags": ["parameters"]})
    return write_course(
        root,
        "good-course",
        {
            "01-sum.ipynb": notebook(params, printed("print(sum(range(n)))", "3\n", 2)),
            "02-data.ipynb": notebook(
                printed(
                    "import random\nrandom.seed(1)\nprint(random.random())",
                    "0.13436424411240122\n",
                    1,
                ),
                printed(
                    "import time\nprint(time.time())  # varies",
                    "1.0\n",
                    2,
                    metadata={"tags": ["nbval-ignore-output"]},
                ),
            ),
        },
        'notebook_parameters = { "01-sum.ipynb" = { n = 3 } }\ncell_timeout = 60\n',
    )


def broken_course(root: Path) -> Path:
    return write_course(
        root,
        "broken-course",
        {
            "error-cell.ipynb": notebook(
                printed("print('before')", "before\n", 1),
                new_code_cell("raise ValueError('deliberately broken')", execution_count=2),
            ),
            "wrong-output.ipynb": notebook(printed("print(1 + 1)", "3\n", 1)),
            "hanging-cell.ipynb": notebook(
                new_code_cell("import time\ntime.sleep(600)", execution_count=1)
            ),
            "killed-kernel.ipynb": notebook(
                new_code_cell(
                    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", execution_count=1
                )
            ),
            "fine.ipynb": notebook(printed("print('fine')", "fine\n", 1)),
        },
        "cell_timeout = 5\n",
    )
