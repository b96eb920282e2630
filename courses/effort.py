"""How long a course takes a learner, estimated from its content (pure): what `course check`
prints beside the duration course.toml states, so a trainer sees when the two disagree.

The rates are assumptions for learners new to the topic, not measurements; a pilot with real
learners replaces them (docs/trainer-guide.md, Durations):

- prose is read at 120 words a minute (instructional text with tables, read to act on it);
- code is read at 60 words a minute;
- each code cell takes half a minute to run and look at;
- an exercise that asks for code takes 8 minutes (write, run, a hint or two), one that asks for
  a value 2 minutes, an assessment question 1.5 minutes.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

PROSE_WPM = 120
CODE_WPM = 60
MINUTES_PER_CELL = 0.5
MINUTES_PER_CODE_EXERCISE = 8
MINUTES_PER_VALUE_EXERCISE = 2
MINUTES_PER_QUESTION = 1.5

_WORD = re.compile(r"\w+")
_RECORD = re.compile(r"\.record\(\s*\[([^\]]*)\]")


@dataclass(frozen=True)
class Effort:
    """What a course asks of a learner, and the minutes that adds up to."""

    prose_words: int
    code_words: int
    code_cells: int
    code_exercises: int
    value_exercises: int
    questions: int

    @property
    def minutes(self) -> float:
        return (
            self.prose_words / PROSE_WPM
            + self.code_words / CODE_WPM
            + self.code_cells * MINUTES_PER_CELL
            + self.code_exercises * MINUTES_PER_CODE_EXERCISE
            + self.value_exercises * MINUTES_PER_VALUE_EXERCISE
            + self.questions * MINUTES_PER_QUESTION
        )


def estimate_effort(notebooks: list, solutions: dict) -> Effort:
    """The effort of `notebooks` (nbformat nodes) with the exercises of `solutions` (the parsed
    solutions.toml): assessment questions are the names a notebook passes to `ex.record([...])`."""
    cells = [c for nb in notebooks for c in nb.cells]
    code = [c.source for c in cells if c.cell_type == "code"]
    questions = {
        name.strip().strip("'\"")
        for source in code
        for listed in _RECORD.findall(source)
        for name in listed.split(",")
        if name.strip()
    }
    exercises = {n: e for n, e in solutions.items() if n not in questions and isinstance(e, dict)}
    return Effort(
        prose_words=sum(len(_WORD.findall(c.source)) for c in cells if c.cell_type == "markdown"),
        code_words=sum(len(_WORD.findall(s)) for s in code),
        code_cells=len(code),
        code_exercises=sum("test" in e for e in exercises.values()),
        value_exercises=sum("test" not in e for e in exercises.values()),
        questions=len(questions & set(solutions)),
    )


def course_effort(folder: Path, notebooks: list[str]) -> Effort:
    """The effort of the course in `folder` (its listed notebooks and its solutions.toml)."""
    read = [nbformat.read(folder / name, as_version=4) for name in notebooks]
    solutions_file = folder / "solutions.toml"
    solutions = (
        tomllib.loads(solutions_file.read_text(encoding="utf-8"))
        if solutions_file.is_file()
        else {}
    )
    return estimate_effort(read, solutions)
