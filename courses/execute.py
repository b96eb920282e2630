"""Validate one notebook where it runs (a Slurm job of its course's partition, or locally):
papermill executes it with the course's smoke parameters and per-cell timeout, then nbval's
rules compare every cell's outputs with the reference outputs stored in the course's notebook.
A notebook with exercises (``solve = true`` among its smoke parameters) runs a second time with
its solutions, which must run through. The result is a small JSON file the orchestrator reads
back.

    python -m factoryhub.courses.execute COURSE_DIR NOTEBOOK WORKDIR RESULT_JSON
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from factoryhub.course import Course, load_course

from .outputs import OutputComparison, cell_options

KERNEL = "python3"
INJECTED = "injected-parameters"  # the cell papermill adds with the parameters
ERROR_MARKER = "papermill-error-cell-tag"  # the "an exception occurred" cells it adds on failure


def course_cells(cells: list) -> list:
    """An executed notebook's cells without the ones papermill added."""
    return [c for c in cells if not {INJECTED, ERROR_MARKER} & set(c.metadata.get("tags", []))]


class IPCKernelManager(AsyncKernelManager):
    """Kernels on Unix sockets in the notebook's own directory: notebooks validated in
    parallel on one node never race for the same TCP port ("Address already in use")."""

    @default("transport")
    def _ipc(self) -> str:
        return "ipc"


@dataclass
class CellResult:
    """One code cell: `status` is passed, failed (outputs differ), error, timeout, dead-kernel,
    not-run or unchecked (its outputs are not compared)."""

    index: int
    status: str
    seconds: float = 0.0
    message: str = ""
    traceback: str = ""


@dataclass
class NotebookResult:
    """A notebook's validation; `status` is passed or failed, with the first problem."""

    course: str
    notebook: str
    status: str
    seconds: float
    message: str = ""
    cells: list[CellResult] = field(default_factory=list)
    job_id: str = ""
    node: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> NotebookResult:
        """Parse a result file. It was written by the validating account's job, so it is
        checked like any input: exactly the known keys, each of its type, text without
        control characters (a `ValueError` otherwise)."""
        data = json.loads(text)
        cells = data.get("cells") if isinstance(data, dict) else None
        if not isinstance(cells, list):
            raise ValueError("not a notebook result")
        fields = _checked(data, _RESULT_FIELDS, "cells")
        return cls(**fields, cells=[CellResult(**_checked(c, _CELL_FIELDS)) for c in cells])


_RESULT_FIELDS = {
    "course": str,
    "notebook": str,
    "status": str,
    "seconds": float,
    "message": str,
    "job_id": str,
    "node": str,
}
_CELL_FIELDS = {"index": int, "status": str, "seconds": float, "message": str, "traceback": str}


def _checked(data: object, types: dict[str, type], *extra: str) -> dict[str, object]:
    """`data`'s fields when it has exactly `types`' keys (and `extra`), each of its type."""
    if not isinstance(data, dict) or set(data) != {*types, *extra}:
        raise ValueError("unexpected fields in a notebook result")
    fields: dict[str, object] = {}
    for key, kind in types.items():
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ValueError(f"{key} is not a {kind.__name__}")
        fields[key] = clean_text(value) if kind is str else value
    return fields


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """`text` without terminal escapes and control characters (newlines and tabs stay): what
    an account wrote, before root prints it or puts it in a report."""
    return _UNPRINTABLE.sub("", _ANSI.sub("", text))


def _text(value: object) -> str:
    """Plain text of a traceback: IPython colours it, and reports (XML) cannot carry that."""
    text = "\n".join(value) if isinstance(value, list) else str(value or "")
    return _CONTROL.sub("", _ANSI.sub("", text))


def _execution_failure(exc: BaseException, injected: int) -> tuple[int | None, str, str, str]:
    """(reference cell index, status, message, traceback) of what stopped execution."""
    if isinstance(exc, PapermillExecutionError):
        index = exc.cell_index - (1 if injected is not None and exc.cell_index > injected else 0)
        return index, "error", f"{exc.ename}: {exc.evalue}"[:500], _text(exc.traceback)
    if isinstance(exc, CellTimeoutError):
        return None, "timeout", f"cell timed out: {str(exc).splitlines()[0][:300]}", ""
    if isinstance(exc, DeadKernelError):
        return None, "dead-kernel", "the kernel died while the cell ran", _text(str(exc)[:2000])
    return None, "error", f"{type(exc).__name__}: {str(exc)[:300]}", ""


def _last_started(cells: list) -> int | None:
    """The cell execution stopped in: the last one papermill started (timeouts and dead
    kernels leave no error output to point at it)."""
    started = [
        i
        for i, cell in enumerate(cells)
        if cell.get("metadata", {}).get("papermill", {}).get("status", "pending") != "pending"
    ]
    return started[-1] if started else None


def compare_cells(reference, executed, course: Course) -> list[CellResult]:
    """Per code cell of `reference`: executed, then outputs compared under nbval's rules."""
    comparison = OutputComparison(course.validation.sanitize)
    results = []
    for index, (ref, run) in enumerate(zip(reference.cells, executed, strict=True)):
        if ref.cell_type != "code":
            continue
        meta = run.get("metadata", {}).get("papermill", {})
        seconds = float(meta.get("duration") or 0.0)
        if meta.get("status") != "completed":
            results.append(CellResult(index, "not-run", seconds))
            continue
        options = cell_options(ref, course.validation.compare_outputs)
        unrun_reference = ref.get("execution_count") is None
        if options.get("skip") or not options.get("check") or unrun_reference:
            results.append(CellResult(index, "unchecked", seconds))
            continue
        diff = comparison.differences(run.get("outputs", []), ref.get("outputs", []))
        status = "failed" if diff else "passed"
        message = "outputs differ from the reference" if diff else ""
        results.append(CellResult(index, status, seconds, message, diff))
    return results


def _execute(course: Course, notebook: str, workdir: Path, parameters: dict, stem: str):
    """Copy the course into `workdir` and execute `notebook` there with `parameters`: the
    executed cells (papermill's additions left out), the failure that stopped it or None, and
    the index of papermill's parameters cell."""
    # links are copied as links, never followed (this runs as the validating account)
    shutil.copytree(course.path, workdir, symlinks=True, dirs_exist_ok=True)
    executed_path = workdir / f"{Path(notebook).stem}.{stem}.ipynb"
    failure: BaseException | None = None
    try:
        papermill.execute_notebook(
            str(workdir / notebook),
            str(executed_path),
            parameters=parameters,
            kernel_name=KERNEL,
            execution_timeout=course.validation.cell_timeout,
            cwd=str(workdir),
            progress_bar=False,
            kernel_manager_class=IPCKernelManager,
        )
    except (PapermillExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as exc:
        failure = exc
    executed = nbformat.read(executed_path, as_version=4).cells if executed_path.exists() else []
    executed = [c for c in executed if ERROR_MARKER not in c.metadata.get("tags", [])]
    injected = next(
        (i for i, c in enumerate(executed) if INJECTED in c.metadata.get("tags", [])), None
    )
    return [c for i, c in enumerate(executed) if i != injected], failure, injected


def _mark_failure(cells: list[CellResult], failure, injected, running, label: str = "") -> str:
    """Put what stopped execution on its cell; the notebook's message."""
    index, status, message, traceback = _execution_failure(failure, injected)
    if index is None:
        index = running
    for cell in cells:
        if cell.index == index:
            cell.status, cell.message, cell.traceback = status, f"{label}{message}", traceback
    where = f" in cell {index}" if index is not None else ""
    return f"{label}{status}{where}: {message}"


def learner_parameters(parameters: dict) -> dict | None:
    """The parameters of the run a learner sees, when validation also solves (pure): the smoke
    parameters with ``solve = False``; None when the notebook has no solutions to prove."""
    if parameters.get("solve") is not True:
        return None
    return {**parameters, "solve": False}


def validate_notebook(course: Course, notebook: str, workdir: Path) -> NotebookResult:
    """Execute `notebook` in a copy of the course and compare its outputs with the stored ones.

    A notebook whose smoke parameters set ``solve = true`` runs twice, in two copies: first as a
    learner opens it (``solve = False``): those outputs are compared, and `--record` stores them,
    so the notebook shows the unsolved state; then with ``solve = True``, which must run through
    without an error (every exercise then checks its stored solution)."""
    started = time.monotonic()
    parameters = course.validation.parameters_for(notebook)
    unsolved = learner_parameters(parameters)
    cells_run, failure, injected = _execute(
        course, notebook, workdir, unsolved or parameters, "executed"
    )
    reference = nbformat.read(course.path / notebook, as_version=4)
    running = _last_started(cells_run)
    if len(cells_run) != len(reference.cells):
        cells_run = [{"cell_type": c.cell_type, "metadata": {}} for c in reference.cells]
    cells = compare_cells(reference, cells_run, course)
    result = NotebookResult(course.name, notebook, "passed", 0.0, cells=cells)
    if failure is not None:
        result.status, result.message = "failed", _mark_failure(cells, failure, injected, running)
    elif failed := [c for c in cells if c.status == "failed"]:
        result.status = "failed"
        result.message = f"outputs differ in cell {', '.join(str(c.index) for c in failed)}"
    if unsolved is not None and failure is None:
        solved_dir = workdir.with_name(f"{workdir.name}.solved")
        solved, failure, injected = _execute(course, notebook, solved_dir, parameters, "solved")
        if failure is not None:
            label = "with the solutions: "
            message = _mark_failure(cells, failure, injected, _last_started(solved), label)
            result.status = "failed"
            result.message = "; ".join(m for m in (result.message, message) if m)
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str]) -> int:
    import os
    import socket

    course_dir, notebook, workdir, result_path = argv
    result = validate_notebook(load_course(course_dir), notebook, Path(workdir))
    result.job_id = os.environ.get("SLURM_JOB_ID", "")
    result.node = os.environ.get("SLURMD_NODENAME", socket.gethostname())
    Path(result_path).write_text(result.to_json(), encoding="utf-8")
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
