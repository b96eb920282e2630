"""The course format: parsing, errors that name the key and line, static checks, scaffold."""

from pathlib import Path

import nbformat
import pytest
from coursekit import broken_course, course_toml, good_course, notebook, printed, write_course

from factoryhub.course import CourseError, load_course, parse_course
from factoryhub.courses.check import check_course
from factoryhub.courses.scaffold import new_course

GOOD = course_toml("x", ["a.ipynb"])


def test_good_course_reads_into_the_model(tmp_path):
    course = load_course(good_course(tmp_path))
    assert course.name == "good-course" and course.level == "beginner"
    assert course.notebooks == ("01-sum.ipynb", "02-data.ipynb")
    assert course.validation.parameters_for("01-sum.ipynb") == {"n": 3}
    assert course.validation.cell_timeout == 60
    assert course.resources.to_options("default")["partition"] == "cpu"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('level = "beginner"', 'level = "expert"'),
            r"course.toml:5: course.level: 'expert' is not one of beginner, intermediate, advanced",
        ),
        (
            ("cpus = 1", "cpuz = 1"),
            r"course.toml:12: resources.cpuz: unknown key"
            r" \(allowed here: cpus, gpus, memory_gb, partition, walltime\)",
        ),
        (
            ("cpus = 1", 'cpus = "one"'),
            r"course.toml:12: resources.cpus: expected int, got str 'one'",
        ),
        (('summary = "s"\n', ""), r"course.toml:1: \[course\]: missing key 'summary'"),
        (
            ('walltime = "00:30:00"', 'walltime = "half an hour"'),
            r"course.toml:14: resources.walltime: 'half an hour' is not a time",
        ),
        (
            ('notebooks = ["a.ipynb"]', 'notebooks = ["../a.ipynb"]'),
            r"course.notebooks: list the course's .ipynb files",
        ),
        (
            ("[validation]", "[validate]"),
            r"\[validate\]: unknown table \(allowed: course, resources, validation\)",
        ),
        (("[course]", "[course"), r"not valid TOML"),
    ],
)
def test_malformed_course_toml_says_which_key_which_line_what_is_allowed(change, message):
    text = GOOD.replace(*change)
    with pytest.raises(CourseError, match=message):
        parse_course(text, Path("/courses/x"))


def test_folder_without_course_toml(tmp_path):
    with pytest.raises(CourseError, match=r"no course\.toml"):
        load_course(tmp_path)


def test_checks_pass_on_a_good_course_and_the_scaffold(tmp_path):
    assert check_course(good_course(tmp_path)) == []
    assert check_course(new_course(tmp_path / "notebooks", "my-first-course")) == []
    with pytest.raises(CourseError, match="exists already"):
        new_course(tmp_path / "notebooks", "my-first-course")
    with pytest.raises(CourseError, match="a course name uses"):
        new_course(tmp_path / "notebooks", "Bad Name")


def test_checks_find_paths_network_kernels_outputs_and_strays(tmp_path):
    bad = notebook(
        printed("open('/home/alice/data.csv')", "x\n", 1),
        printed("import urllib.request\nurllib.request.urlopen('https://example.org')", "y\n", 2),
    )
    bad.metadata.kernelspec = {"name": "julia-1.9", "display_name": "Julia"}
    folder = write_course(tmp_path, "bad-course", {"a.ipynb": bad}, "parameters = { n = 1 }\n")
    nbformat.write(notebook(), folder / "stray.ipynb")
    text = "\n".join(map(str, check_course(folder)))
    assert "absolute path" in text
    assert "reaches the network ('urllib.request')" in text
    assert "kernelspec is 'julia-1.9'" in text
    assert "no cell tagged 'parameters'" in text
    assert "stray.ipynb: is not listed" in text


def test_checks_report_stored_errors_and_missing_notebooks(tmp_path):
    folder = broken_course(tmp_path)
    nb = nbformat.read(folder / "fine.ipynb", as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="E", evalue="v", traceback=[])]
    nbformat.write(nb, folder / "fine.ipynb")
    (folder / "wrong-output.ipynb").unlink()
    text = "\n".join(map(str, check_course(folder)))
    assert "fine.ipynb cell 1: stores an error output" in text
    assert "wrong-output.ipynb: is listed in course.toml but does not exist" in text


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("#SBATCH -e /home/trainer/.factoryhub/jobs/x.err\n", "a home path"),
        ("#SBATCH -A training\n", "an account name"),
        ("sbatch --account=ai-research job.sh\n", "an account name"),
        ("--tls-key /tmp/dask/.dask-jobqueue.worker.key.rl1b1qnk\n", "a key or certificate"),
        ("/opt/factoryhub/venv/bin/python -m distributed.cli.dask_worker\n", "installation path"),
        ('  File "/usr/lib/python3/dist-packages/numpy/core.py"\n', "installation path"),
        ("JUPYTERHUB_API_TOKEN=0123456789abcdef0123456789abcdef\n", "a token or secret"),
        ("http://node:8888/lab?token=3f1c2d4e5f6a7b8c\n", "a token or secret"),
    ],
)
def test_checks_refuse_private_information_in_stored_outputs(tmp_path, text, what):
    nb = notebook(printed("print(something)", text, 1))
    folder = write_course(tmp_path, "leaky-course", {"a.ipynb": nb})
    problems = [str(p) for p in check_course(folder)]
    assert len(problems) == 1 and problems[0].startswith("a.ipynb cell 1: a stored output shows")
    assert what in problems[0] and "clear that output" in problems[0]


def test_ordinary_results_are_not_taken_for_private_information(tmp_path):
    ordinary = (
        '"data_sha256": "20def7f70a702f0af9732fbba4375e147a7d54fe70d8c45569b8e7c1c7010c10"\n'
        "accuracy 0.961 on 540 images; partition cpu, 2 CPUs; token budget 4096\n"
        "wrote data/readings-0.parquet; see ~/.factoryhub/assessments/first-steps.json\n"
    )
    nb = notebook(printed("print(results)", ordinary, 1))
    assert check_course(write_course(tmp_path, "fine-course", {"a.ipynb": nb})) == []


def test_the_effort_of_a_course_counts_reading_cells_exercises_and_questions():
    from factoryhub.courses.effort import estimate_effort

    nb = notebook(
        nbformat.v4.new_markdown_cell(" ".join(["word"] * 240)),
        nbformat.v4.new_code_cell("ex.check_code('f', f)"),
        nbformat.v4.new_code_cell("ex.record(['q1', \"q2\"])"),
    )
    solutions = {"f": {"test": "..."}, "v": {"answer": 1}, "q1": {"answer": 2}, "q2": {"answer": 3}}
    effort = estimate_effort([nb], solutions)
    assert (effort.code_exercises, effort.value_exercises, effort.questions) == (1, 1, 2)
    assert (effort.prose_words, effort.code_cells) == (242, 2)  # with the title's two words
    code_minutes = effort.code_words / 60 + 2 * 0.5
    assert effort.minutes == pytest.approx(242 / 120 + code_minutes + 8 + 2 + 3)


def test_checks_refuse_stored_outputs_of_a_solved_exercise(tmp_path):
    solved = notebook(printed("ex.check('energy', answer)", "energy: correct\n", 1))
    problems = [str(p) for p in check_course(write_course(tmp_path, "solved", {"a.ipynb": solved}))]
    assert problems == [
        "a.ipynb cell 1: a stored output shows a solved exercise ('energy: correct'): learners"
        " must open the unsolved state; record the outputs again (`course validate --record`"
        " stores the run without solutions)"
    ]
    unsolved = notebook(
        printed("ex.check('energy', answer)", "energy: not answered yet. Write your answer\n", 1),
        printed("print(verdict)", "the model is correct: 97 %\n", 2),
    )
    assert check_course(write_course(tmp_path, "unsolved", {"a.ipynb": unsolved})) == []
