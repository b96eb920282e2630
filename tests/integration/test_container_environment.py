"""The demo site's container environment (site.toml `environments.debian-12`: an image made of the
host's own Debian packages by deploy/containers/build_rootfs.py, run by rootless Podman, both
installed by deploy/install.sh) on the real Slurm:

- a job of a test learner runs FactoryHub's own launcher of the environment and reports from
  inside the image: its marker, the learner's uid, no node's /work, the hub's descriptor number
  cleared, Slurm's commands working as the learner;
- a session started from the hub in that environment runs its kernel inside the image, and once
  stopped leaves no container behind;
- a cancelled job leaves no container behind. conmon, which runs a container, leaves the job's
  process tree, and Slurm's signals (proctrack/linuxproc) reach only `podman run`, which may die
  before it passes them on: before the launcher's guard (software.PODMAN_GUARD) stopped and
  removed the container by name, 6 cancels of 7 by hand left it running.
"""

import pwd
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from realsite import run_in_kernel, wait_until

from factoryhub.jobscript import site_hooks

pytestmark = pytest.mark.integration
LEARNER = "tlearner3"
ENVIRONMENT = "debian-12"
VENV = "/opt/factoryhub/venv"


@pytest.fixture(scope="module")
def image(real_hub) -> tuple[Path, tuple[str, ...]]:
    """The environment's image and launcher, as the test site (the demo's site.toml) has them."""
    rootfs = Path(real_hub.site.environments[ENVIRONMENT].image)
    assert (rootfs / "etc/factoryhub-image").is_file(), "deploy/install.sh builds the image"
    return rootfs, site_hooks(real_hub.site, ENVIRONMENT).launcher


def _as_learner(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin", "FACTORYHUB_READY_FD": "3"}
    return subprocess.run(
        ["/usr/sbin/runuser", "-u", LEARNER, "--", *argv],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        **kwargs,
    )


def _clean_up() -> None:
    """Whatever containers the learner has left (a failed test's)."""
    _as_learner(["podman", "rm", "--force", "--all", "--time=1"], timeout=60)


REPORT = (
    "import os, subprocess; print(open('/etc/factoryhub-image').readline().strip());"
    " print('uid', os.getuid()); print('work', os.path.exists('/work'));"
    " print('ready fd', repr(os.environ.get('FACTORYHUB_READY_FD')));"
    " job = os.environ['SLURM_JOB_ID'];"
    " subprocess.run(['scontrol', 'update', 'job=' + job, 'comment=from-the-image'], check=True);"
    " print('comment', 'Comment=from-the-image' in subprocess.run(['scontrol', 'show', 'job', job],"
    " capture_output=True, text=True).stdout)"
)


def test_a_job_of_the_image_environment_runs_inside_the_image(image):
    _, launcher = image
    srun = ["srun", "--partition=debug", "--time=2", "--mem=1G", "--immediate=60", "--quiet"]
    try:
        done = _as_learner([*srun, *launcher, f"{VENV}/bin/python", "-c", REPORT], timeout=180)
    finally:
        _clean_up()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("FactoryHub demo image: Debian packages of the host"), lines
    assert f"uid {pwd.getpwnam(LEARNER).pw_uid}" in lines  # the learner, not a mapped stranger
    assert "work False" in lines  # the image's file system, not the node's
    assert "ready fd ''" in lines  # the hub's descriptor number does not cross
    assert "comment True" in lines  # Slurm's commands work inside, as the learner


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


def test_a_cancelled_job_leaves_no_container_behind(image):
    """Whether Podman passes Slurm's SIGTERM on before Slurm's signal ends it is a race (seen both
    ways by hand): a few cancels, each must leave nothing."""
    rootfs, launcher = image
    script = f"#!/bin/bash\nexec {shlex.join(launcher)} /usr/bin/sleep 600\n"
    for _ in range(CANCELS):
        try:
            left = _cancel_and_look(rootfs, script)
        finally:
            _clean_up()
        assert not left, left


CANCELS = 4


def _cancel_and_look(rootfs: Path, script: str) -> list[str]:
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
    job = _as_learner(sbatch, input=script, timeout=60).stdout.strip()

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


IN_THE_SESSION = (
    "import os, sys; print(open('/etc/factoryhub-image').readline().strip());"
    " print('uid', os.getuid()); print('work', os.path.exists('/work'));"
    " print('prefix', sys.prefix); print('home', os.access(os.path.expanduser('~'), os.W_OK))"
)


def _containers() -> list[str]:
    """The learner's containers, as Podman lists them."""
    listed = _as_learner(["podman", "ps", "--all", "--format={{.Names}}"], timeout=60)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


async def test_a_session_in_the_container_environment_runs_inside_the_image(hub_client, image):
    """From the hub, as a learner would choose it in the form: the server and its kernel run
    inside the image, and stopping the session removes the container."""
    rootfs, _ = image
    token = hub_client.login_token(LEARNER)
    hub_client.start(LEARNER, token, name="ctr", options={"environment": ENVIRONMENT})
    try:
        job = hub_client.job_of(LEARNER, "ctr")
        assert [n for n in _containers() if n.startswith(f"factoryhub-{job}.")], _containers()
        out = await run_in_kernel(hub_client.base, f"/user/{LEARNER}/ctr/", token, IN_THE_SESSION)
    finally:
        hub_client.stop(LEARNER, token, name="ctr")
    lines = out.splitlines()
    assert lines[0].startswith("FactoryHub demo image: Debian packages of the host"), lines
    assert lines[1:] == [
        f"uid {pwd.getpwnam(LEARNER).pw_uid}",
        "work False",
        f"prefix {VENV}",
        "home True",
    ]
    wait_until(lambda: not _containers() and not _running_in(rootfs), 30, "no container left")
