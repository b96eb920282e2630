"""`factoryhub course validate`: every notebook of the chosen courses, in parallel, as Slurm jobs
on each course's partition (or as local processes), never as root.

Each notebook runs `factoryhub.courses.execute` in a fresh copy of its course, as the validating
account, and leaves a JSON result; a notebook whose job dies without one (killed, out of time)
is reported from the job's state and log. One `squeue` per second serves all running jobs.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from factoryhub.jobstate import Phase, classify_state
from factoryhub.site import SITE_ENV, Site, public_site_data
from factoryhub.slurm import SlurmClient, SlurmError
from factoryhub.spawners.jobscript import resource_options
from factoryhub.spawners.request import access_for, parse_request

from .execute import NotebookResult, course_cells
from .model import Course

JOB_PREFIX = "fh-validate-"
LOG_TAIL = 3000


@dataclass(frozen=True)
class Target:
    """One notebook to validate, and where its copy and result live."""

    course: Course
    notebook: str
    workdir: Path

    @property
    def result_path(self) -> Path:
        return self.workdir.parent / f"{self.workdir.name}.result.json"

    @property
    def log_path(self) -> Path:
        return self.workdir.parent / f"{self.workdir.name}.log"

    @property
    def label(self) -> str:
        return f"{self.course.name}/{self.notebook}"


def plan(courses: list[Course], root: Path) -> list[Target]:
    """A work directory per notebook under `root` (pure)."""
    return [
        Target(course, notebook, root / course.name / Path(notebook).stem)
        for course in courses
        for notebook in course.notebooks
    ]


def execute_argv(python: str, target: Target) -> list[str]:
    return [
        python,
        "-m",
        "factoryhub.courses.execute",
        str(target.workdir.parent.parent / "sources" / target.course.name),
        target.notebook,
        str(target.workdir),
        str(target.result_path),
    ]


def validation_script(target: Target, site: Site, user: str) -> str:
    """The batch script of one notebook's validation (pure): the course's preset on its
    partition, the expected runtime as the time limit."""
    course = target.course
    options = course.resources.to_options(course.environment)
    options["walltime"] = course.validation.expected_runtime
    request = parse_request(options, site, access_for(site, user))
    python = f"{site.environments[course.environment].prefix}/bin/python"
    lines = ["#!/bin/bash", f"#SBATCH --job-name={JOB_PREFIX}{course.name}"]
    lines += [f"#SBATCH {option}" for option in resource_options(request)]
    lines += [f"#SBATCH --output={target.log_path}", "#SBATCH --export=ALL"]
    lines += [f"exec {shlex.join(execute_argv(python, target))}", ""]
    return "\n".join(lines)


def prepare(targets: list[Target], root: Path, user: str) -> None:
    """Copy each course once into the run's directory, owned by the validating account."""
    account = pwd.getpwnam(user)
    home = Path(account.pw_dir)
    for level in (home / ".factoryhub", home / ".factoryhub" / "validate"):
        if root.is_relative_to(level) and level.exists():
            os.chown(level, account.pw_uid, account.pw_gid)  # made by root for this run
    for course in {t.course.name: t.course for t in targets}.values():
        shutil.copytree(course.path, root / "sources" / course.name, dirs_exist_ok=True)
        (root / course.name).mkdir(exist_ok=True)
    for path in [root, *root.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)


def result_of(target: Target, state: str = "") -> NotebookResult:
    """The notebook's result file, or a failure saying how its job ended without one."""
    if target.result_path.exists():
        return NotebookResult.from_json(target.result_path.read_text(encoding="utf-8"))
    log = (
        target.log_path.read_text(errors="replace")[-LOG_TAIL:] if target.log_path.exists() else ""
    )
    ended = f"its job ended {state}" if state else "it ended"
    return NotebookResult(
        target.course.name,
        target.notebook,
        "failed",
        0.0,
        f"no result: {ended} before the notebook finished. {log}".strip(),
    )


Progress = Callable[[NotebookResult], None]


def job_environment(site: Site, user: str, prefix: str) -> dict[str, str]:
    """What a validation run sees: the learner's view of a session (the public site for the
    widgets), the validating account's home, nothing of root's."""
    account = pwd.getpwnam(user)
    return {
        "PATH": f"{prefix}/bin:/usr/bin:/bin",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": account.pw_dir,
        "USER": user,
        SITE_ENV: json.dumps(public_site_data(site)),
    }


async def run_local(
    targets: list[Target], env: dict[str, str], python: str, jobs: int, progress: Progress
):
    """Each notebook as a process of the validating account, `jobs` at a time."""
    user = env["USER"]
    switch = ["/usr/sbin/runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    gate = asyncio.Semaphore(max(jobs, 1))

    async def one(target: Target) -> NotebookResult:
        async with gate:
            with target.log_path.open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    *switch,
                    *execute_argv(python, target),
                    stdout=log,
                    stderr=log,
                    cwd=env["HOME"],
                    env=env,
                )
                code = await proc.wait()
            result = result_of(target, f"with exit code {code}")
            progress(result)
            return result

    return await asyncio.gather(*(one(t) for t in targets))


async def run_slurm(
    targets: list[Target], site: Site, env: dict[str, str], client: SlurmClient, progress: Progress
) -> list[NotebookResult]:
    """Each notebook as a Slurm job of the validating account; all run in parallel."""
    user, home = env["USER"], env["HOME"]
    jobs: dict[str, Target] = {}
    results: dict[str, NotebookResult] = {}
    for target in targets:
        try:
            job_id = await client.submit(
                validation_script(target, site, user), user=user, env=env, cwd=home
            )
        except SlurmError as exc:
            results[target.label] = NotebookResult(
                target.course.name, target.notebook, "failed", 0.0, f"not submitted: {exc}"
            )
            progress(results[target.label])
            continue
        jobs[job_id] = target
    while jobs:
        await asyncio.sleep(1.0)
        try:
            seen = await client.query(jobs)
        except SlurmError:
            continue  # unknown: ask again
        for job_id in list(jobs):
            info = seen.get(job_id)
            if info is None or classify_state(info.state) is Phase.ENDED:
                target = jobs.pop(job_id)
                result = result_of(target, info.state if info else "")
                result.job_id = result.job_id or job_id
                results[target.label] = result
                progress(result)
    return [results[t.label] for t in targets]


class ProgressBar:
    """A one-line progress bar on stderr (tqdm, which papermill already brings)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="notebook", file=sys.stderr, dynamic_ncols=True)
        self.failed = 0

    def __call__(self, result: NotebookResult) -> None:
        self.failed += result.status != "passed"
        self.bar.set_postfix_str(f"{result.course}/{result.notebook} {result.status}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def record_outputs(target: Target, result: NotebookResult) -> str:
    """Make this run's outputs the notebook's reference outputs (`validate --record`), when
    every cell ran; returns what was done."""
    executed = target.workdir / f"{Path(target.notebook).stem}.executed.ipynb"
    failed = any(c.status in ("error", "timeout", "dead-kernel", "not-run") for c in result.cells)
    if failed or not executed.exists():
        return f"not recorded: {target.label} did not run through ({result.message[:120]})"
    path = target.course.path / target.notebook
    reference = nbformat.read(path, as_version=4)
    ran = course_cells(nbformat.read(executed, as_version=4).cells)
    for ref, run in zip(reference.cells, ran, strict=True):
        ref.metadata.pop("papermill", None)
        if ref.cell_type == "code":
            ref.outputs, ref.execution_count = run.outputs, run.execution_count
    reference.metadata.pop("papermill", None)
    nbformat.write(reference, path)
    return f"recorded: {target.label}"
