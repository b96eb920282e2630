"""Security issue 13, findings 2 and 3, without Slurm: root reads a course without following a
link, `publish` refuses symbolic links, hard links and special files by name (and leaves the
published copy intact), nothing hangs on a FIFO, and what a validation job wrote is parsed as
untrusted input and escaped in the report."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest
from coursekit import good_course

from factoryhub.course import CourseError, load_course
from factoryhub.courses import catalogue
from factoryhub.courses import cli as course_cli
from factoryhub.courses.execute import NotebookResult
from factoryhub.courses.reports import html_report
from factoryhub.courses.snapshot import (
    _READ_FLAGS,
    _Reader,
    read_course_files,
    replace_file,
)
from factoryhub.courses.sync import RECORD, sync_course
from factoryhub.courses.validate import Target, prepare, result_of

SECRET = "root-only secret\n"


@contextmanager
def deadline(seconds: int = 10):
    """Fail instead of hanging (a FIFO opened in blocking mode would wait forever)."""

    def hung(signum, frame):
        raise AssertionError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def site(demo_site, tmp_path):
    hub = dataclasses.replace(demo_site.hub, catalogue_dir=str(tmp_path / "catalogue"))
    return dataclasses.replace(demo_site, hub=hub)


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "private" / "secret.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def _symlink(course: Path, secret: Path) -> str:
    (course / "data.txt").symlink_to(secret)
    return "data.txt"


def _dir_symlink(course: Path, secret: Path) -> str:
    (course / "data").symlink_to(secret.parent, target_is_directory=True)
    return "data"


def _hardlink(course: Path, secret: Path) -> str:
    os.link(secret, course / "data.txt")
    return "data.txt"


def _fifo(course: Path, secret: Path) -> str:
    os.mkfifo(course / "data.txt")
    return "data.txt"


def _socket(course: Path, secret: Path) -> str:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(course / "data.sock"))
    sock.close()
    return "data.sock"


def _nested_symlink(course: Path, secret: Path) -> str:
    (course / "sub").mkdir()
    (course / "sub" / "data.txt").symlink_to(secret)
    return "sub/data.txt"


PLANTS = {
    "symbolic link": _symlink,
    "symbolic link to a folder": _dir_symlink,
    "hard link": _hardlink,
    "FIFO": _fifo,
    "socket": _socket,
    "link in a subfolder": _nested_symlink,
}


@pytest.mark.parametrize("plant", PLANTS.values(), ids=list(PLANTS))
def test_publish_refuses_links_and_special_files_and_keeps_the_published_copy(
    plant, site, secret, tmp_path
):
    course = good_course(tmp_path / "src")
    catalogue.publish(site, str(course))
    published = Path(site.hub.catalogue_dir) / "good-course"
    before = sorted(p.name for p in published.iterdir())
    name = plant(course, secret)
    with deadline(), pytest.raises(CourseError) as refused:
        catalogue.publish(site, str(course))
    assert name in str(refused.value)
    assert sorted(p.name for p in published.iterdir()) == before  # the old copy is intact
    leaked = [p for p in Path(site.hub.catalogue_dir).rglob("*") if p.is_file()]
    assert all(SECRET not in p.read_text(errors="replace") for p in leaked)
    assert [p.name for p in Path(site.hub.catalogue_dir).iterdir() if p.name.startswith(".")] == []


def test_publish_on_the_command_line_names_the_file_and_exits_non_zero(
    site, secret, tmp_path, capsys, monkeypatch
):
    course = good_course(tmp_path / "src")
    _symlink(course, secret)
    monkeypatch.setattr(course_cli, "_site", lambda args: site)
    args = argparse.Namespace(action="publish", source=str(course), ref=None, path="")
    assert course_cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "data.txt: is a symbolic link" in err
    assert "Traceback" not in err
    assert not (Path(site.hub.catalogue_dir) / "good-course").exists()


def test_publish_copies_a_plain_course_readable_by_all(site, tmp_path):
    course = good_course(tmp_path / "src")
    (course / "data").mkdir()
    (course / "data" / "small.csv").write_text("a,b\n1,2\n")
    catalogue.publish(site, str(course))
    published = Path(site.hub.catalogue_dir) / "good-course"
    assert (published / "data" / "small.csv").read_text() == "a,b\n1,2\n"
    assert (published / "data" / "small.csv").stat().st_mode & 0o777 == 0o644
    assert published.stat().st_mode & 0o777 == 0o755
    assert load_course(published).name == "good-course"


def test_a_file_swapped_for_a_link_or_fifo_after_the_check_is_not_followed(tmp_path, secret):
    """The race: the check saw a regular file, the open finds a link or a FIFO."""
    assert _READ_FLAGS & os.O_NOFOLLOW and _READ_FLAGS & os.O_NONBLOCK
    (tmp_path / "link").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo")
    reader = _Reader(tmp_path)
    top = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with deadline():
            for name in ("link", "fifo"):
                with pytest.raises(CourseError, match=name):
                    reader.read(name, top, name)
    finally:
        os.close(top)


def test_a_course_folder_that_is_itself_a_link_is_refused(tmp_path):
    course = good_course(tmp_path / "src")
    (tmp_path / "alias").symlink_to(course, target_is_directory=True)
    with pytest.raises(CourseError, match="without following links"):
        read_course_files(tmp_path / "alias")


def test_recording_outputs_never_writes_through_a_link(tmp_path, secret):
    (tmp_path / "01-sum.ipynb").symlink_to(secret)
    with pytest.raises(CourseError, match="symbolic link"):
        replace_file(tmp_path, "01-sum.ipynb", b"{}")
    assert secret.read_text() == SECRET
    (tmp_path / "real.ipynb").write_text("old")
    (tmp_path / "real.ipynb").chmod(0o640)
    replace_file(tmp_path, "real.ipynb", b"new")
    assert (tmp_path / "real.ipynb").read_text() == "new"
    assert (tmp_path / "real.ipynb").stat().st_mode & 0o777 == 0o640


def test_prepare_hands_over_the_sources_it_read(tmp_path):
    course = good_course(tmp_path / "src")
    run = tmp_path / "home" / ".factoryhub" / "validate" / "run1"
    me = __import__("pwd").getpwuid(os.geteuid()).pw_name
    prepare([read_course_files(course)], run, me)
    assert (run / "sources" / "good-course" / "01-sum.ipynb").read_bytes() == (
        course / "01-sum.ipynb"
    ).read_bytes()
    assert (run / "good-course").is_dir()


def test_a_hostile_result_file_is_a_failure_not_a_crash(tmp_path):
    course = load_course(good_course(tmp_path))
    target = Target(course, "01-sum.ipynb", tmp_path / "run" / "01-sum")
    for text in ("[]", "{", '{"cells": [], "status": 1}', '{"cells": [], "extra": 1}'):
        result = result_of(target, "", text)
        assert (result.status, result.message) == ("failed", "unreadable result file")


def test_the_report_escapes_what_a_result_file_says(tmp_path, demo_site):
    course = load_course(good_course(tmp_path))
    evil = NotebookResult(
        "good-course", "01-sum.ipynb", "<script>alert(1)</script>", 1.0, "\x1b[31mred"
    )
    parsed = NotebookResult.from_json(evil.to_json())
    assert parsed.message == "red"  # terminal escapes are dropped
    page = html_report([parsed], {course.name: course}, demo_site.energy)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_sync_does_not_hang_on_a_fifo_in_the_learners_folder(tmp_path):
    source = good_course(tmp_path / "catalogue")
    home = tmp_path / "home" / "good-course"
    home.mkdir(parents=True)
    os.mkfifo(home / RECORD)
    os.mkfifo(home / "01-sum.ipynb")
    with deadline():
        actions = sync_course(source, home)
    assert {a.path for a in actions} >= {"01-sum.ipynb", "02-data.ipynb"}
    assert (home / "02-data.ipynb").is_file()
