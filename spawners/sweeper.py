"""Orphan sweep (invariant I1): a Slurm job this hub tagged must belong to a server record.

A job named ``fh:<hub_id>:…`` whose id no spawner state in the hub's database holds — a
restored database, a record deleted by hand — would run a server no route leads to. The
sweep cancels such jobs, and only those: submitted longer ago than a grace period (a spawn
commits its job id within milliseconds of `sbatch`), still queued or running, and named with
this hub's tag. Its decisions are pure (`orphans`); the thin edge reads Slurm and the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from jupyterhub import orm
from sqlalchemy.orm import Session

from factoryhub.jobstate import Phase, classify_state
from factoryhub.site import SlurmSettings
from factoryhub.slurm import JobInfo, SlurmClient, SlurmError


def orphans(
    jobs: Iterable[JobInfo], hub_id: str, recorded: set[str], now: datetime, grace: float
) -> list[JobInfo]:
    """The jobs to cancel (pure)."""
    tag = f"fh:{hub_id}:"
    found = []
    for job in jobs:
        if not job.name.startswith(tag) or job.job_id in recorded:
            continue
        if classify_state(job.state) in (Phase.ENDED, Phase.ENDING):
            continue
        try:
            submitted = datetime.fromisoformat(job.start)
        except ValueError:
            continue  # no submit time: leave it alone
        if now - submitted >= timedelta(seconds=grace):
            found.append(job)
    return found


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
        jobs = await client.tagged_jobs(f"fh:{hub_id}:")
    except SlurmError as exc:
        log.warning("orphan sweep skipped: %s", exc)
        return []
    cancelled = []
    for job in orphans(jobs, hub_id, recorded_ids(), datetime.now(), grace):
        log.warning(
            "cancelling orphaned job %s (%s): no server record holds it", job.job_id, job.name
        )
        try:
            await client.cancel(job.job_id)
            cancelled.append(job.job_id)
        except SlurmError as exc:
            log.error("cancelling orphaned job %s failed: %s", job.job_id, exc)
    return cancelled


async def _sweep_forever(interval: float, **kwargs: object) -> None:
    while True:
        await asyncio.sleep(interval)
        await sweep_once(**kwargs)


def recorded_job_ids(session: Session) -> set[str]:
    """Every job id a spawner state in the hub's database holds."""
    rows = session.query(orm.Spawner.state).all()
    return {str(state["job_id"]) for (state,) in rows if state and state.get("job_id")}


_SWEEPS: dict[str, asyncio.Task] = {}  # one sweep per hub id in a process


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
