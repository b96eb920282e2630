"""GPU use as activity on the real site: a GPU session (the embedded site's stand-in GPU
devices, a real Slurm job, the real hub) whose `nvidia-smi` reports a busy GPU has its
last_activity at the hub advance with no kernel, terminal or request to it at all; reporting
0 %, it does not advance.

This machine has no GPU and no NVIDIA driver, so the session's PATH gets a STAND-IN for
NVIDIA's nvidia-smi, made by this test in a test-only folder (`STANDIN_ENV`, never installed by
deploy/): it accepts only the exact argv the session must use for the job's GPUs (anything
else: status 2, which the session logs) and prints the utilisation the test writes in a file.
The real nvidia-smi is not run by any test.

The session is started in a test environment ("gpu-standin") whose `jupyterhub-singleuser`
puts the stand-in first on its PATH and asks jupyterhub-singleuser to report activity every
2 s instead of 300 s; the test's copy of site.toml gets that environment and
``[culling] gpu_sample_seconds = 2``, and is back as it was in the `finally`."""

import re
import time
import tomllib
from datetime import datetime
from pathlib import Path

import pytest
import tomli_w
from realsite import job_id_in, wait_until

from factoryhub.spawners.hubconfig import ROUTE_CHECK_SECONDS

pytestmark = pytest.mark.integration

LEARNER = "tlearner3"
STANDIN_ENV = Path("/srv/factoryhub-test/gpu-standin-env")
UTILIZATION = STANDIN_ENV / "utilization"  # what the stand-in reports, written by the test
REPORT_SECONDS = 2  # jupyterhub-singleuser's activity interval and the session's sample period

STANDIN_NVIDIA_SMI = """#!/bin/bash
# STAND-IN for NVIDIA's nvidia-smi, for tests/integration/test_gpu_activity.py only: this
# machine has no GPU. It answers only the query FactoryHub's session must make for its job's
# GPUs, with the utilisation the test wrote in {utilization}.
gpus="${{SLURM_STEP_GPUS:-${{SLURM_JOB_GPUS:-$CUDA_VISIBLE_DEVICES}}}}"
expected=(--query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -i "$gpus")
if [ "$*" != "${{expected[*]}}" ]; then
    echo "stand-in nvidia-smi: unexpected arguments: $*" >&2
    exit 2
fi
read -r percent < {utilization}
IFS=, read -ra ids <<< "$gpus"
for _ in "${{ids[@]}}"; do
    echo "$percent, 1024"
done
"""


def standin_environment() -> Path:
    """The test environment's prefix: the stand-in nvidia-smi, and a jupyterhub-singleuser
    that puts it on the session's PATH and reports activity every `REPORT_SECONDS`."""
    (STANDIN_ENV / "bin").mkdir(parents=True, exist_ok=True)
    (STANDIN_ENV / "standin").mkdir(exist_ok=True)
    UTILIZATION.write_text("0\n")
    UTILIZATION.chmod(0o644)
    tool = STANDIN_ENV / "standin" / "nvidia-smi"
    tool.write_text(STANDIN_NVIDIA_SMI.format(utilization=UTILIZATION))
    server = (
        "#!/bin/bash\n"
        f'export PATH="{tool.parent}:$PATH"\n'
        f"export JUPYTERHUB_ACTIVITY_INTERVAL={REPORT_SECONDS}\n"
        'exec /opt/factoryhub/venv/bin/jupyterhub-singleuser "$@"\n'
    )
    (STANDIN_ENV / "bin" / "jupyterhub-singleuser").write_text(server)
    (STANDIN_ENV / "bin" / "python").write_text(
        '#!/bin/bash\nexec /opt/factoryhub/venv/bin/python "$@"\n'
    )
    for script in (
        tool,
        STANDIN_ENV / "bin" / "jupyterhub-singleuser",
        STANDIN_ENV / "bin" / "python",
    ):
        script.chmod(0o755)
    return STANDIN_ENV


def report(percent: int) -> None:
    UTILIZATION.write_text(f"{percent}\n")


def test_a_busy_gpu_keeps_the_session_active_and_an_idle_one_does_not(real_hub, hub_client):
    site_file = real_hub.hub_site
    original = site_file.read_text()
    token = hub_client.login_token(LEARNER)
    raw = tomllib.loads(original)
    raw["environments"]["gpu-standin"] = {
        "label": "Stand-in nvidia-smi (tests)",
        "prefix": str(standin_environment()),
    }
    raw["culling"]["gpu_sample_seconds"] = REPORT_SECONDS
    try:
        site_file.write_text(tomli_w.dumps(raw))
        options = {"partition": "gpu", "gpus": 1, "environment": "gpu-standin"}
        job = job_id_in(hub_client.start(LEARNER, token, options=options))
        log = Path("/home", LEARNER, raw["session"].get("log_dir", ".factoryhub/logs"))
        log = log / f"session-{job}.log"

        def said(pattern: str) -> re.Match | None:
            return re.search(pattern, log.read_text(errors="replace")) if log.exists() else None

        wait_until(
            lambda: said(r"GPU \S+ read by \S+/standin/nvidia-smi every 2 s"), 30, "sampling"
        )

        def last_activity() -> datetime:
            server = hub_client.server(LEARNER, token)
            assert server is not None, "the session stopped"
            return datetime.fromisoformat(server["last_activity"].replace("Z", "+00:00"))

        # 0 %: nothing else happens in the session (no kernel, terminal or request), so the
        # hub's last_activity stays where the start left it: once the hub has read the
        # proxy's routes after the start (the new route's own time stamp comes in with the
        # first route check, up to ROUTE_CHECK_SECONDS later)
        time.sleep(max(2 * REPORT_SECONDS, ROUTE_CHECK_SECONDS + 2))
        idle_since = last_activity()
        time.sleep(4 * REPORT_SECONDS)
        assert last_activity() == idle_since, "activity without GPU use"

        # busy: every sample is activity, reported by jupyterhub-singleuser
        report(87)
        first = wait_until(lambda: (t := last_activity()) > idle_since and t, 20, "busy GPU seen")
        wait_until(lambda: last_activity() > first, 20, "a busy GPU seen again")

        # back to 0 %: once the last busy sample is reported, last_activity stays
        report(0)
        time.sleep(3 * REPORT_SECONDS)
        settled = last_activity()
        time.sleep(4 * REPORT_SECONDS)
        assert last_activity() == settled, "activity after the GPU went idle"
        assert not said("GPU use not read"), "the stand-in refused the session's arguments"
    finally:
        site_file.write_text(original)
        report(0)
        if hub_client.server(LEARNER, token) is not None:
            hub_client.stop(LEARNER, token)
