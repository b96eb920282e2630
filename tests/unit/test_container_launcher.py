"""The argv a container environment's session runs under, against each runtime's documented
command line: Apptainer's `apptainer exec [exec options...] <container> <command>`, Podman's
`podman run [options] image [command [arg ...]]` (with `--rootfs`, the first argument is an
exploded root file system, not an image). `podman exec` runs in a container that already runs,
so it is never what a session is started with."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from factoryhub.handshake import READY_FD_ENV
from factoryhub.software import (
    PODMAN_GUARD,
    SoftwareError,
    SoftwareSettings,
    container_launcher,
    runtime_kind,
)


def test_apptainer_execs_the_image_with_the_sites_options():
    software = SoftwareSettings(container_runtime="/usr/bin/apptainer", container_options=("--nv",))
    assert container_launcher(software, "/srv/images/pt.sif") == (
        "/usr/bin/apptainer",
        "exec",
        "--nv",
        "/srv/images/pt.sif",
    )


def test_singularity_is_run_as_apptainer_is():
    software = SoftwareSettings(container_runtime="/usr/local/bin/singularity")
    assert container_launcher(software, "docker://ghcr.io/x/y:1")[1:] == (
        "exec",
        "docker://ghcr.io/x/y:1",
    )


PODMAN = SoftwareSettings(
    container_runtime="/usr/bin/podman", container_options=("--volume=/home:/home",)
)


def test_podman_runs_a_new_container_that_is_removed_when_the_server_ends():
    argv = container_launcher(PODMAN, "/opt/factoryhub/images/demo.rootfs")
    assert argv[:6] == (
        "/bin/bash",
        "--noprofile",
        "--norc",
        "-c",
        PODMAN_GUARD,
        "factoryhub-podman",
    )
    assert argv[6:10] == ("/usr/bin/podman", "run", "--rm", "--init")
    assert "exec" not in argv
    assert argv[-3:] == ("--volume=/home:/home", "--rootfs", "/opt/factoryhub/images/demo.rootfs")


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ("--network=host", "the hub connects to the port the server reports, on the node"),
        ("--userns=keep-id", "the learner's own uid: files written in the home are theirs"),
        ("--passwd=false", "the image's /etc/passwd is not written (a read-only root fs)"),
        ("--env-host", "JupyterHub's variables and SLURM_JOB_ID reach the server"),
        (f"--env={READY_FD_ENV}=", "the hub's descriptor number does not cross"),
        ("--env=JUPYTERHUB_ROOT_DIR=~", "the server's root is the home, not the image's /"),
    ],
)
def test_podman_gets_what_a_session_needs(option, why):
    argv = container_launcher(PODMAN, "/opt/factoryhub/images/demo.rootfs")
    assert option in argv[: argv.index("--volume=/home:/home")], why


def test_an_image_podman_already_has_is_named_without_rootfs():
    argv = container_launcher(PODMAN, "docker://registry.example.org/lab:2026")
    assert argv[-1] == "docker://registry.example.org/lab:2026"
    assert "--rootfs" not in argv


def test_the_launcher_survives_the_job_scripts_quoting():
    """The script runs `exec <launcher> <server…>` through bash: each argument comes back
    exactly, `~` included (expanded by jupyterhub-singleuser, not by the shell)."""
    argv = container_launcher(PODMAN, "/opt/factoryhub/images/demo.rootfs")
    assert tuple(shlex.split(shlex.join(argv))) == argv


@pytest.mark.parametrize("runtime", ["/usr/bin/podman", "/usr/local/bin/podman"])
def test_podman_is_told_by_its_name(runtime):
    assert runtime_kind(runtime) == "podman"
    assert runtime_kind("/usr/bin/apptainer") == "apptainer"


def test_no_runtime_no_image():
    with pytest.raises(SoftwareError, match="cannot be run on this site"):
        container_launcher(SoftwareSettings(), "/srv/x.sif")
    assert container_launcher(PODMAN, "") == ()


# A stand-in for podman's command line, for the guard's own behaviour: it writes each call to
# calls.log; `run` writes its pid and sleeps (ignoring SIGTERM when told to, as a `podman run`
# that never passes the signal on), `stop NAME` ends that sleep as Podman would end the container,
# and `run` exits with the status in run-status.
FAKE_PODMAN = """#!/bin/bash
here=$(dirname "$0")
echo "$*" >> "$here/calls.log"
case $1 in
  run)
    [ -e "$here/deaf" ] && trap '' TERM
    echo $$ > "$here/run.pid"
    [ -e "$here/run-status" ] && exit "$(cat "$here/run-status")"
    sleep 60 & wait $!
    exit 143 ;;
  stop) kill -KILL "$(cat "$here/run.pid")" ;;
esac
"""


def _guarded(tmp_path: Path, *command: str) -> tuple[str, ...]:
    runtime = tmp_path / "podman"
    runtime.write_text(FAKE_PODMAN)
    runtime.chmod(0o755)
    software = SoftwareSettings(container_runtime=str(runtime))
    return (*container_launcher(software, "/srv/images/lab.rootfs"), *command)


def _calls(tmp_path: Path) -> list[list[str]]:
    return [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]


def _name_of_run(call: list[str]) -> str:
    (name,) = [a.split("=", 1)[1] for a in call if a.startswith("--name=")]
    return name


def test_the_guard_names_the_container_removes_it_and_exits_with_podmans_status(tmp_path):
    (tmp_path / "run-status").write_text("7")
    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0"}
    done = subprocess.run(_guarded(tmp_path, "python", "-m", "lab"), env=env, timeout=30)
    assert done.returncode == 7
    run, rm = _calls(tmp_path)
    assert run[0] == "run" and run[1].startswith("--name=factoryhub-4242.0-")
    assert "--rm" in run and run[-5:] == [
        "--rootfs",
        "/srv/images/lab.rootfs",
        "python",
        "-m",
        "lab",
    ]
    assert rm == ["rm", "--force", "--ignore", "--time=1", _name_of_run(run)]


def _started(tmp_path: Path) -> subprocess.Popen:
    guard = subprocess.Popen(_guarded(tmp_path, "sleep", "600"), start_new_session=True)
    deadline = time.monotonic() + 10
    while not (tmp_path / "run.pid").exists():
        assert time.monotonic() < deadline, "the guard never ran podman"
        time.sleep(0.05)
    return guard


def test_a_signal_to_the_guard_stops_a_container_podman_did_not_pass_it_to(tmp_path):
    """Slurm's SIGTERM reaches the guard; a `podman run` that does not pass it on (here: deaf
    to it) would leave the container running: the guard stops it by name, then removes it."""
    (tmp_path / "deaf").touch()
    guard = _started(tmp_path)
    guard.send_signal(signal.SIGTERM)
    guard.wait(timeout=30)
    run, stop, rm = _calls(tmp_path)
    name = _name_of_run(run)
    assert stop == ["stop", "--ignore", "--time=3", name]
    assert rm[:1] == ["rm"] and rm[-1] == name


def test_a_podman_killed_with_the_job_still_has_its_container_removed(tmp_path):
    """Slurm signals every process of the step: `podman run` dies at once, conmon's container
    would live on; the guard removes it by name."""
    guard = _started(tmp_path)
    os.killpg(guard.pid, signal.SIGTERM)
    guard.wait(timeout=30)
    run, *rest = _calls(tmp_path)
    assert rest[-1] == ["rm", "--force", "--ignore", "--time=1", _name_of_run(run)]
