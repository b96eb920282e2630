"""The argv a container environment's session runs under, against each runtime's documented
command line: Apptainer's `apptainer exec [exec options...] <container> <command>`, Podman's
`podman run [options] image [command [arg ...]]` (with `--rootfs`, the first argument is an
exploded root file system, not an image). `podman exec` runs in a container that already runs,
so it is never what a session is started with."""

from __future__ import annotations

import shlex

import pytest

from factoryhub.handshake import READY_FD_ENV
from factoryhub.software import (
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
    assert argv[:4] == ("/usr/bin/podman", "run", "--rm", "--init")
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
