"""The partition kept for workshops on the real site (issue 15): Slurm itself refuses a job
there without a reservation (ReqResv=YES), the hub refuses a learner who is no workshop seat
with a sentence and submits nothing, and `site check` says when site.toml keeps a partition
for workshops that Slurm lets anyone use."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from realsite import FACTORYHUB, REPO

pytestmark = pytest.mark.integration


def _srun(partition: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", "tlearner1", "--", "srun", "--immediate=30", "-p", partition,
         "-t", "1", "-J", "no-reservation", "true"],
        capture_output=True, text=True, cwd="/tmp", timeout=90,
    )  # fmt: skip


def test_slurm_takes_no_job_on_the_training_partition_without_a_reservation():
    refused = _srun("training")
    assert refused.returncode != 0, refused.stdout
    assert "Unable to allocate resources: Access/permission denied" in refused.stderr
    elsewhere = _srun("cpu")  # the same learner and job where no reservation is required
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_a_learner_who_is_no_seat_is_refused_the_training_partition(real_hub, hub_client):
    token = hub_client.login_token("tlearner2")
    options = {"partition": "training", "cpus": 1, "memory_gb": 1}
    with hub_client.api(token) as api:
        r = api.post("/users/tlearner2/server", json={"user_options": options})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "training is kept for workshops; only a workshop's seats start sessions there" in message
    queue = subprocess.run(
        ["squeue", "--noheader", "--user=tlearner2", "--partition=training", "--format=%i"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert queue.stdout.strip() == ""
    page = hub_client.spawn_page("tlearner2")
    assert "Training (workshops)" not in page and "<td>training</td>" not in page
    assert "CPU nodes" in page  # the other partitions are offered


def test_site_check_finds_a_workshops_only_partition_slurm_lets_anyone_use(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="fh-training-"))
    try:
        base.chmod(0o755)
        state, catalogue = base / "state", base / "catalogue"
        state.mkdir(mode=0o700)
        shutil.chown(state, "factoryhub")
        catalogue.mkdir(mode=0o755)
        raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
        raw["hub"].update(state_dir=str(state), catalogue_dir=str(catalogue))
        raw["partitions"]["debug"]["workshops_only"] = True  # Slurm's debug has ReqResv=NO
        path = tmp_path / "site.toml"
        path.write_text(tomli_w.dumps(raw))
        done = subprocess.run(
            [FACTORYHUB, "site", "check", "--site", str(path)],
            capture_output=True, text=True, timeout=120, cwd="/",
        )  # fmt: skip
    finally:
        shutil.rmtree(base)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "partitions.debug.workshops_only: Slurm's partition debug has no ReqResv=YES, so any job"
        " may run there outside a workshop's reservation" in done.stdout
    )
    assert "training" not in done.stdout  # the demo's own training partition is as it should be
