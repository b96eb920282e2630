"""`factoryhub course validate` on the real Slurm: a good course passes, each deliberate breakage
of a broken one is reported as what it is, the rest is still validated, reports are written, and
the notebooks ran as the trainer's jobs (`ttrainer`, the tests' own), never as root. Publishing
from a git repository."""

import json
import pwd
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from coursekit import broken_course, good_course

pytestmark = pytest.mark.integration
FACTORYHUB = "/opt/factoryhub/venv/bin/factoryhub"
TRAINER = "ttrainer"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FACTORYHUB, "course", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.browser  # the report is looked at in chromium
def test_validate_on_slurm_reports_each_failure_and_validates_the_rest(
    tmp_path, repo, real_hub, page, screenshots
):
    good, broken = good_course(tmp_path), broken_course(tmp_path)
    site = str(repo / "hub_config" / "site.toml")
    started = time.time()
    done = run(
        "validate",
        str(good),
        str(broken),
        "--on",
        "slurm",
        "--reports",
        "out",
        "--site",
        site,
        "--as",
        TRAINER,  # made by real_hub
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if "ipynb" in line}
    assert lines["good-course/01-sum.ipynb"].startswith("passed")
    assert lines["good-course/02-data.ipynb"].startswith("passed")
    assert lines["broken-course/fine.ipynb"].startswith("passed")
    assert (
        "error in cell 2: ValueError: deliberately broken"
        in lines["broken-course/error-cell.ipynb"]
    )
    assert "outputs differ in cell 1" in lines["broken-course/wrong-output.ipynb"]
    assert "timeout in cell 1" in lines["broken-course/hanging-cell.ipynb"]
    assert "dead-kernel in cell 1" in lines["broken-course/killed-kernel.ipynb"]
    assert "3 passed, 4 failed" in done.stdout

    xml = ET.parse(tmp_path / "out" / "validation.xml").getroot()  # noqa: S314
    suites = {s.get("name"): s for s in xml.iter("testsuite")}
    assert suites["broken-course"].get("failures") == "4"
    assert suites["good-course"].get("failures") == "0"
    report = tmp_path / "out" / "validation.html"
    assert "3 of 7 notebooks passed" in report.read_text()
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(report.as_uri())
    assert "deliberately broken" in page.inner_text("body")
    page.screenshot(path=screenshots / "validation-report.png")

    # Every notebook was a Slurm job of the trainer on its course's partition.
    home = Path(pwd.getpwnam(TRAINER).pw_dir)
    results = sorted((home / ".factoryhub" / "validate").glob("*/*/*.result.json"))
    latest = [json.loads(p.read_text()) for p in results if p.stat().st_mtime >= started]
    assert len(latest) == 7 and all(r["job_id"].isdigit() for r in latest)
    owners = {p.stat().st_uid for p in results}
    assert 0 not in owners
    leftover = subprocess.run(
        ["squeue", "-h", "--name=fh-validate-broken-course"], capture_output=True, text=True
    ).stdout
    assert leftover.strip() == ""


def test_publish_from_git_and_list(tmp_path, repo):
    origin = tmp_path / "origin"
    good_course(origin / "courses")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(origin)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(origin)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "course"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    state = tmp_path / "state"
    site = tmp_path / "site.toml"
    text = (repo / "hub_config" / "site.toml").read_text()
    site.write_text(
        text.replace(
            'state_dir = "/var/lib/factoryhub"',
            f'state_dir = "{state}"\ncatalogue_dir = "{state}/catalogue"',
        )
    )
    done = run(
        "publish",
        str(origin),
        "--ref",
        "v1",
        "--path",
        "courses/good-course",
        "--site",
        str(site),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    listed = run("list", "--site", str(site), cwd=tmp_path).stdout
    assert "good-course" in listed and f"{origin}@v1:courses/good-course" in listed
    snapshot = state / "catalogue" / "good-course"
    assert (snapshot / "01-sum.ipynb").stat().st_mode & 0o004  # readable by every session
    refused = run("publish", str(tmp_path / "nothing-here"), "--site", str(site), cwd=tmp_path)
    assert refused.returncode == 2 and "no course.toml" in refused.stderr
