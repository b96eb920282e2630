"""A container environment (site.toml `image`, `[software] container_runtime`) on the real
Slurm, with rootless Podman where it is installed (Debian's podman, uidmap, runc; not installed
by deploy/install.sh, see docs/admin-guide.md, "Container environments").

The image is the one deploy/containers/build_rootfs.py makes from this host's own Debian
packages (nothing downloaded); a job of a test learner runs FactoryHub's own launcher of the
environment (`jobscript.site_hooks`) and reports from inside the image. The second test is the
reason the demo site does not offer the environment: on this site (proctrack/linuxproc) a
container outlives its cancelled job, because conmon leaves the job's process tree and Slurm's
signals kill Podman before it passes them on; it is expected to fail until that is solved.
"""

import dataclasses
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from realsite import REPO, wait_until

from factoryhub.jobscript import site_hooks
from factoryhub.site import Environment, Site
from factoryhub.software import SoftwareSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("podman") and shutil.which("runc") and shutil.which("newuidmap")),
        reason="rootless Podman is not installed (apt-get install podman uidmap runc catatonit)",
    ),
]
LEARNER = "tlearner3"
VENV = "/opt/factoryhub/venv"
# bound into the image: FactoryHub's environment, Slurm's configuration and munge's socket (the
# session reports its port with scontrol, as the learner), the homes
MOUNTS = (VENV, "/etc/slurm", "/run/munge")
OPTIONS = (
    "--volume=/home:/home",
    *(f"--volume={m}:{m}" + (":ro" if m != "/run/munge" else "") for m in MOUNTS),
)
PACKAGES = ("python3", "python3.11", "bash", "dash", "coreutils", "slurm-client")
# crun refuses hosts whose cgroup v2 tree has controllers next to v1's ("hybrid"): this one
RUNTIME_CONF = '[engine]\nruntime = "runc"\n'


@pytest.fixture(scope="module")
def image():
    """The demo image, built as deploy/containers/build_rootfs.py builds it, in a folder
    every learner can read."""
    base = Path(tempfile.mkdtemp(prefix="fh-image-", dir="/var/tmp"))
    base.chmod(0o755)
    rootfs = base / "demo.rootfs"
    mounts = [f"--mount-point={m}" for m in MOUNTS]
    subprocess.run(
        [
            sys.executable,
            "-I",
            str(REPO / "deploy/containers/build_rootfs.py"),
            str(rootfs),
            *mounts,
            *PACKAGES,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    conf = base / "containers.conf"
    conf.write_text(RUNTIME_CONF)
    conf.chmod(0o644)
    yield rootfs, conf
    shutil.rmtree(base)


def _site(real_hub, rootfs: Path) -> Site:
    software = SoftwareSettings(
        container_runtime=shutil.which("podman") or "", container_options=OPTIONS
    )
    env = Environment(label="Debian image (Podman)", prefix=VENV, image=str(rootfs))
    return dataclasses.replace(
        real_hub.site, software=software, environments={**real_hub.site.environments, "image": env}
    )


def _as_learner(argv: list[str], conf: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin",
        "CONTAINERS_CONF": str(conf),
        "FACTORYHUB_READY_FD": "3",
    }
    return subprocess.run(
        ["/usr/sbin/runuser", "-u", LEARNER, "--", *argv],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        **kwargs,
    )


def _clean_up(conf: Path) -> None:
    """Whatever containers the learner has left (the second test's leak)."""
    _as_learner(["podman", "rm", "--force", "--all", "--time=1"], conf, timeout=60)


REPORT = (
    "import os, subprocess; print(open('/etc/factoryhub-image').readline().strip());"
    " print('uid', os.getuid()); print('work', os.path.exists('/work'));"
    " print('ready fd', repr(os.environ.get('FACTORYHUB_READY_FD')));"
    " job = os.environ['SLURM_JOB_ID'];"
    " subprocess.run(['scontrol', 'update', 'job=' + job, 'comment=from-the-image'], check=True);"
    " print('comment', 'Comment=from-the-image' in subprocess.run(['scontrol', 'show', 'job', job],"
    " capture_output=True, text=True).stdout)"
)


def test_a_job_of_the_image_environment_runs_inside_the_image(real_hub, image):
    rootfs, conf = image
    launcher = site_hooks(_site(real_hub, rootfs), "image").launcher
    srun = ["srun", "--partition=debug", "--time=2", "--mem=1G", "--immediate=60", "--quiet"]
    try:
        done = _as_learner(
            [*srun, *launcher, f"{VENV}/bin/python", "-c", REPORT], conf, timeout=180
        )
    finally:
        _clean_up(conf)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("FactoryHub demo image: Debian packages of the host"), lines
    assert f"uid {pwd.getpwnam(LEARNER).pw_uid}" in lines  # the learner, not a mapped stranger
    assert "work False" in lines  # the image's file system, not the node's
    assert "ready fd ''" in lines  # the hub's descriptor number does not cross
    assert "comment True" in lines  # Slurm's commands work inside, as the learner


class ContainerOutlivedItsJob(Exception):
    """The one failure the second test expects (any other is a real failure)."""


def _running_in(rootfs: Path) -> list[str]:
    """The learner's processes of the container: by their real uid in /proc/<pid>/status (a
    process that changed its credentials in the container's user namespace is not dumpable, and
    its /proc folder then belongs to root, not to the learner)."""
    uid = str(pwd.getpwnam(LEARNER).pw_uid)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        real = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), ""
        )
        if real == uid and (str(rootfs) in argv or "sleep 600" in argv):
            found.append(f"{entry.name}: {argv[:120]}")
    return found


@pytest.mark.xfail(
    strict=False,  # a race: some runs every cancel wins it (the session's CI run), most not
    raises=ContainerOutlivedItsJob,
    reason="with proctrack/linuxproc a Podman container outlives its cancelled job: conmon"
    " leaves the job's process tree and Slurm kills Podman before it forwards SIGTERM",
)
def test_a_cancelled_job_leaves_no_container_behind(real_hub, image):
    """Whether Podman passes Slurm's SIGTERM on before Slurm's signal reaches the `runc kill`
    it starts is a race (seen both ways by hand): a few cancels, each must leave nothing."""
    rootfs, conf = image
    launcher = site_hooks(_site(real_hub, rootfs), "image").launcher
    script = f"#!/bin/bash\nexec {shlex.join(launcher)} /usr/bin/sleep 600\n"
    for _ in range(CANCELS):
        try:
            left = _cancel_and_look(rootfs, conf, script)
        finally:
            _clean_up(conf)
        if left:
            raise ContainerOutlivedItsJob(left)


CANCELS = 4


def _cancel_and_look(rootfs: Path, conf: Path, script: str) -> list[str]:
    """Submit `script` as the learner, cancel it once its container runs, and say what of it
    still runs 5 s after the job has left RUNNING."""
    sbatch = [
        "sbatch",
        "--parsable",
        "--partition=debug",
        "--time=5",
        "--mem=1G",
        "--output=/dev/null",
    ]
    job = _as_learner(sbatch, conf, input=script, timeout=60).stdout.strip()

    def sleeping() -> bool:  # the container's own process, not Podman's command line
        return any(
            p.split(": ", 1)[1].startswith("/usr/bin/sleep 600") for p in _running_in(rootfs)
        )

    wait_until(sleeping, 60, "the container's sleep")
    time.sleep(3)  # as a session's container would be: running, not starting
    subprocess.run(["scancel", job], check=True)

    def ended() -> bool:
        state = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True
        )
        return "RUNNING" not in state.stdout

    wait_until(ended, 60, "the job's end")
    time.sleep(5)
    return _running_in(rootfs)
