import pytest

from factoryhub.jobscript import (
    SessionJob,
    render_job_script,
    render_step_script,
    salloc_options,
    step_options,
)
from factoryhub.request import parse_request

GOLDEN = """#!/bin/bash
#SBATCH --job-name=fh:demo:alice:gpu-lab
#SBATCH --partition=gpu
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --gres=gpu:h100:2
#SBATCH --account=training
#SBATCH --qos=normal
#SBATCH --output=/dev/null
#SBATCH --export=ALL
# The session's output goes to the learner's own log file, written as the learner;
# what the session writes (the log, notebooks) is readable by the learner alone.
umask 077
mkdir -p "$HOME/.factoryhub/logs"
exec >>"$HOME/.factoryhub/logs/session-$SLURM_JOB_ID.log" 2>&1
echo "FactoryHub session: job $SLURM_JOB_ID on $(hostname) as $(id -un)"
# Slurm's walltime warning (SIGUSR1) is ignored until the server installs its handler.
trap '' USR1
exec /opt/env/bin/jupyterhub-singleuser '--ServerApp.default_url=/lab?a=1&b=2'
"""


def _job(demo_site, **changes):
    req = parse_request(
        {"partition": "gpu", "cpus": 4, "memory_gb": 16, "gpus": 2, "walltime": "02:00:00"},
        demo_site,
    )
    fields = dict(
        request=req,
        job_name="fh:demo:alice:gpu-lab",
        command=("/opt/env/bin/jupyterhub-singleuser", "--ServerApp.default_url=/lab?a=1&b=2"),
        log_dir=".factoryhub/logs",
    )
    fields.update(changes)
    return SessionJob(**fields)


def test_golden_script(demo_site):
    assert render_job_script(_job(demo_site)) == GOLDEN


def test_cpu_session_has_no_gres_and_a_signal_slot(demo_site):
    req = parse_request({}, demo_site)
    script = render_job_script(_job(demo_site, request=req, signal="B:USR1@300"))
    assert "--gres" not in script
    assert "#SBATCH --signal=B:USR1@300\n" in script
    assert "#SBATCH --time=01:00:00\n" in script


def test_token_never_in_script(demo_site):
    assert "TOKEN" not in render_job_script(_job(demo_site)).upper()


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"job_name": "fh:x\n#SBATCH --uid=0"}, "job name"),
        ({"job_name": "a b"}, "job name"),
        ({"log_dir": "logs; rm -rf /"}, "log directory"),
        ({"log_dir": "$(id)"}, "log directory"),
        ({"signal": "B:KILL@1"}, "signal"),
    ],
)
def test_unsafe_values_never_reach_the_script(demo_site, changes, what):
    with pytest.raises(ValueError, match=what):
        render_job_script(_job(demo_site, **changes))


def test_command_words_are_quoted(demo_site):
    script = render_job_script(_job(demo_site, command=("/x/bin/server", "--name=$(reboot)")))
    assert "exec /x/bin/server '--name=$(reboot)'" in script


def test_an_immediate_allocation_is_never_signalled_and_its_step_ends_it(demo_site):
    job = _job(demo_site, signal="B:USR1@300")
    options = salloc_options(job)
    # No batch shell: Slurm would signal every process of the step, kernels included.
    assert not any(o.startswith(("--signal", "--output")) for o in options)
    script = render_step_script(job, "/usr/bin/scancel")
    assert not script.startswith("#!") and "#SBATCH" not in script
    lines = script.splitlines()
    assert lines[-1] == 'exec /usr/bin/scancel "$SLURM_JOB_ID"'  # when the server exits
    # the server is the shell's child until it is gone: Slurm's SIGTERM is passed on, not fatal
    trap = lines.index("trap 'kill -TERM \"$server\" 2>/dev/null' TERM INT HUP")
    (started,) = [i for i, line in enumerate(lines) if line.endswith(" &")]
    assert trap < started and lines[started + 1] == "server=$!"
    assert 'while kill -0 "$server" 2>/dev/null; do wait "$server"; status=$?; done' in lines
    assert "--cpus-per-task=" + str(job.request.cpus) in step_options(job)
    with pytest.raises(ValueError, match="scancel path"):
        render_step_script(job, "/usr/bin/scancel; reboot")
