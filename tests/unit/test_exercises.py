"""Course exercises: checked values and checked code, hints that get more specific, the solve
switch that proves the stored solutions and tests, and the recorded assessment."""

import json

import pytest

from factoryhub.courses.assessment import Attempt, assessment_path, assessment_record
from factoryhub.courses.exercises import Exercises, SolutionError

SOLUTIONS = '''
[energy]
answer = 24.0
tolerance = 0.1
hints = ["cores × W per core × hours × PUE", "4 × 10 W × 0.5 h × PUE", "× 1.2"]
solution = "4 × 10 W × 0.5 h × 1.2 = 24 Wh"

[reason]
answer = "Priority"
hint = "Which jobs go first?"
solution = "Priority: jobs with a higher priority are ahead of yours."

[double]
define = "double"
hints = ["return a number", "twice x", "x * 2"]
test = """
def test(double, factor):
    for x in (0, 1, 7):
        got = double(x)
        assert got == factor * x, f"double({x}) returned {got!r}, not {factor * x}"
"""
solution = """
def double(x):
    return 2 * x
"""
wrong = """
def double(x):
    return x + 2
"""
'''


@pytest.fixture
def exercises(tmp_path):
    def make(solve=False, text=SOLUTIONS):
        (tmp_path / "solutions.toml").write_text(text)
        return Exercises(tmp_path / "solutions.toml", solve=solve, course="demo-course")

    return make


def test_numbers_within_tolerance_and_text_ignoring_case(exercises, capsys):
    ex = exercises()
    assert ex.check("energy", 24.05) and not ex.check("energy", 30)
    assert ex.check("reason", " priority ") and not ex.check("reason", "Resources")
    assert not ex.check("energy", "24")  # a number is expected
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "energy: correct"
    assert out[1] == "energy: not yet (try 2). Hint: 4 × 10 W × 0.5 h × PUE"
    assert out[3] == "reason: not yet (try 2). Hint: Which jobs go first?"


def test_hints_get_more_specific_and_the_last_one_stays(exercises, capsys):
    ex = exercises()
    for wrong in (1.0, 2.0, 3.0, 4.0):
        assert not ex.check("energy", wrong)
    hints = [line.split("Hint: ")[1] for line in capsys.readouterr().out.splitlines()]
    assert hints == ["cores × W per core × hours × PUE", "4 × 10 W × 0.5 h × PUE", "× 1.2", "× 1.2"]


def test_an_empty_answer_is_not_a_try(exercises, capsys):
    ex = exercises()
    assert not ex.check("energy", None) and not ex.check("reason", "  ")
    assert ex.tries == {}
    assert capsys.readouterr().out.startswith("energy: not answered yet.")


def test_code_is_run_through_the_test_with_the_context(exercises, capsys):
    ex = exercises()
    assert not ex.check_code("double", lambda x: x + 2, factor=2)
    assert "double(0) returned 2, not 0" in capsys.readouterr().out
    assert not ex.check_code("double", lambda x: 1 / 0, factor=2)
    assert "your code raised ZeroDivisionError" in capsys.readouterr().out
    assert ex.check_code("double", lambda x: x * 2, factor=2)
    assert capsys.readouterr().out == "double: correct\n"
    assert ex.tries["double"] == 3 and ex.passed["double"]


def test_a_later_cell_goes_on_with_the_learners_code_only_once_it_passed(exercises, capsys):
    ex = exercises()

    def wrong(x):
        return x + 2

    def right(x):
        return x * 2

    assert ex.usable("double", right) is None  # not checked yet
    ex.check_code("double", wrong, factor=2)
    assert ex.usable("double", wrong) is None
    ex.check_code("double", right, factor=2)
    assert ex.usable("double", right) is right
    solved = exercises(solve=True).usable("double", wrong)
    assert solved is not wrong and solved(21) == 42  # the stored solution, not the learner's


def test_the_template_that_raises_not_implemented_is_not_answered(exercises, capsys):
    ex = exercises()

    def double(x):
        raise NotImplementedError("your code here")

    assert not ex.check_code("double", double, factor=2)
    assert "double: not answered yet" in capsys.readouterr().out
    assert "double" not in ex.tries


def test_solve_proves_the_stored_answers_solutions_and_tests(exercises, capsys):
    ex = exercises(solve=True)
    assert ex.check("energy", None) and ex.check("reason", None)
    assert ex.check_code("double", None, factor=2)  # the stored solution, through the test
    assert ex.solution("energy") == "4 × 10 W × 0.5 h × 1.2 = 24 Wh"
    with pytest.raises(SolutionError, match="stored solution fails its test"):
        ex.check_code("double", None, factor=3)
    with pytest.raises(SolutionError, match=r"stored answer 24\.0 is not correct"):
        ex.check("energy", None, expected=5)
    with pytest.raises(KeyError, match="no exercise 'nope'"):
        ex.check("nope", 1)


def test_solve_refuses_a_test_that_accepts_the_wrong_answer(exercises):
    lax = SOLUTIONS.replace("assert got == factor * x", "assert got is not None")
    with pytest.raises(SolutionError, match="accepts the stored wrong answer"):
        exercises(solve=True, text=lax).check_code("double", None, factor=2)


def test_the_assessment_is_recorded_in_the_learners_home(exercises, tmp_path, capsys):
    ex = exercises()
    ex.check("energy", 24.0)
    ex.check("reason", "Resources")
    assert ex.record(["energy", "reason", "double"], home=tmp_path) is None  # no path shown
    path = assessment_path("demo-course", tmp_path)
    assert path == tmp_path / ".factoryhub" / "assessments" / "demo-course.json"
    record = json.loads(path.read_text())
    assert (record["score"], record["total"], record["best_score"]) == (1, 3, 1)
    assert record["items"]["reason"] == {"correct": False, "tries": 1}
    assert record["items"]["double"] == {"correct": False, "tries": 0}
    assert path.stat().st_mode & 0o777 == 0o600
    assert "1 of 3 correct; recorded in ~/.factoryhub/assessments/demo-course.json" in (
        capsys.readouterr().out
    )
    worse = assessment_record("demo-course", [Attempt("energy", False, 2)], record)
    assert (worse["score"], worse["best_score"]) == (0, 1)


def test_an_assessment_needs_a_course_name(tmp_path):
    with pytest.raises(ValueError, match="not a course name"):
        assessment_path("../etc", tmp_path)


def test_a_check_is_a_truth_value_a_notebook_does_not_echo(exercises, capsys):
    ex = exercises()
    ok, not_ok = ex.check("energy", 24.0), ex.check("energy", 1.0)
    assert ok and not not_ok and ok == True and not_ok == False  # noqa: E712
    assert (repr(ok), repr(not_ok)) == ("True", "False")
    assert ok._ipython_display_() is None  # IPython shows nothing more for it
