"""A course's closing assessment, recorded for the learner in their own home:
``~/.factoryhub/assessments/<course>.json``, written by the learner's kernel (never by the hub)::

    {"course": "first-steps", "recorded": "2026-12-02T09:15:00+00:00",
     "score": 2, "total": 3, "best_score": 3,
     "items": {"q-reason": {"correct": true, "tries": 1}, …}}

``score`` is this attempt's; ``best_score`` the best of all attempts so far. The file is replaced
atomically and readable by the learner only; a workshop report can read it with the learner's
rights.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

COURSE = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class Attempt:
    """One question of the assessment: answered correctly at some try, and how many tries."""

    name: str
    correct: bool
    tries: int


def assessment_path(course: str, home: Path | None = None) -> Path:
    """Where `course`'s assessment is recorded for the learner whose home is `home`."""
    if not COURSE.fullmatch(course):
        raise ValueError(f"{course!r} is not a course name (a-z, 0-9 and -)")
    return (home or Path.home()) / ".factoryhub" / "assessments" / f"{course}.json"


def assessment_record(course: str, attempts: list[Attempt], previous: dict | None) -> dict:
    """The record to store (pure): this attempt's score and the best so far."""
    score = sum(a.correct for a in attempts)
    best = previous.get("best_score", 0) if isinstance(previous, dict) else 0
    return {
        "course": course,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "score": score,
        "total": len(attempts),
        "best_score": max(score, best if isinstance(best, int) else 0),
        "items": {a.name: {"correct": a.correct, "tries": a.tries} for a in attempts},
    }


def record_assessment(
    course: str, attempts: list[Attempt], home: Path | None = None
) -> tuple[Path, dict]:
    """Write the learner's assessment record; returns its path and content."""
    path = assessment_path(course, home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    record = assessment_record(course, attempts, previous)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(partial, path)
    return path, record
