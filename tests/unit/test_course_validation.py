"""Validation pieces without Slurm: nbval's comparison rules, results, reports, job scripts."""

import json
from xml.etree import ElementTree as ET

import nbformat
from coursekit import broken_course, good_course

from factoryhub.course import load_course
from factoryhub.courses.execute import CellResult, NotebookResult, compare_cells
from factoryhub.courses.outputs import OutputComparison, cell_options
from factoryhub.courses.reports import html_report, junit_xml
from factoryhub.courses.validate import Target, plan, result_of, validation_script


def stream(text):
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def test_nbval_rules_compare_sanitise_and_coalesce():
    comparison = OutputComparison({r"\d+\.\d+ s": "T s"})
    assert comparison.differences(stream("took 1.25 s\n"), stream("took 9.99 s\n")) == ""
    assert comparison.differences(stream("a\n") + stream("b\n"), stream("a\nb\n")) == ""
    diff = comparison.differences(stream("2\n"), stream("3\n"))
    assert "the reference has" in diff and "3" in diff and "2" in diff


def test_cell_markers_and_tags_follow_nbval():
    assert cell_options({"source": "# NBVAL_IGNORE_OUTPUT\nx"}, True)["check"] is False
    assert cell_options({"source": "x", "metadata": {"tags": ["nbval-skip"]}}, True)["skip"]
    assert cell_options({"source": "# NBVAL_CHECK_OUTPUT\nx"}, False)["check"] is True
    assert cell_options({"source": "x"}, False)["check"] is False


def test_compare_cells_marks_passed_failed_unchecked_and_not_run(tmp_path):
    course = load_course(good_course(tmp_path))
    reference = nbformat.read(course.path / "02-data.ipynb", as_version=4)
    executed = json.loads(json.dumps(reference))["cells"]
    done = {"papermill": {"status": "completed", "duration": 0.5}}
    for cell in executed:
        cell["metadata"] = {**cell["metadata"], **done}
    executed[2]["outputs"] = stream("123.4\n")  # tagged nbval-ignore-output: not compared
    results = compare_cells(reference, executed, course)
    assert [(c.index, c.status) for c in results] == [(1, "passed"), (2, "unchecked")]
    executed[1]["outputs"] = stream("0.5\n")
    executed[2]["metadata"]["papermill"] = {"status": "pending"}
    results = compare_cells(reference, executed, course)
    assert [(c.index, c.status) for c in results] == [(1, "failed"), (2, "not-run")]


def test_result_round_trip_and_a_job_that_left_none(tmp_path):
    course = load_course(good_course(tmp_path))
    target = Target(course, "01-sum.ipynb", tmp_path / "run" / "01-sum")
    log = "slurmstepd: error: *** JOB 9 CANCELLED DUE TO TIME LIMIT ***"
    missing = result_of(target, "TIMEOUT", None, log)
    assert missing.status == "failed" and "ended TIMEOUT" in missing.message
    assert "TIME LIMIT" in missing.message
    result = NotebookResult("c", "n.ipynb", "passed", 1.5, cells=[CellResult(1, "passed", 0.2)])
    assert result_of(target, "", result.to_json()) == result


def test_validation_job_script_uses_the_course_preset(demo_site, tmp_path):
    course = load_course(good_course(tmp_path))
    targets = plan([course], tmp_path / "run")
    assert [t.label for t in targets] == ["good-course/01-sum.ipynb", "good-course/02-data.ipynb"]
    script = validation_script(targets[0], demo_site, "trainer")
    assert "#SBATCH --job-name=fh-validate-good-course" in script
    assert "#SBATCH --partition=cpu" in script and "#SBATCH --time=00:05:00" in script
    assert "#SBATCH --mem=1G" in script
    assert script.rstrip().endswith(
        f"-m factoryhub.courses.execute {tmp_path}/run/sources/good-course 01-sum.ipynb"
        f" {tmp_path}/run/good-course/01-sum {tmp_path}/run/good-course/01-sum.result.json"
    )


def test_reports_have_every_notebook_and_the_failing_traceback(demo_site, tmp_path):
    course = load_course(broken_course(tmp_path))
    results = [
        NotebookResult(
            "broken-course", "fine.ipynb", "passed", 1.0, cells=[CellResult(1, "passed")]
        ),
        NotebookResult(
            "broken-course",
            "error-cell.ipynb",
            "failed",
            2.0,
            "error in cell 2: ValueError",
            cells=[CellResult(2, "error", 0.1, "ValueError: <boom>", "Traceback: line 1")],
        ),
    ]
    suite = ET.fromstring(junit_xml(results)).find("testsuite")  # noqa: S314 (our own XML)
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='error-cell.ipynb']/failure")
    assert "Traceback: line 1" in failure.text
    page = html_report(results, {course.name: course}, demo_site.energy)
    assert "1 of 2 notebooks passed" in page
    assert "ValueError: &lt;boom&gt;" in page and "<boom>" not in page
    assert "Wh" in page and "cpu: 1 CPU, 1 GB" in page


def test_record_stores_only_compared_outputs_of_the_learners_run():
    from factoryhub.courses.execute import learner_parameters
    from factoryhub.courses.validate import recorded_outputs

    run = nbformat.v4.new_code_cell("print(1)", execution_count=3, outputs=stream("1\n"))
    compared = nbformat.v4.new_code_cell("print(1)")
    ignored = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(job_id)")
    skipped = nbformat.v4.new_code_cell("x", metadata={"tags": ["nbval-skip"]})
    assert recorded_outputs(compared, run, True) == (stream("1\n"), 3)
    assert recorded_outputs(ignored, run, True) == ([], None)
    assert recorded_outputs(skipped, run, True) == ([], None)
    assert recorded_outputs(compared, run, False) == ([], None)
    assert learner_parameters({"n": 2, "solve": True}) == {"n": 2, "solve": False}
    assert learner_parameters({"n": 2}) is None


def test_a_run_that_was_cancelled_is_not_recorded(tmp_path, monkeypatch):
    """`--record` after a validation job was cancelled mid-run: no cell results came back, and
    the partial notebook papermill left is not made the reference (it printed "recorded")."""
    from types import SimpleNamespace

    import nbformat

    from factoryhub.courses import validate
    from factoryhub.courses.execute import NotebookResult

    notebook = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    monkeypatch.setattr(validate, "read_as", lambda user, path, limit: notebook.encode())
    replaced = []
    monkeypatch.setattr(validate, "replace_file", lambda *args: replaced.append(args))
    course = SimpleNamespace(path=tmp_path, validation=SimpleNamespace(compare_outputs=True))
    target = SimpleNamespace(
        workdir=tmp_path, notebook="01-x.ipynb", label="c/01-x.ipynb", course=course
    )
    source = SimpleNamespace(files={"01-x.ipynb": notebook.encode()})
    result = NotebookResult("c", "01-x.ipynb", "failed", 3.0, "job 7 was CANCELLED")
    said = validate.record_outputs(target, result, "nobody", source)
    assert said.startswith("not recorded: c/01-x.ipynb did not run through")
    assert replaced == []
