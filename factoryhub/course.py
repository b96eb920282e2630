"""The course format: a folder `notebooks/<course>/` with a `course.toml`, its notebooks and
small data. Read once into frozen dataclasses; every mistake is reported with the key, the line
and what is allowed.

    [course]        title, summary, audience, level, duration, outcomes, prerequisites,
                    notebooks (in order), environment
    [resources]     the preset a learner's session gets: partition, cpus, memory_gb, gpus,
                    walltime (checked by the spawner's own `parse_request` against the site)
    [validation]    smoke parameters for papermill (for all notebooks, and per notebook),
                    cell_timeout, expected_runtime, compare_outputs, sanitize (nbval's regex
                    replacements for outputs that vary), allow_network
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from factoryhub.durations import DurationError, parse_walltime

LEVELS = ("beginner", "intermediate", "advanced")
COURSE_FILE = "course.toml"
COURSE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}", re.ASCII)


class CourseError(ValueError):
    """A course.toml that cannot be used; the message says where and what is allowed."""


@dataclass(frozen=True)
class Resources:
    """The session preset of a course, as spawner `user_options`."""

    partition: str = "cpu"
    cpus: int = 1
    memory_gb: int = 2
    gpus: int = 0
    walltime: str = "01:00:00"

    def to_options(self, environment: str) -> dict[str, object]:
        return {
            "partition": self.partition,
            "cpus": self.cpus,
            "memory_gb": self.memory_gb,
            "gpus": self.gpus,
            "walltime": self.walltime,
            "environment": environment,
        }


@dataclass(frozen=True)
class Validation:
    """How `factoryhub course validate` runs the notebooks."""

    parameters: dict[str, object] = field(default_factory=dict)  # for every notebook
    notebook_parameters: dict[str, dict[str, object]] = field(default_factory=dict)
    cell_timeout: int = 300  # seconds a single cell may run
    expected_runtime: str = "00:10:00"  # the whole notebook; the Slurm job's time limit
    compare_outputs: bool = True  # nbval: compare every cell's outputs unless a cell opts out
    sanitize: dict[str, str] = field(default_factory=dict)  # regex -> replacement (nbval)
    allow_network: bool = False  # `check` rejects network use unless the course says so

    def parameters_for(self, notebook: str) -> dict[str, object]:
        return {**self.parameters, **self.notebook_parameters.get(notebook, {})}


@dataclass(frozen=True)
class Course:
    """One course, as its course.toml says."""

    name: str  # the folder's name
    path: Path
    title: str
    summary: str
    audience: str
    level: str
    duration: str
    outcomes: tuple[str, ...]
    prerequisites: tuple[str, ...]
    notebooks: tuple[str, ...]
    environment: str = "default"
    resources: Resources = field(default_factory=Resources)
    validation: Validation = field(default_factory=Validation)


_COURSE_KEYS = {
    "title": str,
    "summary": str,
    "audience": str,
    "level": str,
    "duration": str,
    "outcomes": list,
    "prerequisites": list,
    "notebooks": list,
    "environment": str,
}
_RESOURCE_KEYS = {"partition": str, "cpus": int, "memory_gb": int, "gpus": int, "walltime": str}
_VALIDATION_KEYS = {
    "parameters": dict,
    "notebook_parameters": dict,
    "cell_timeout": int,
    "expected_runtime": str,
    "compare_outputs": bool,
    "sanitize": dict,
    "allow_network": bool,
}
_REQUIRED = ("title", "summary", "audience", "level", "duration", "outcomes", "notebooks")
_TABLES = {"course": _COURSE_KEYS, "resources": _RESOURCE_KEYS, "validation": _VALIDATION_KEYS}


def line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The line (1-based) of `[table]` or of `key` inside it, for error messages."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if header := re.fullmatch(r"\[\s*([^\]]+?)\s*\]", stripped):
            current = header.group(1)
            if key is None and current == table:
                return number
        elif current == table and key and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _where(path: Path, text: str, table: str, key: str | None = None) -> str:
    number = line_of(text, table, key)
    place = f"{table}.{key}" if key else f"[{table}]"
    return f"{path}:{number}: {place}" if number else f"{path}: {place}"


def _check_table(
    raw: dict, table: str, path: Path, text: str, required: tuple[str, ...] = ()
) -> dict:
    values = raw.get(table, {})
    if not isinstance(values, dict):
        raise CourseError(f"{_where(path, text, table)}: must be a table")
    allowed = _TABLES[table]
    for key, value in values.items():
        if key not in allowed:
            raise CourseError(
                f"{_where(path, text, table, key)}: unknown key"
                f" (allowed here: {', '.join(sorted(allowed))})"
            )
        expected = allowed[key]
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            raise CourseError(
                f"{_where(path, text, table, key)}: expected {expected.__name__},"
                f" got {type(value).__name__} {str(value)[:40]!r}"
            )
    for key in required:
        if key not in values:
            raise CourseError(f"{_where(path, text, table)}: missing key {key!r}")
    return values


def _strings(values: list, path: Path, text: str, key: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise CourseError(f"{_where(path, text, 'course', key)}: must be a list of texts")
    return tuple(values)


def _duration(value: str, path: Path, text: str, table: str, key: str) -> str:
    try:
        parse_walltime(value)  # typed by a trainer: "1:30" is refused, not read as 90 s
    except DurationError as exc:
        raise CourseError(f"{_where(path, text, table, key)}: {exc}") from None
    return value


def parse_course(text: str, folder: Path) -> Course:
    """Parse the text of `folder/course.toml`."""
    path = folder / COURSE_FILE
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{path}: not valid TOML: {exc}") from None
    for table in raw:
        if table not in _TABLES:
            raise CourseError(
                f"{_where(path, text, table)}: unknown table (allowed: {', '.join(_TABLES)})"
            )
    info = _check_table(raw, "course", path, text, _REQUIRED)
    resources = _check_table(raw, "resources", path, text)
    validation = _check_table(raw, "validation", path, text)
    if not COURSE_NAME.fullmatch(folder.name):
        raise CourseError(f"{folder}: a course folder is named with a-z, 0-9 and -")
    if info["level"] not in LEVELS:
        raise CourseError(
            f"{_where(path, text, 'course', 'level')}: {info['level']!r} is not one of"
            f" {', '.join(LEVELS)}"
        )
    notebooks = _strings(info["notebooks"], path, text, "notebooks")
    if not notebooks or not all(n.endswith(".ipynb") and "/" not in n for n in notebooks):
        raise CourseError(
            f"{_where(path, text, 'course', 'notebooks')}: list the course's .ipynb files"
            " (in the course folder) in order"
        )
    _duration(resources.get("walltime", "01:00:00"), path, text, "resources", "walltime")
    _duration(info["duration"], path, text, "course", "duration")
    _duration(
        validation.get("expected_runtime", "00:10:00"), path, text, "validation", "expected_runtime"
    )
    per_notebook = validation.get("notebook_parameters", {})
    for name in per_notebook:
        if name not in notebooks:
            raise CourseError(
                f"{_where(path, text, 'validation', 'notebook_parameters')}: {name!r} is not"
                " one of the course's notebooks"
            )
    return Course(
        name=folder.name,
        path=folder,
        title=info["title"],
        summary=info["summary"],
        audience=info["audience"],
        level=info["level"],
        duration=info["duration"],
        outcomes=_strings(info["outcomes"], path, text, "outcomes"),
        prerequisites=_strings(info.get("prerequisites", []), path, text, "prerequisites"),
        notebooks=notebooks,
        environment=info.get("environment", "default"),
        resources=Resources(**resources),
        validation=Validation(**validation),
    )


def load_course(folder: str | Path) -> Course:
    """Read a course folder."""
    folder = Path(folder).resolve()
    path = folder / COURSE_FILE
    if not path.is_file():
        raise CourseError(f"{folder}: no {COURSE_FILE} (is this a course folder?)")
    return parse_course(path.read_text(encoding="utf-8"), folder)


def find_courses(root: str | Path) -> list[Path]:
    """Every course folder directly under `root` (e.g. notebooks/), sorted."""
    return sorted(p.parent for p in Path(root).glob(f"*/{COURSE_FILE}"))
