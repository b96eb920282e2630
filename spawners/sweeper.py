"""Orphan sweep (invariant I1): a Slurm job this hub tagged must belong to a server record.
The same sweep ends Dask worker jobs whose session is over (F19).

A job named ``fh:<hub_id>:…`` whose id no spawner state in the hub's database holds — a
restored database, a record deleted by hand — would run a server no route leads to. The
sweep cancels such jobs, and only those: submitted longer ago than a grace period (a spawn
commits its job id within milliseconds of `sbatch`), still queued or running, named with this
hub's tag and the job's own user, and not the job of a start this process has in flight
(`starting`: on a loaded host the moment between Slurm granting a job and the hub recording it
can outlast the grace). Its
decisions are pure (`orphans`); the thin edge reads Slurm (as JSON: no job can forge another's
record) and the database, and each `scancel` names the job's user, so it can end no one else's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Set
from datetime import datetime, timedelta

from jupyterhub import orm
from sqlalchemy.orm import Session

from factoryhub import jobnames
from factoryhub.jobstate import Phase, classify_state
from factoryhub.scheduler.slurm import JobInfo, SlurmClient, SlurmError
from factoryhub.site import SlurmSettings


def orphans(
    jobs: Iterable[JobInfo],
    hub_id: str,
    recorded: set[str],
    now: datetime,
    grace: float,
    starting: Set[str] = frozenset(),
) -> list[JobInfo]:
    """The jobs to cancel (pure); `starting` holds the job names of starts in flight."""
    found = []
    for job in jobs:
        owner = jobnames.session_owner(job.name, hub_id)
        if owner is None or job.job_id in recorded or job.name in starting:
            continue
        if owner != job.user:
            continue  # not a job this hub made: it names its owner in every job it submits
        if classify_state(job.state) in (Phase.ENDED, Phase.ENDING):
            continue
        try:
            submitted = datetime.fromisoformat(job.submit)
        except ValueError:
            continue  # no submit time: leave it alone
        if now - submitted >= timedelta(seconds=grace):
            found.append(job)
    return found


def orphaned_workers(jobs: Iterable[JobInfo]) -> list[JobInfo]:
    """Dask worker jobs whose session job is no longer queued or running (pure). `jobs` must
    be every job Slurm lists, so a live session is never missed."""
    jobs = list(jobs)
    live = {
        (j.job_id, j.user)
        for j in jobs
        if classify_state(j.state) not in (Phase.ENDED, Phase.ENDING)
    }
    found = []
    for job in jobs:
        session = jobnames.worker_session(job.name)
        if session is None:
            continue
        if (session, job.user) in live:  # a worker names its session; both are one user's
            continue
        if classify_state(job.state) not in (Phase.ENDED, Phase.ENDING):
            found.append(job)
    return found


async def cancel_session_workers(
    client: SlurmClient, session_job: str, user: str, log: logging.Logger
) -> int:
    """Cancel the Dask worker jobs `user`'s session's kernels started; how many were."""
    try:
        workers = await client.tagged_jobs(jobnames.worker_prefix(session_job))
    except SlurmError as exc:
        log.warning("Dask workers of job %s not looked for: %s", session_job, exc)
        return 0
    workers = [job for job in workers if job.user == user]
    return len(await _cancel_each(client, workers, "Dask worker of an ended session", log))


async def _cancel_each(
    client: SlurmClient, jobs: Iterable[JobInfo], why: str, log: logging.Logger
) -> list[str]:
    cancelled = []
    for job in jobs:
        log.warning("cancelling job %s (%s): %s", job.job_id, job.name, why)
        try:
            await client.cancel(job.job_id, job.user)
            cancelled.append(job.job_id)
        except SlurmError as exc:
            log.error("cancelling job %s failed: %s", job.job_id, exc)
    return cancelled


async def sweep_once(
    client: SlurmClient,
    hub_id: str,
    recorded_ids: Callable[[], set[str]],
    grace: float,
    log: logging.Logger,
) -> list[str]:
    """Cancel this hub's orphaned jobs; return their ids. Slurm is read before the database,
    so a job submitted meanwhile is either in the database already or inside the grace."""
    try:
        jobs = await client.tagged_jobs("")
    except SlurmError as exc:
        log.warning("orphan sweep skipped: %s", exc)
        return []
    # in that order: a start that left `_STARTING` before this copy has recorded its job
    starting = frozenset(_STARTING)
    found = orphans(jobs, hub_id, recorded_ids(), datetime.now(), grace, starting)
    found += orphaned_workers(jobs)
    return await _cancel_each(client, found, "no live server or session holds it", log)


async def _sweep_forever(interval: float, log: logging.Logger, **kwargs: object) -> None:
    """Sweep every `interval` seconds for the life of the hub: an unexpected error (a database
    hiccup, a bug) is logged, with its traceback the first time it is seen in a row, and the
    next sweep runs as usual."""
    last_failure = ""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_once(log=log, **kwargs)
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            log.error(
                "orphan sweep failed, next in %gs: %s",
                interval,
                failure,
                exc_info=failure != last_failure,
            )
            last_failure = failure
        else:
            last_failure = ""


def recorded_job_ids(session: Session) -> set[str]:
    """Every job id a spawner state in the hub's database holds."""
    rows = session.query(orm.Spawner.state).all()
    return {str(state["job_id"]) for (state,) in rows if state and state.get("job_id")}


_SWEEPS: dict[str, asyncio.Task] = {}  # one sweep per hub id in a process
_STARTING: collections.Counter[str] = collections.Counter()  # job names of starts in flight


@contextlib.contextmanager
def starting(job_name: str) -> Iterator[None]:
    """Mark a start in flight until its job id is recorded (or it failed)."""
    _STARTING[job_name] += 1
    try:
        yield
    finally:
        _STARTING[job_name] -= 1
        if _STARTING[job_name] <= 0:
            del _STARTING[job_name]


def ensure_sweep(
    hub_id: str,
    settings: SlurmSettings,
    client: SlurmClient,
    session: Session,
    log: logging.Logger,
) -> None:
    """Start the sweep for `hub_id` unless it runs or the site turned it off."""
    if hub_id in _SWEEPS or not settings.sweep_interval:
        return
    _SWEEPS[hub_id] = asyncio.ensure_future(
        _sweep_forever(
            settings.sweep_interval,
            client=client,
            hub_id=hub_id,
            recorded_ids=lambda: recorded_job_ids(session),
            grace=settings.orphan_grace,
            log=log,
        )
    )
