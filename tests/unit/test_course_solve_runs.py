"""Validation of a notebook with exercises, run for real (papermill and a kernel, no Slurm): the
learner's run is compared with the stored, unsolved outputs, and the run with the solutions must
go through, so a stored solution that fails its own test fails validation in its cell."""

import nbformat
from coursekit import notebook, printed, write_course

from factoryhub.course import load_course
from factoryhub.courses.execute import validate_notebook

SOLUTIONS = """
[double]
define = "double"
hints = ["twice x"]
test = '''
def test(double):
    for x in (0, 3):
        assert double(x) == 2 * x, f"double({x}) returned {double(x)!r}"
'''
solution = '''
def double(x):
    return SOLVED
'''
wrong = '''
def double(x):
    return x + 3
'''
"""

UNSOLVED = "double: not answered yet. Write your answer above, then run this cell again.\n"


def exercise_course(tmp_path, solution: str):
    cells = notebook(
        nbformat.v4.new_code_cell("solve = False", metadata={"tags": ["parameters"]}),
        printed(
            "from factoryhub.courses.exercises import Exercises\n\n"
            'ex = Exercises("solutions.toml", solve=solve, course="solve-course")\n\n\n'
            "def double(x):\n"
            '    raise NotImplementedError("your code here")\n\n\n'
            'ex.check_code("double", double)',
            UNSOLVED,
            2,
        ),
    )
    folder = write_course(
        tmp_path, "solve-course", {"ex.ipynb": cells}, "parameters = { solve = true }\n"
    )
    (folder / "solutions.toml").write_text(SOLUTIONS.replace("SOLVED", solution))
    return load_course(folder)


def test_the_learners_run_is_compared_and_the_solved_run_proves_the_solution(tmp_path):
    result = validate_notebook(exercise_course(tmp_path, "2 * x"), "ex.ipynb", tmp_path / "run")
    assert result.status == "passed", result.message
    assert [(c.index, c.status) for c in result.cells] == [(1, "unchecked"), (2, "passed")]
    solved = (tmp_path / "run.solved" / "ex.solved.ipynb").read_text()
    assert "double: correct" in solved  # the second run used the stored solution


def test_a_stored_solution_that_fails_its_test_fails_validation_in_its_cell(tmp_path):
    result = validate_notebook(exercise_course(tmp_path, "x * x"), "ex.ipynb", tmp_path / "run")
    assert result.status == "failed"
    assert result.message.startswith("with the solutions: error in cell 2: SolutionError:")
    assert "double(3) returned 9" in result.message
    cell = next(c for c in result.cells if c.index == 2)
    assert cell.status == "error" and "the stored solution fails its test" in cell.message
