"""Security issue 13, findings 2 and 3, on the real site: `course validate` and `course publish`
run as root never follow a trainer's links. A trainer account of this test's own plants
`~/.factoryhub -> <a root-owned folder>`, links in a course to a root-only file, and a job that
swaps its log for a link to that file; root's folder keeps its owner, nothing outside the
trainer's space changes, no secret comes out, and each refusal is a clear message."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from coursekit import good_course, notebook, printed, write_course
from nbformat.v4 import new_code_cell

from factoryhub.demo.accounting import ensure_associations

pytestmark = pytest.mark.integration
FACTORYHUB = "/opt/factoryhub/venv/bin/factoryhub"
TRAINER = "fhcoursetr"  # this test's own trainer, never the demo's
SECRET = "root-only: do not show\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FACTORYHUB, "course", *args], capture_output=True, text=True, cwd=cwd, timeout=400
    )


def _clear(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@pytest.fixture(scope="module")
def trainer(demo_site) -> pwd.struct_passwd:
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", TRAINER], check=False)
    group = demo_site.hub.allowed_group  # trainers log in, and act through Slurm, as members
    subprocess.run(["usermod", "--append", "--groups", group, TRAINER], check=True)
    ensure_associations(demo_site.access, [TRAINER])
    account = pwd.getpwnam(TRAINER)
    yield account
    _clear(Path(account.pw_dir) / ".factoryhub")


@pytest.fixture
def home(trainer) -> Path:
    home = Path(trainer.pw_dir)
    _clear(home / ".factoryhub")
    return home


@pytest.fixture
def root_dir():
    """A fresh root-owned folder (never /etc) a trainer's link points at."""
    path = Path(tempfile.mkdtemp(prefix="fh-root-owned-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def secret(root_dir) -> Path:
    path = root_dir / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def _as_trainer(*argv: str) -> None:
    subprocess.run(["runuser", "-u", TRAINER, "--", *argv], check=True)


def _untouched(root_dir: Path, entries: set[str]) -> None:
    st = root_dir.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)
    assert {p.name for p in root_dir.iterdir()} == entries
    for path in root_dir.rglob("*"):
        assert path.lstat().st_uid == 0


@pytest.mark.parametrize("level", [".factoryhub", ".factoryhub/validate"])
def test_validate_never_follows_the_trainers_factoryhub_link(level, home, root_dir, tmp_path, repo):
    link = home / level
    if level != ".factoryhub":
        _as_trainer("mkdir", "-p", str(link.parent))
    _as_trainer("ln", "-s", str(root_dir), str(link))
    course = good_course(tmp_path)
    site = str(repo / "hub_config" / "site.toml")
    done = run("validate", str(course), "--as", TRAINER, "--site", site, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot prepare {home}/.factoryhub/validate/" in done.stderr
    assert "Traceback" not in done.stderr
    _untouched(root_dir, set())


def test_validate_refuses_a_course_linking_to_a_root_only_file(home, secret, tmp_path, repo):
    course = good_course(tmp_path)
    (course / "data.txt").symlink_to(secret)
    site = str(repo / "hub_config" / "site.toml")
    done = run("validate", str(course), "--as", TRAINER, "--site", site, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{course}/data.txt: is a symbolic link" in done.stderr
    assert not (home / ".factoryhub" / "validate").exists() or not any(
        (home / ".factoryhub" / "validate").iterdir()
    )
    _untouched(secret.parent, {"secret.txt"})


def test_validation_reads_results_and_logs_as_the_trainer(home, secret, tmp_path, repo):
    """A notebook swaps its job's log for a link to a root-only file, then kills its job so
    that only the log is left to report: root must not read the file through the link."""
    swap = (
        "import glob, os\n"
        "for log in glob.glob('../01-swap.log'):\n"
        "    os.remove(log)\n"
        f"    os.symlink({str(secret)!r}, log)\n"
        "os.kill(os.getppid(), 9)"
    )
    course = write_course(
        tmp_path,
        "swap-course",
        {
            "01-swap.ipynb": notebook(new_code_cell(swap, execution_count=1)),
            "02-fine.ipynb": notebook(printed("print('fine')", "fine\n", 1)),
        },
        "cell_timeout = 60\n",
    )
    site = str(repo / "hub_config" / "site.toml")
    done = run(
        "validate",
        str(course),
        "--as",
        TRAINER,
        "--on",
        "slurm",
        "--reports",
        "out",
        "--site",
        site,
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if "ipynb" in line}
    assert lines["swap-course/02-fine.ipynb"].startswith("passed")
    assert "no result" in lines["swap-course/01-swap.ipynb"]
    assert SECRET.strip() not in output
    assert SECRET.strip() not in (tmp_path / "out" / "validation.html").read_text()
    runs = sorted((home / ".factoryhub" / "validate").iterdir())
    assert runs and all(p.lstat().st_uid == pwd.getpwnam(TRAINER).pw_uid for p in runs)
    _untouched(secret.parent, {"secret.txt"})


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_publish_refuses_a_link_to_a_root_only_file(kind, secret, tmp_path, repo):
    state = tmp_path / "state"
    site = tmp_path / "site.toml"
    text = (repo / "hub_config" / "site.toml").read_text()
    site.write_text(
        text.replace(
            'state_dir = "/var/lib/factoryhub"',
            f'state_dir = "{state}"\ncatalogue_dir = "{state}/catalogue"',
        )
    )
    course = good_course(tmp_path / "src")
    assert run("publish", str(course), "--site", str(site), cwd=tmp_path).returncode == 0
    published = state / "catalogue" / "good-course"
    before = {p.name: p.read_bytes() for p in published.iterdir()}
    if kind == "symlink":
        (course / "data.txt").symlink_to(secret)
    else:
        os.link(secret, course / "data.txt")
    done = run("publish", str(course), "--site", str(site), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{course}/data.txt: is a {'symbolic' if kind == 'symlink' else 'hard'} link" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in published.iterdir()} == before
    for path in (state / "catalogue").rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes()
    assert secret.stat().st_mode & 0o777 == 0o600
    nbformat.read(published / "01-sum.ipynb", as_version=4)  # the old copy is whole
