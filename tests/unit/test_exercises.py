"""Course exercises: checked answers, hints, solutions, and the solve switch of validation."""

import pytest

from factoryhub.courses.exercises import Exercises

SOLUTIONS = """
[energy]
answer = 24.0
tolerance = 0.1
hint = "cores × W per core × hours × PUE"
solution = "4 × 10 W × 0.5 h × 1.2 = 24 Wh"

[reason]
answer = "Priority"
hint = "Which jobs go first?"
solution = "Priority: jobs with a higher priority are ahead of yours."
"""


@pytest.fixture
def exercises(tmp_path):
    (tmp_path / "solutions.toml").write_text(SOLUTIONS)
    return lambda solve=False: Exercises(tmp_path / "solutions.toml", solve=solve)


def test_numbers_within_tolerance_and_text_ignoring_case(exercises, capsys):
    ex = exercises()
    assert ex.check("energy", 24.05) and not ex.check("energy", 30)
    assert ex.check("reason", " priority ") and not ex.check("reason", "Resources")
    assert not ex.check("energy", "24")  # a number is expected
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "energy: correct"
    assert out[1] == "energy: not yet, hint: cores × W per core × hours × PUE"


def test_solve_proves_the_stored_answers_and_solutions_print(exercises, capsys):
    ex = exercises(solve=True)
    assert ex.check("energy", None) and ex.check("reason", None)
    assert ex.solution("energy") == "4 × 10 W × 0.5 h × 1.2 = 24 Wh"
    assert ex.check("energy", None, expected=24.0)
    with pytest.raises(KeyError, match="no exercise 'nope'"):
        ex.check("nope", 1)
