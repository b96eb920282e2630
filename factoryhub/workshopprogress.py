"""A workshop seat's progress through its course and its energy so far (pure).

Progress comes from the learner's own session (hostile input): the session's server extension
reports the notebooks opened, the cells run and the course notebooks completed, the course's
exercise checks report each exercise passed. A course notebook is *completed* when the learner
has run its last code cell (the last one with code in the published course) in a kernel of that
notebook: they worked through to its end. It is no grade: the exercises passed say that.

Each report goes to the hub service with the session's own token, so the
service knows the seat from the token, never from the body: a report has no field that names a
seat, and every field is bounded (`parse_progress`). A learner can overstate their own progress
(it is their session), never another seat's.

Energy so far is Slurm's accounting of the workshop account's allocations (elapsed time ×
what each job holds), through the site's energy model, as the usage report computes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .energy import EnergyFigure, JobUsage, job_energy, total
from .site import EnergySettings
from .workshopreport import AccountedJob

MAX_ITEMS = 50  # notebooks or exercises in one report
MAX_CELLS_PER_REPORT = 10_000  # a session reports every few seconds; more is not a person
MAX_CELLS = 1_000_000  # a seat's total is kept at most this
MAX_NOTEBOOKS = 500  # distinct notebooks kept per seat
MAX_EXERCISES = 500
# a notebook's path in the seat's home: printable, no control characters, bounded
_NOTEBOOK = re.compile(r"[^\x00-\x1f\x7f]{1,255}\.ipynb")
_EXERCISE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", re.ASCII)
_COURSE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
# a course notebook as a seat's session has it: ~/courses/<course>/<notebook>.ipynb
_COURSE_NOTEBOOK = re.compile(
    r"courses/([a-z0-9][a-z0-9-]{0,63})/([^/\x00-\x1f\x7f]{1,200}\.ipynb)", re.ASCII
)
FIELDS = ("notebooks_opened", "cells_run", "exercises_passed", "notebooks_completed")


class ProgressError(ValueError):
    """A report the service refuses; the message says which field and why."""


@dataclass(frozen=True)
class ProgressReport:
    """What one report adds: notebooks opened, cells run since the last report, exercises
    passed (``course:exercise``), course notebooks completed (``courses/<course>/<file>``)."""

    notebooks_opened: tuple[str, ...] = ()
    cells_run: int = 0
    exercises_passed: tuple[str, ...] = ()
    notebooks_completed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeatProgress:
    """A seat's progress as kept: counts of distinct notebooks and exercises, cells in all."""

    notebooks_opened: int = 0
    cells_run: int = 0
    exercises_passed: int = 0
    notebooks_completed: int = 0


def _items(raw: Mapping, key: str, valid: Callable[[str], object], what: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ProgressError(f"{key}: expected a list of {what}")
    if len(value) > MAX_ITEMS:
        raise ProgressError(f"{key}: at most {MAX_ITEMS} in one report")
    for item in value:
        if not isinstance(item, str) or not valid(item):
            shown = repr(item)[:40] if isinstance(item, str) else type(item).__name__
            raise ProgressError(f"{key}: {shown} is not {what}")
    return tuple(dict.fromkeys(value))


def _exercise(item: str) -> bool:
    course, _, name = item.partition(":")
    return bool(_COURSE.fullmatch(course) and _EXERCISE.fullmatch(name))


def course_notebook(path: str) -> tuple[str, str] | None:
    """(course, notebook file) of ``courses/<course>/<file>.ipynb``; None for any other path."""
    found = _COURSE_NOTEBOOK.fullmatch(path)
    return (found[1], found[2]) if found else None


def parse_progress(
    raw: object, notebooks: Callable[[str], Iterable[str]] | None = None
) -> ProgressReport:
    """A session's report, ``{"notebooks_opened": [path…], "cells_run": n,
    "exercises_passed": ["course:exercise"…], "notebooks_completed": [path…]}`` (every field
    optional), checked and bounded. A completed notebook must be one of its course's:
    `notebooks` gives a course's notebook files (none: no notebook can be completed)."""
    if not isinstance(raw, dict):
        raise ProgressError("expected a JSON object with notebooks_opened, cells_run,"
                            " exercises_passed or notebooks_completed")  # fmt: skip
    if unknown := sorted(set(raw) - set(FIELDS)):
        raise ProgressError(f"unknown field {str(unknown[0])[:40]!r} (a session reports only"
                            " for its own seat)")  # fmt: skip
    cells = raw.get("cells_run", 0)
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 0:
        raise ProgressError("cells_run: a whole number, 0 or more")
    if cells > MAX_CELLS_PER_REPORT:
        raise ProgressError(f"cells_run: at most {MAX_CELLS_PER_REPORT} in one report")
    return ProgressReport(
        notebooks_opened=_items(raw, "notebooks_opened", _NOTEBOOK.fullmatch, "a notebook's path"),
        cells_run=cells,
        exercises_passed=_items(raw, "exercises_passed", _exercise, "course:exercise"),
        notebooks_completed=_items(
            raw,
            "notebooks_completed",
            lambda path: _of_the_course(path, notebooks),
            "a notebook of this workshop's courses",
        ),
    )


def _of_the_course(path: str, notebooks: Callable[[str], Iterable[str]] | None) -> bool:
    found = course_notebook(path)
    return found is not None and notebooks is not None and found[1] in notebooks(found[0])


def seat_energy(jobs: Iterable[AccountedJob], factors: EnergySettings) -> dict[str, EnergyFigure]:
    """Energy so far per seat (user) from the workshop account's allocations: Slurm's
    measurement where it has one, otherwise elapsed × allocation through the site's model."""
    per_user: dict[str, list[EnergyFigure]] = {}
    for job in jobs:
        usage = JobUsage(cpus=job.cpus, seconds=job.seconds, gpus=job.gpus)
        per_user.setdefault(job.user, []).append(job_energy(usage, factors, job.joules))
    return {user: total(figures) for user, figures in per_user.items()}


def energy_words(figure: EnergyFigure | None) -> str:
    """ "3.2 Wh (estimated)" for the cohort page; "" for a seat with no job yet."""
    if figure is None:
        return ""
    kind = "measured" if figure.measured else "estimated"
    wh = figure.wh
    number = f"{wh:,.0f}" if wh >= 100 else f"{wh:.1f}" if wh >= 10 else f"{wh:.2f}"
    return f"{number} Wh ({kind})"
