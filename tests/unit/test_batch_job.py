"""A learner's batch job from the GPU widget: what to run is checked, the script is fixed slots."""

import json

import pytest

from factoryhub.request import RequestError, parse_request
from factoryhub.widgets.batch import BatchJob, parse_parameters, parse_run, render_batch_script


@pytest.fixture
def home(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "train.ipynb").write_text(json.dumps({"cells": []}))
    return tmp_path


def test_gpu_script_job_script_is_golden(demo_site, home):
    request = parse_request({"partition": "gpu", "gpus": 2, "cpus": 4}, demo_site)
    run = parse_run("train.py", "", home)
    script = render_batch_script(BatchJob(request, run, "/opt/factoryhub/venv"))
    assert script.splitlines()[:12] == [
        "#!/bin/bash",
        "#SBATCH --job-name=fh-batch-train",
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=2G",
        "#SBATCH --time=01:00:00",
        "#SBATCH --gres=gpu:h100:2",
        "#SBATCH --account=training",
        "#SBATCH --qos=normal",
        "#SBATCH --output=.factoryhub/jobs/%x-%j.out",
    ]
    assert script.rstrip().endswith("exec /opt/factoryhub/venv/bin/python train.py")


def test_notebook_runs_under_papermill_with_a_parameter_file(demo_site, home):
    request = parse_request({"partition": "cpu"}, demo_site)
    run = parse_run("nb/train.ipynb", '{"epochs": 2, "lr": 0.1}', home)
    assert run.parameters == {"epochs": 2, "lr": 0.1}
    job = BatchJob(request, run, "/p", params_file=".factoryhub/jobs/p.json")
    script = render_batch_script(job)
    last = script.rstrip().splitlines()[-1]
    assert last.startswith("exec /p/bin/papermill --log-output nb/train.ipynb")
    assert '".factoryhub/jobs/train-output-$SLURM_JOB_ID.ipynb"' in last
    assert last.endswith("-f .factoryhub/jobs/p.json")
    assert "epochs" not in script  # parameters never enter the script


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "give the path"),
        ("../etc/passwd.py", "inside your home"),
        ("/etc/x.py", "inside your home"),
        ("a b.py", "inside your home"),
        ("x.py; rm -rf ~", "inside your home"),
        ("$(id).py", "inside your home"),
        ("train.txt", "is not a"),
        ("missing.py", "does not exist"),
    ],
)
def test_bad_run_paths_are_refused_with_a_reason(home, path, message):
    with pytest.raises(RequestError, match=message) as info:
        parse_run(path, "", home)
    assert info.value.field == "run"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected an object"),
        ("{not json", "not JSON"),
        ('{"a-b": 1}', "not a Python name"),
        ('{"x": [1]}', "must be a number"),
        ('{"x": "' + "a" * 3000 + '"}', "at most 2048 bytes"),
    ],
)
def test_bad_parameters_are_refused(text, message):
    with pytest.raises(RequestError, match=message):
        parse_parameters(text)


def test_parameters_only_for_notebooks(home):
    with pytest.raises(RequestError, match="only a notebook"):
        parse_run("train.py", '{"epochs": 1}', home)


def test_an_unsafe_prefix_never_reaches_a_script(demo_site, home):
    request = parse_request({}, demo_site)
    with pytest.raises(ValueError, match="cannot go in a job script"):
        render_batch_script(BatchJob(request, parse_run("train.py", "", home), "/opt/x;id"))
