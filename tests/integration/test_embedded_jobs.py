"""Jobs on the embedded site share the host's few cores (its nodes declare more CPUs than the
host has), so its task prolog makes OpenMP wait passively: two 2-thread PyTorch jobs on a
2-core host spun against each other and a course's training cell ran ten times slower (the
course validation timed out in CI). A job that sets its own wait policy keeps it.

One learner of its own (`fhomp1`); the demo's accounts are left alone."""

import os
import subprocess

import pytest
from realsite import REPO

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.site import load_site

pytestmark = pytest.mark.integration

USER = "fhomp1"
SRUN = ["srun", "--partition=debug", "--time=1", "--mem=200M", "--immediate=60", "--quiet"]


@pytest.fixture(scope="module")
def learner() -> str:
    site = load_site(REPO / "hub_config" / "site.toml")
    ensure_accounts((DemoAccount(USER, "embedded-jobs-test"),), site.hub.allowed_group, site.access)
    return USER


def _as(user: str, *argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv],
        capture_output=True,
        text=True,
        cwd=os.path.expanduser(f"~{user}"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_jobs_wait_passively_unless_they_say_otherwise(learner):
    # an srun step, and the batch step of a job (whose script runs under the prolog too)
    assert _as(learner, *SRUN, "printenv", "OMP_WAIT_POLICY") == "PASSIVE"
    batch = _as(
        learner,
        "sbatch",
        "--wait",
        "--parsable",
        "--partition=debug",
        "--time=1",
        "--mem=200M",
        "--output=/dev/null",
        "--wrap",
        'test "$OMP_WAIT_POLICY" = PASSIVE',
    )
    assert batch  # --wait: sbatch's exit status is the script's, checked in _as
    own = _as(learner, *SRUN, "printenv", "OMP_WAIT_POLICY", env={"OMP_WAIT_POLICY": "ACTIVE"})
    assert own == "ACTIVE"
