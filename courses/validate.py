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
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from factoryhub import jobnames
from factoryhub.course import Course
from factoryhub.jobscript import BatchSpec, render_batch, site_hooks
from factoryhub.jobstate import Phase, classify_state
from factoryhub.request import access_for, parse_request
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.site import SITE_ENV, Site, public_site_data

from .execute import NotebookResult, clean_text, course_cells
from .handover import as_account, read_as, read_as_async, unpack
from .outputs import cell_options
from .snapshot import Snapshot, as_tar, replace_file

LOG_TAIL = 3000
RESULT_LIMIT = 4 * 1024 * 1024  # a result file read back; tracebacks are cut far shorter
EXECUTED_LIMIT = 64 * 1024 * 1024  # an executed notebook read back for --record
# Run "$@" with stdout and stderr into the log "$1", from the account's home.
_LOGGED = 'log=$1; shift; cd || exit; exec "$@" >"$log" 2>&1'


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


def validation_script(target: Target, site: Site, user: str, accounts: tuple[str, ...] = ()) -> str:
    """The batch script of one notebook's validation (pure): the course's preset on its
    partition, the expected runtime as the time limit, charged to the first of `accounts` (the
    accounting database's for `user`, default first) or else of site.toml's [access]."""
    course = target.course
    options = course.resources.to_options(course.environment)
    options["walltime"] = course.validation.expected_runtime
    access = access_for(site, user)
    if accounts:
        access = replace(access, accounts=accounts)
    request = parse_request(options, site, access)
    python = f"{site.environments[course.environment].prefix}/bin/python"
    spec = BatchSpec(
        name=jobnames.validation_job_name(course.name),
        request=request,
        output=str(target.log_path),
        setup=(),
        body=(f"exec {shlex.join(execute_argv(python, target))}",),
        hooks=site_hooks(site, course.environment),
    )
    return render_batch(spec)


def prepare(snapshots: list[Snapshot], root: Path, user: str) -> None:
    """Create the run's directory and put each course's sources in it, as the validating
    account: root hands over a tar of what it read without following links, and never
    creates, changes or chowns anything under the account's home itself."""
    courses = {s.course().name: s for s in snapshots}
    archive = as_tar({f"sources/{name}": s for name, s in courses.items()}, tuple(courses))
    unpack(user, root, archive)


def result_of(target: Target, state: str = "", text: str | None = None, log: str = ""):
    """The notebook's result from the text of its result file, or a failure saying how its
    job ended without one (with the end of its `log`) (pure)."""
    if text is not None:
        try:
            return NotebookResult.from_json(text)
        except (ValueError, TypeError, KeyError):
            return NotebookResult(
                target.course.name, target.notebook, "failed", 0.0, "unreadable result file"
            )
    ended = f"its job ended {state}" if state else "it ended"
    return NotebookResult(
        target.course.name,
        target.notebook,
        "failed",
        0.0,
        f"no result: {ended} before the notebook finished. {clean_text(log)}".strip(),
    )


async def collect(target: Target, user: str, state: str = "") -> NotebookResult:
    """Read the notebook's result (or its log's end) back, as the validating account."""
    raw = await read_as_async(user, target.result_path, RESULT_LIMIT)
    if raw is not None:
        return result_of(target, state, raw.decode("utf-8", errors="replace"))
    log = await read_as_async(user, target.log_path, LOG_TAIL, tail=True)
    return result_of(target, state, None, (log or b"").decode("utf-8", errors="replace"))


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
        "LOGNAME": user,
        SITE_ENV: json.dumps(public_site_data(site)),
    }


async def run_local(
    targets: list[Target], env: dict[str, str], python: str, jobs: int, progress: Progress
):
    """Each notebook as a process of the validating account, `jobs` at a time; the account's
    own shell opens its log (root opens nothing in the account's directories)."""
    user = env["USER"]
    gate = asyncio.Semaphore(max(jobs, 1))

    async def one(target: Target) -> NotebookResult:
        async with gate:
            shell = ["/bin/sh", "-c", _LOGGED, "sh", str(target.log_path)]
            proc = await asyncio.create_subprocess_exec(
                *as_account(user, [*shell, *execute_argv(python, target)]),
                stdin=asyncio.subprocess.DEVNULL,
                cwd="/",
                env=env,
            )
            code = await proc.wait()
            result = await collect(target, user, f"with exit code {code}")
            progress(result)
            return result

    return await asyncio.gather(*(one(t) for t in targets))


async def run_slurm(
    targets: list[Target], site: Site, env: dict[str, str], client: SlurmClient, progress: Progress
) -> list[NotebookResult]:
    """Each notebook as a Slurm job of the validating account; all run in parallel."""
    user, home = env["USER"], env["HOME"]
    associations = await client.associations(user)  # None: no accounting database
    accounts = associations.accounts if associations is not None else ()
    jobs: dict[str, Target] = {}
    results: dict[str, NotebookResult] = {}
    for target in targets:
        try:
            job_id = await client.submit(
                validation_script(target, site, user, accounts), user=user, env=env, cwd=home
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
                result = await collect(target, user, info.state if info else "")
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


def recorded_outputs(reference, run, compare: bool) -> tuple[list, int | None]:
    """What `--record` stores for a code cell (pure): the run's outputs when validation compares
    them; nothing when it does not (``NBVAL_IGNORE_OUTPUT``, ``nbval-skip``): those outputs are
    this run's (job ids, nodes, times, paths, widget text) and would be stale for a learner."""
    options = cell_options(reference, compare)
    if options.get("skip") or not options.get("check"):
        return [], None
    return run.outputs, run.execution_count


def record_outputs(target: Target, result: NotebookResult, user: str, source: Snapshot) -> str:
    """Make this run's outputs the notebook's reference outputs (`validate --record`), when
    every cell ran; returns what was done. The run is the one a learner sees (without the
    solutions, see `execute.validate_notebook`); cells whose outputs are not compared are
    stored empty. The run is read back as the validating account;
    the reference is the notebook as it was read for this run, and the course's file is
    replaced without following a link."""
    executed = target.workdir / f"{Path(target.notebook).stem}.executed.ipynb"
    # a run with no cell results never ran through (its job was cancelled or died): the
    # notebook papermill left behind holds only the cells it got to
    failed = not result.cells or any(
        c.status in ("error", "timeout", "dead-kernel", "not-run") for c in result.cells
    )
    ran_text = None if failed else read_as(user, executed, EXECUTED_LIMIT)
    if ran_text is None:
        return f"not recorded: {target.label} did not run through ({result.message[:120]})"
    try:
        reference = nbformat.reads(source.files[target.notebook].decode("utf-8"), as_version=4)
        ran = course_cells(nbformat.reads(ran_text.decode("utf-8"), as_version=4).cells)
        compare = target.course.validation.compare_outputs
        for ref, run in zip(reference.cells, ran, strict=True):
            ref.metadata.pop("papermill", None)
            if ref.cell_type == "code":
                ref.outputs, ref.execution_count = recorded_outputs(ref, run, compare)
    except (KeyError, ValueError, AttributeError) as exc:  # a file changed or cut off
        return f"not recorded: {target.label}: {type(exc).__name__}"
    reference.metadata.pop("papermill", None)
    replace_file(target.course.path, target.notebook, nbformat.writes(reference).encode())
    return f"recorded: {target.label}"
