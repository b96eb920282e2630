"""Storage tiers on the real embedded site: /scratch and /project are btrfs file systems with a
quota group per folder (this kernel has no ext4/XFS quotas). A test account writing past its
scratch quota gets "Disk quota exceeded"; a project's folder is its group's alone; a learner's
scratch is theirs alone; `factoryhub storage usage` shows the quota to the learner; the set-up
mounts the tiers again after they were unmounted (a restart) with the files kept; the purge
deletes old files and never follows a learner's links out of scratch."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from realsite import FACTORYHUB

from factoryhub.demo.storage import ensure_storage, mount_of
from factoryhub.site import SITE_ENV, public_site_data

pytestmark = pytest.mark.integration
DAY = 86400


@pytest.fixture(scope="module")
def site(real_hub):
    """The test site's tiers made, as `demo start` makes the demo's (its accounts stand in
    for the demo's in the projects' groups: tlearner1 and tlearner2 share ai-research)."""
    ensure_storage(real_hub.site)
    return real_hub.site


def _as(user: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        **kwargs,
    )


def test_writing_past_the_scratch_quota_fails(site):
    quota = site.storage.scratch.quota_mb
    target = f"{site.storage.scratch.path}/tlearner1/fill"
    try:
        done = _as("tlearner1", "dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={quota + 8}")
        assert done.returncode != 0
        assert "Disk quota exceeded" in done.stderr, done.stderr
        assert os.path.getsize(target) <= quota * 2**20
    finally:
        Path(target).unlink(missing_ok=True)


def test_the_usage_command_shows_the_learners_quota(site):
    scratch = f"{site.storage.scratch.path}/tlearner2"
    wrote = _as("tlearner2", "dd", "if=/dev/zero", f"of={scratch}/five", "bs=1M", "count=5")
    assert wrote.returncode == 0, wrote.stderr
    try:
        subprocess.run(["sync"], check=True, timeout=60)  # the quota group counts what is on disk
        # as in a session, whose environment carries the site (FACTORYHUB_SITE_JSON)
        public = json.dumps(public_site_data(site))
        done = _as("tlearner2", "env", f"{SITE_ENV}={public}", FACTORYHUB, "storage", "usage")
    finally:
        Path(scratch, "five").unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line.split() for line in done.stdout.splitlines() if scratch in line)
    assert float(row[2]) >= 5.0 and row[3] == "MiB", row
    assert row[4:6] == [f"{site.storage.scratch.quota_mb:.1f}", "MiB"], row
    assert "/project/ai-research" in done.stdout  # tlearner2 is in the project's group
    assert "files not modified for 14 days are deleted" in done.stdout


def test_a_project_folder_is_its_groups_alone(site):
    folder = f"{site.storage.project.path}/ai-research"
    note = f"{folder}/shared-{os.getpid()}.txt"
    try:
        assert _as("tlearner1", "sh", "-c", f"umask 007; echo hello > {note}").returncode == 0
        assert _as("tlearner2", "cat", note).stdout == "hello\n"
        refused = _as("tlearner3", "ls", folder)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
    finally:
        Path(note).unlink(missing_ok=True)


def test_a_learners_scratch_is_theirs_alone(site):
    refused = _as("tlearner2", "ls", f"{site.storage.scratch.path}/tlearner1")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_set_up_again_mounts_the_tiers_after_a_restart_with_files_kept(site):
    kept = Path(site.storage.scratch.path, "tlearner3", "kept.txt")
    assert _as("tlearner3", "sh", "-c", f"echo kept > {kept}").returncode == 0
    assert ensure_storage(site) == []  # all there: nothing mounted again
    subprocess.run(["umount", site.storage.scratch.path], check=True, timeout=60)
    assert mount_of(site.storage.scratch.path).point != site.storage.scratch.path
    assert ensure_storage(site) == [site.storage.scratch.path]
    assert kept.read_text() == "kept\n"
    kept.unlink()


def test_the_purge_deletes_old_files_and_follows_no_link(site, tmp_path, real_hub):
    home = Path(site.storage.scratch.path, "tlearner1")
    outside = Path("/var/tmp") / f"fh-purge-outside-{os.getpid()}"
    outside.mkdir(mode=0o755)
    try:
        (outside / "precious.txt").write_text("root's, old")
        old = time.time() - 30 * DAY
        os.utime(outside / "precious.txt", (old, old))
        os.utime(outside, (old, old))
        script = (
            f"mkdir -p {home}/run/deep && echo old > {home}/run/deep/old.bin && "
            f"echo new > {home}/run/new.bin && "
            f"ln -s {outside} {home}/run/to-dir && ln -s {outside}/precious.txt {home}/run/to-file"
        )
        assert _as("tlearner1", "sh", "-c", script).returncode == 0
        for path in (home / "run/deep/old.bin", home / "run/to-dir", home / "run/to-file"):
            os.utime(path, (old, old), follow_symlinks=False)
        done = subprocess.run(
            [FACTORYHUB, "storage", "purge", "--site", str(real_hub.site_path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert not (home / "run/deep/old.bin").exists()
        assert (home / "run/new.bin").read_text() == "new\n"
        assert not os.path.lexists(home / "run/to-dir")  # the old links go, themselves
        assert not os.path.lexists(home / "run/to-file")
        assert (outside / "precious.txt").read_text() == "root's, old"  # never their targets
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(home / "run")], check=False)
        (outside / "precious.txt").unlink(missing_ok=True)
        outside.rmdir()
