"""Exercises in course notebooks: an answer checked by code, a clear "correct" or "not yet" with
a hint that gets more specific on each try, and the solution one call away.

A course keeps its answers in ``solutions.toml`` beside its notebooks. An exercise with an
``answer`` is checked by value; one with a ``test`` is checked by *running* what the learner
wrote (a function, a job script, a Slurm command) through that test::

    [reason]
    answer = "Priority"
    hints = ["first hint", "a more specific one", "nearly the answer"]
    solution = "Priority: …"

    [energy-wh]
    define = "energy_wh"          # the name the learner's cell defines
    test = '''
    def test(energy_wh, factors):  # raises AssertionError("what is wrong") on a wrong answer
        assert energy_wh(4, 0, 2.0, factors) == 96.0, "4 cores for 2 h"
    '''
    solution = '''
    def energy_wh(cores, gpus, hours, factors): …
    '''
    # a plausible mistake, which the test must refuse:
    wrong = '''
    def energy_wh(cores, gpus, hours, factors): …
    '''

A learner's code that still raises ``NotImplementedError`` (the template's body), and an answer
left ``None`` or ``""``, count as *not answered yet*, not as a try.

Validation runs each notebook twice: as a learner opens it (``solve = False``, its outputs are
the notebook's stored outputs) and with ``solve = True``, where every check uses the stored
solution — run through the same test — and a solution that fails raises `SolutionError`, as does
a test that accepts the ``wrong`` answer: the solutions and the tests are both proven.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from pathlib import Path

from .assessment import Attempt, record_assessment
from .progress import report_passed


class Checked(int):
    """A check's outcome: true when correct. A notebook shows nothing for it (the check has
    printed what it found), so a cell ending in a check shows no stray `True` or `False`."""

    def __new__(cls, ok: bool) -> Checked:
        return super().__new__(cls, bool(ok))

    def __repr__(self) -> str:
        return repr(bool(self))

    def _ipython_display_(self) -> None:
        """IPython calls this instead of printing the value: nothing more to show."""


class SolutionError(AssertionError):
    """A stored solution fails its own check, or a test accepts a known wrong answer."""


class _Unanswered(Exception):
    """The learner has not written an answer yet."""


def _hints(entry: dict) -> list[str]:
    hints = entry.get("hints", entry.get("hint", []))
    return [hints] if isinstance(hints, str) else list(hints)


def _unanswered(answer: object) -> bool:
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


def run_test(test: Callable[..., object], candidate: object, context: dict) -> str:
    """Run `test` on `candidate`: "" when it passes, else what is wrong (pure but for the
    learner's code it runs). Raises `_Unanswered` when the candidate is still the template."""
    if _unanswered(candidate):
        raise _Unanswered
    try:
        test(candidate, **context)
    except NotImplementedError:
        raise _Unanswered from None
    except AssertionError as exc:
        return str(exc) or "the test failed"
    except Exception as exc:  # the learner's code may raise anything
        return f"your code raised {type(exc).__name__}: {exc}"
    return ""


class Exercises:
    """The exercises of one notebook, read from `solutions.toml`.

    Parameters
    ----------
    path
        The course's ``solutions.toml``.
    solve
        True under validation: every check uses the stored solution, and a wrong one raises.
    course
        The course's name, under which `record` stores the assessment.
    """

    def __init__(
        self, path: str | Path = "solutions.toml", solve: bool = False, course: str = ""
    ) -> None:
        self.answers = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        self.solve = solve
        self.course = course
        self.tries: dict[str, int] = {}
        self.passed: dict[str, bool] = {}

    def _entry(self, name: str) -> dict:
        if name not in self.answers:
            raise KeyError(f"no exercise {name!r} in solutions.toml")
        return self.answers[name]

    def hint(self, name: str) -> str:
        """The hint for the learner's current try: each wrong try gets the next, more specific
        one, and the last one stays."""
        hints = _hints(self._entry(name)) or ["compare with the text above"]
        return hints[min(max(self.tries.get(name, 1), 1), len(hints)) - 1]

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

    def _report(self, name: str, ok: bool, problem: str = "") -> Checked:
        self.tries[name] = self.tries.get(name, 0) + 1
        if ok and not self.solve and not self.passed.get(name):
            report_passed(self.course, name)  # a workshop seat's progress, for its trainers
        self.passed[name] = self.passed.get(name, False) or ok
        if ok:
            print(f"{name}: correct")
        else:
            what = f"{problem}. " if problem else ""
            print(f"{name}: not yet (try {self.tries[name]}). {what}Hint: {self.hint(name)}")
        return Checked(ok)

    def _not_answered(self, name: str) -> Checked:
        print(f"{name}: not answered yet. Write your answer above, then run this cell again.")
        return Checked(False)

    def check(self, name: str, answer: object, expected: object = None) -> Checked:
        """Check a value: print "correct" or "not yet" with a hint; with `solve`, check the
        stored answer and raise `SolutionError` if it is wrong."""
        if self.solve:
            # the stored answer, against what the notebook computed when it passes `expected`
            answer = self._entry(name).get("answer", expected)
            if not self.is_correct(name, answer, expected):
                raise SolutionError(f"{name}: the stored answer {answer!r} is not correct")
            return self._report(name, True)
        if _unanswered(answer):
            return self._not_answered(name)
        return self._report(name, self.is_correct(name, answer, expected))

    def _compile(self, name: str, key: str) -> object:
        """What the entry's `key` code defines under its `define` name (course-authored code
        from the course's own solutions.toml, run in the learner's kernel)."""
        entry = self._entry(name)
        namespace: dict[str, object] = {}
        exec(entry[key], namespace)  # noqa: S102 - the course's own solution code
        return namespace[entry["define"] if key != "test" else "test"]

    def check_code(self, name: str, candidate: object, **context: object) -> Checked:
        """Check what the learner wrote by running it through the exercise's `test` (with
        `context`, e.g. the site's factors). With `solve`, the stored solution is run through the
        same test, and the test must refuse the stored `wrong` answer."""
        entry = self._entry(name)
        test = self._compile(name, "test")
        if self.solve:
            problem = run_test(test, self._compile(name, "solution"), context)
            if problem:
                raise SolutionError(f"{name}: the stored solution fails its test: {problem}")
            if "wrong" in entry and not run_test(test, self._compile(name, "wrong"), context):
                raise SolutionError(f"{name}: the test accepts the stored wrong answer")
            return self._report(name, True)
        try:
            problem = run_test(test, candidate, context)
        except _Unanswered:
            return self._not_answered(name)
        return self._report(name, not problem, problem)

    def usable(self, name: str, candidate: Callable[..., object]) -> Callable[..., object] | None:
        """The code a later cell goes on with: the learner's once it has passed its check (with
        `solve`, the stored solution); None before that, so the cell can say what to do first."""
        if self.solve:
            return self._compile(name, "solution")  # type: ignore[return-value]
        return candidate if self.passed.get(name) else None

    def solution(self, name: str) -> str:
        """The worked solution, printed and returned."""
        text = self._entry(name)["solution"].strip("\n")
        print(text)
        return text

    def record(self, names: list[str], home: Path | None = None) -> None:
        """Record the assessment made of `names` for this learner (see `assessment`) and print
        the score. Returns nothing, so a notebook shows no path of the learner's home."""
        attempts = [Attempt(n, self.passed.get(n, False), self.tries.get(n, 0)) for n in names]
        path, record = record_assessment(self.course, attempts, home)
        print(
            f"assessment {self.course}: {record['score']} of {record['total']} correct;"
            f" recorded in ~/{path.relative_to(path.parents[2])}"
        )
