"""Static checks of a course (no kernel, no Slurm): metadata, kernelspec, no absolute paths, no
network access, the outputs policy (no errors, nothing private: see `outputs_scan`) and sizes.
`check_course(path) -> list[Problem]`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from factoryhub.course import CourseError, load_course

from .outputs_scan import output_text, private_in_output

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_COURSE_BYTES = 20 * 1024 * 1024
MAX_OUTPUT_BYTES = 1024 * 1024  # stored outputs per notebook
KERNEL = "python3"

_ABSOLUTE = re.compile(
    r"""['"](/(home|root|Users|tmp|mnt|scratch|data|work|opt|var)/|[A-Za-z]:\\)"""
)
# what `Exercises` prints for a correct answer: under a blank answer, a learner sees it as solved
SOLVED = re.compile(r"^[\w.-]+: correct$", re.MULTILINE)
_NETWORK = re.compile(
    r"urlopen|urllib\.request|requests\.(get|post)|httpx\.|wget |curl |pip install|"
    r"fetch_openml|load_dataset\(|download\s*=\s*True|https?://"
)


@dataclass(frozen=True)
class Problem:
    """Something wrong with a course; `where` is a file (and cell), `message` says what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _cell_problems(nb_path: Path, nb, allow_network: bool) -> list[Problem]:
    problems = []
    output_bytes = 0
    for index, cell in enumerate(nb.cells):
        where = f"{nb_path.name} cell {index}"
        if cell.cell_type != "code":
            continue
        source = cell.source
        if _ABSOLUTE.search(source):
            problems.append(Problem(where, "uses an absolute path; use paths inside the course"))
        if not allow_network and (match := _NETWORK.search(source)):
            problems.append(
                Problem(
                    where,
                    f"reaches the network ({match.group(0).strip()!r}); courses use"
                    " data shipped in packages or generated in the notebook",
                )
            )
        tags = cell.metadata.get("tags", [])
        for output in cell.get("outputs", []):
            output_bytes += len(str(output))
            problems += [
                Problem(
                    where,
                    f"a stored output shows {what}: {excerpt!r}; clear that output"
                    " (or print less) before committing",
                )
                for what, excerpt in private_in_output(output)
            ]
            if solved := SOLVED.search(output_text(output)):
                problems.append(
                    Problem(
                        where,
                        f"a stored output shows a solved exercise ({solved.group(0).strip()!r}):"
                        " learners must open the unsolved state; record the outputs again"
                        " (`course validate --record` stores the run without solutions)",
                    )
                )
            if output.get("output_type") == "error" and "raises-exception" not in tags:
                problems.append(
                    Problem(
                        where,
                        "stores an error output (tag it raises-exception"
                        " if the error is the lesson)",
                    )
                )
    if output_bytes > MAX_OUTPUT_BYTES:
        problems.append(
            Problem(
                nb_path.name,
                f"stored outputs are {output_bytes // 1024} KiB (at most"
                f" {MAX_OUTPUT_BYTES // 1024} KiB): clear large plots or data",
            )
        )
    return problems


def check_notebook(nb_path: Path, parameters: dict, allow_network: bool) -> list[Problem]:
    """Problems of one notebook of a course."""
    try:
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.validate(nb)
    except (OSError, nbformat.ValidationError, ValueError) as exc:
        return [Problem(nb_path.name, f"not a valid notebook: {str(exc)[:200]}")]
    problems = []
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        problems.append(Problem(nb_path.name, f"kernelspec is {kernel!r}; use {KERNEL!r}"))
    if "widgets" in nb.metadata:
        problems.append(Problem(nb_path.name, "stores widget state; clear it before committing"))
    tagged = any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    if parameters and not tagged:
        problems.append(
            Problem(nb_path.name, "has smoke parameters but no cell tagged 'parameters'")
        )
    return problems + _cell_problems(nb_path, nb, allow_network)


def _size_problems(folder: Path) -> list[Problem]:
    problems, total = [], 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".ipynb_checkpoints" in path.parts:
            continue
        size = path.stat().st_size
        total += size
        if size > MAX_FILE_BYTES:
            problems.append(
                Problem(
                    str(path.relative_to(folder)),
                    f"{size // 1024} KiB is too"
                    f" large (at most {MAX_FILE_BYTES // 1024} KiB a file)",
                )
            )
    if total > MAX_COURSE_BYTES:
        problems.append(
            Problem(
                folder.name, f"{total // 1024} KiB in all (at most {MAX_COURSE_BYTES // 1024} KiB)"
            )
        )
    return problems


def check_course(folder: str | Path) -> list[Problem]:
    """Every problem `factoryhub course check` reports for the course in `folder`."""
    folder = Path(folder)
    try:
        course = load_course(folder)
    except CourseError as exc:
        return [Problem("course.toml", str(exc))]
    problems = []
    for name in course.notebooks:
        path = course.path / name
        if not path.is_file():
            problems.append(Problem(name, "is listed in course.toml but does not exist"))
            continue
        params = course.validation.parameters_for(name)
        problems += check_notebook(path, params, course.validation.allow_network)
    listed = set(course.notebooks)
    for extra in sorted(p.name for p in course.path.glob("*.ipynb")):
        if extra not in listed:
            problems.append(Problem(extra, "is not listed in course.toml's notebooks"))
    return problems + _size_problems(course.path)
