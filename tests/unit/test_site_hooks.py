"""The site's hooks in every kind of job FactoryHub submits (issue 14): extra directives from
an allow-list, a prologue per environment, and nothing a site.toml could smuggle past them."""

import dataclasses
import json
from pathlib import Path

import pytest
from coursekit import good_course

from factoryhub.course import load_course
from factoryhub.courses.validate import plan, validation_script
from factoryhub.jobscript import SessionJob, render_job_script, render_step_script, salloc_options
from factoryhub.request import parse_request
from factoryhub.site import SiteError, parse_site
from factoryhub.sitehooks import HookError, SiteHooks, check_extra_directive
from factoryhub.widgets.batch import BatchJob, parse_run, render_batch_script

REPO = Path(__file__).resolve().parents[2]
HOOKS = SiteHooks(("--constraint=h100&ib",), ("module load cuda/12.2", "export OMP_NUM_THREADS=4"))


@pytest.fixture
def site(demo_site):
    env = demo_site.environments[demo_site.session.environment]
    environments = {
        **demo_site.environments,
        demo_site.session.environment: dataclasses.replace(env, prologue=HOOKS.prologue),
    }
    slurm = dataclasses.replace(demo_site.slurm, extra_directives=HOOKS.extra_directives)
    return dataclasses.replace(demo_site, slurm=slurm, environments=environments)


def _session(site) -> SessionJob:
    request = parse_request({"partition": "cpu"}, site)
    return SessionJob(
        request=request,
        job_name="fh:demo:alice:",
        command=("/opt/env/bin/jupyterhub-singleuser",),
        log_dir=".factoryhub/logs",
        hooks=HOOKS,
    )


def _assert_hooks_in(script: str) -> None:
    lines = script.splitlines()
    assert "#SBATCH --constraint=h100&ib" in lines
    last_directive = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    module = lines.index("module load cuda/12.2")
    command = next(i for i, line in enumerate(lines) if line.startswith("exec /"))
    assert last_directive < module < command  # after the header, before the command


def test_a_session_batch_job_carries_the_hooks(site):
    _assert_hooks_in(render_job_script(_session(site)))


def test_an_immediate_session_carries_the_hooks(site):
    job = _session(site)
    assert "--constraint=h100&ib" in salloc_options(job)
    script = render_step_script(job, "/usr/bin/scancel").splitlines()
    server = next(i for i, line in enumerate(script) if line.startswith("/opt/env/bin/jupyter"))
    assert script.index("module load cuda/12.2") < server
    assert script.index("umask 077") < script.index("module load cuda/12.2")  # logged as theirs


def test_a_widget_batch_job_carries_the_hooks(site, tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    request = parse_request({"partition": "gpu", "gpus": 1}, site)
    job = BatchJob(request, parse_run("train.py", "", tmp_path), "/opt/venv", hooks=HOOKS)
    _assert_hooks_in(render_batch_script(job))


def test_a_validation_job_carries_the_hooks(site, tmp_path):
    targets = plan([load_course(good_course(tmp_path))], tmp_path / "run")
    assert site.environments[targets[0].course.environment].prologue == HOOKS.prologue
    _assert_hooks_in(validation_script(targets[0], site, "trainer"))


@pytest.mark.parametrize(
    "directive",
    [
        "--partition=gpu",  # FactoryHub's own
        "--time=99:00:00",
        "--comment=fhport:1",
        "--output=/etc/passwd",
        "--uid=0",
        "--constraint=a\n#SBATCH --uid=0",
        "--constraint=$(id)",
        "--constraint=a b",
        "-C h100",
    ],
)
def test_directives_outside_the_allow_list_are_refused(directive):
    with pytest.raises(HookError):
        check_extra_directive(directive)


def _site_text(extra: str) -> str:
    return (REPO / "hub_config" / "site.toml").read_text() + extra


def test_site_toml_refuses_a_bad_hook_naming_it():
    with pytest.raises(SiteError, match=r"slurm\.extra_directives"):
        parse_site(_site_text("").replace("[slurm]", '[slurm]\nextra_directives = ["--uid=0"]', 1))
    bad_prologue = json.dumps("module load x\nrm -rf /")
    text = _site_text("").replace(
        'prefix = "/opt/factoryhub/venv"',
        f'prefix = "/opt/factoryhub/venv"\nprologue = [{bad_prologue}]',
        1,
    )
    with pytest.raises(SiteError, match="prologue"):
        parse_site(text)


def test_job_script_prints_a_session_with_the_hooks_without_submitting(tmp_path, capsys):
    from factoryhub.cli.main import main

    text = (REPO / "hub_config" / "site.toml").read_text()
    text = text.replace("[slurm]", '[slurm]\nextra_directives = ["--constraint=h100&ib"]', 1)
    (tmp_path / "site.toml").write_text(text)
    argv = ["job-script", "session", "--user", "alice", "--site", str(tmp_path / "site.toml")]
    assert main([*argv, "--options", '{"partition": "gpu", "gpus": 1}']) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --gres=gpu:h100:1" in script and "#SBATCH --constraint=h100&ib" in script
    assert main([*argv, "--options", '{"walltime": "1:30"}']) == 2
    assert capsys.readouterr().out.count("\n") == 1  # one sentence, no traceback
