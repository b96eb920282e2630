"""Exercises in course notebooks: an answer checked by code, a clear "correct" or
"not yet, hint: …", and the solution one call away.

A course keeps its answers in ``solutions.toml`` beside its notebooks::

    [energy-of-a-job]
    answer = 24.0
    tolerance = 0.1          # for numbers (absolute)
    hint = "cores × W per core × hours × PUE"
    solution = "4 × 10 W × 0.5 h × 1.2 = 24 Wh"

Validation runs with ``solve = True`` (a papermill parameter): every check then uses the stored
answer, which proves the solutions themselves are right.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path


class Exercises:
    """The exercises of one notebook, read from `solutions.toml`."""

    def __init__(self, path: str | Path = "solutions.toml", solve: bool = False) -> None:
        self.answers = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        self.solve = solve

    def _entry(self, name: str) -> dict:
        if name not in self.answers:
            raise KeyError(f"no exercise {name!r} in solutions.toml")
        return self.answers[name]

    def is_correct(self, name: str, answer: object, expected: object = None) -> bool:
        """True when `answer` matches (numbers within the tolerance, text ignoring case)."""
        entry = self._entry(name)
        want = entry.get("answer") if expected is None else expected
        if isinstance(want, bool) or not isinstance(want, int | float):
            norm = str(answer).strip().lower() if isinstance(answer, str) else answer
            target = str(want).strip().lower() if isinstance(want, str) else want
            return norm == target
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            return False
        return math.isclose(answer, want, abs_tol=entry.get("tolerance", 1e-9))

    def check(self, name: str, answer: object, expected: object = None) -> bool:
        """Print "correct" or "not yet, hint: …"; with `solve`, check the stored answer."""
        if self.solve:
            answer = self._entry(name).get("answer") if expected is None else expected
        ok = self.is_correct(name, answer, expected)
        print(f"{name}: correct" if ok else f"{name}: not yet, hint: {self._entry(name)['hint']}")
        return ok

    def solution(self, name: str) -> str:
        """The worked solution, printed and returned."""
        text = self._entry(name)["solution"]
        print(text)
        return text
