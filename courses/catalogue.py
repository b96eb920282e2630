"""The catalogue: courses published for learners, each a snapshot of its source (a folder, or a
git repository at a ref) under the hub's state directory, readable by every session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from factoryhub.course import Course, CourseError, load_course
from factoryhub.site import Site

from .check import check_course
from .snapshot import Snapshot, read_course_files, write_files

INDEX = "catalogue.json"
SYNC_ROOT = "courses"  # a course lands in ~/courses/<name>/ of the learner
COURSE_ENV = "FACTORYHUB_COURSE"  # set in a session started for a course: its name
COURSE_SOURCE_ENV = "FACTORYHUB_COURSE_SOURCE"  # and its published snapshot


@dataclass(frozen=True)
class Entry:
    """What the catalogue lists of a published course."""

    name: str
    title: str
    summary: str
    duration: str
    level: str
    source: str
    published: str


def catalogue_dir(site: Site) -> Path:
    """Where published snapshots live: every learner's session reads from here, so it lies
    outside the hub's private state directory."""
    return Path(site.hub.catalogue_dir)


def published(site: Site) -> list[Entry]:
    """Every published course, in name order."""
    index = catalogue_dir(site) / INDEX
    if not index.exists():
        return []
    return [Entry(**e) for e in json.loads(index.read_text(encoding="utf-8"))]


def published_course(site: Site, name: str) -> Course:
    """The published snapshot of course `name` (a `CourseError` if there is none)."""
    if name not in {e.name for e in published(site)}:
        raise CourseError(f"no published course named {name[:60]!r}")
    return load_course(catalogue_dir(site) / name)


def course_presets(site: Site) -> dict[str, dict[str, object]]:
    """Each published course's session preset (`user_options`), for the spawner."""
    presets = {}
    for entry in published(site):
        try:
            course = load_course(catalogue_dir(site) / entry.name)
        except CourseError:
            continue  # a snapshot damaged by hand is not offered
        presets[entry.name] = course.resources.to_options(course.environment)
    return presets


def landing_page(site: Site, name: str) -> str:
    """Where a session started for course `name` opens: its first notebook in JupyterLab."""
    course = load_course(catalogue_dir(site) / name)
    return f"/lab/tree/{SYNC_ROOT}/{name}/{course.notebooks[0]}"


def _fetch_git(url: str, ref: str, into: Path) -> None:
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", "--branch", ref, "--", url, str(into)],
        check=True,
        timeout=300,
        capture_output=True,
    )


def _readable(path: Path, recursive: bool = True) -> None:
    """Sessions run as learners: the snapshot must be readable by all, writable by none.
    A link is left alone (chmod would change what it points at)."""
    for item in [path, *(path.rglob("*") if recursive else ())]:
        if not item.is_symlink():
            os.chmod(item, 0o755 if item.is_dir() else 0o644)


def _install(root: Path, snapshot: Snapshot, name: str) -> Course:
    """Write `snapshot` beside the catalogue, check it there, then put it in place of the
    published `name` (which stays intact when anything fails)."""
    staging = root / f".{name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    os.mkdir(staging, 0o700)
    try:
        write_files(snapshot, staging / name)
        course = load_course(staging / name)
        problems = check_course(staging / name)
        if problems:
            raise CourseError("not published; fix first:\n  " + "\n  ".join(map(str, problems)))
        shutil.rmtree(root / name, ignore_errors=True)
        (staging / name).rename(root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return course


def publish(site: Site, source: str, ref: str | None = None, subdir: str = "") -> Entry:
    """Snapshot a checked course into the catalogue (replacing an earlier version). The
    course is read without following links and must hold only directories and regular
    files (see `snapshot`): nothing else can reach every learner through the catalogue."""
    with tempfile.TemporaryDirectory() as scratch:
        if ref:
            try:
                _fetch_git(source, ref, Path(scratch) / "repo")
            except subprocess.CalledProcessError as exc:
                raise CourseError(
                    f"git clone {source} {ref}: {exc.stderr.decode()[:300]}"
                ) from None
            repo = (Path(scratch) / "repo").resolve()
            folder = (repo / subdir).resolve()
            if not folder.is_relative_to(repo):
                raise CourseError(f"--path {subdir[:100]!r} leads out of the repository")
            where = f"{source}@{ref}" + (f":{subdir}" if subdir else "")
        else:
            folder, where = Path(source).resolve(), str(Path(source).resolve())
        snapshot = read_course_files(folder)
    name = snapshot.course().name
    environment = snapshot.course().environment
    if environment not in site.environments:  # the preset would be refused at every start
        offered = ", ".join(sorted(site.environments))
        raise CourseError(
            f"course.toml environment {environment[:40]!r} is not offered by this site"
            f" (site.toml [environments]: {offered})"
        )
    root = catalogue_dir(site)
    root.mkdir(parents=True, exist_ok=True)
    _readable(root.parent, recursive=False)
    course = _install(root, snapshot, name)
    entry = Entry(
        course.name,
        course.title,
        course.summary,
        course.duration,
        course.level,
        where,
        datetime.now().isoformat(timespec="seconds"),
    )
    entries = [e for e in published(site) if e.name != course.name] + [entry]
    index = root / INDEX
    index.with_suffix(".tmp").write_text(
        json.dumps([asdict(e) for e in sorted(entries, key=lambda e: e.name)], indent=1)
    )
    index.with_suffix(".tmp").replace(index)
    _readable(root)  # the catalogue is public to sessions by design
    return entry
