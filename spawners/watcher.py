"""One `squeue` for every tracked job, shared by all spawners of a hub process.

Spawners ask for a snapshot no older than they can bear; concurrent asks share one in-flight
query, so fifty polls in the same second cost one scheduler call. A failed query yields a
snapshot marked unavailable: callers treat the jobs as "unknown, keep", never as gone.

A job is known only as the hub recorded it: its id, its user and its name. A record whose user or
name differs (the owner renamed the job, or it is not the job the hub submitted) is left out and
logged: to the hub that job is gone, and nothing is done to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from factoryhub.scheduler.slurm import JobInfo, SchedulerUnavailable, SlurmClient, SlurmError

QUERY_MARGIN = 10.0  # seconds a shared query may run past the client's command deadline


@dataclass(frozen=True)
class Snapshot:
    """The scheduler's view of the tracked jobs at one moment."""

    taken: float
    asked: frozenset[str] = frozenset()  # ids the query covered (absent ones are unknown)
    jobs: dict[str, JobInfo] = field(default_factory=dict)
    error: str = ""  # non-empty: the scheduler did not answer; nothing here is known

    @property
    def ok(self) -> bool:
        return not self.error


class JobWatcher:
    """Tracks job ids and answers "what is their state" with coalesced `squeue` calls."""

    def __init__(self, client: SlurmClient, log: logging.Logger | None = None) -> None:
        self.client = client
        self.log = log or logging.getLogger(__name__)
        self._tracked: dict[str, int] = {}
        self._owners: dict[str, tuple[str, str]] = {}  # job id -> (user, job name) recorded
        self._latest = Snapshot(taken=0.0, error="not queried yet")
        self._inflight: asyncio.Future[Snapshot] | None = None

    def owned_by_another(self, job_id: str, user: str, name: str) -> bool:
        """Whether `job_id` is watched already as another user's or another server's job."""
        return self._owners.get(job_id, (user, name)) != (user, name)

    def track(self, job_id: str, user: str = "", name: str = "") -> None:
        """Watch `job_id`; with `user` and `name`, only a record of that user and name counts.
        A job watched as another's stays theirs (ValueError): a start that says an id it was
        not granted must not take a job, and so a session, from its owner."""
        if user and self.owned_by_another(job_id, user, name):
            raise ValueError(f"job {job_id} is watched as another session's")
        self._tracked[job_id] = self._tracked.get(job_id, 0) + 1
        if user:
            self._owners[job_id] = (user, name)

    def untrack(self, job_id: str) -> None:
        count = self._tracked.get(job_id, 0) - 1
        if count > 0:
            self._tracked[job_id] = count
        else:
            self._tracked.pop(job_id, None)
            self._owners.pop(job_id, None)

    @property
    def tracked(self) -> frozenset[str]:
        return frozenset(self._tracked)

    async def snapshot(self, max_age: float) -> Snapshot:
        """A snapshot taken at most `max_age` seconds ago that covers every tracked job."""
        latest = self._latest
        fresh = time.monotonic() - latest.taken <= max_age
        if fresh and latest.ok and self.tracked <= latest.asked:
            return latest
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._query())
        inflight = self._inflight
        return await asyncio.shield(inflight)

    async def _query(self) -> Snapshot:
        asked = frozenset(self._tracked)
        started = time.monotonic()
        # Every spawner waiting for a look shares this one query: it may never take longer
        # than the client's own deadline and a margin, whatever it awaits.
        deadline = getattr(self.client, "timeout", 20.0) + QUERY_MARGIN
        try:
            jobs = await asyncio.wait_for(self.client.query(asked), deadline)
            snap = Snapshot(taken=started, asked=asked, jobs=self._as_recorded(jobs))
        except TimeoutError as exc:
            self.log.warning(
                "squeue gave no answer within %g s (its deadline and %g s); looking again",
                deadline,
                QUERY_MARGIN,
                exc_info=exc,  # where the query was stuck, for whoever reads the log
            )
            snap = Snapshot(taken=started, asked=asked, error=f"no answer within {deadline:g} s")
        except SchedulerUnavailable as exc:
            snap = Snapshot(taken=started, asked=asked, error=str(exc))
        except SlurmError as exc:
            snap = Snapshot(taken=started, asked=asked, error=f"unexpected scheduler answer: {exc}")
        finally:
            self._inflight = None
        if snap.ok != self._latest.ok and self._latest.taken:  # say so once per change
            if snap.ok:
                self.log.info("scheduler answers again; job states known")
            else:
                self.log.warning("scheduler not answering (%s); keeping every server", snap.error)
        self._latest = snap
        return snap

    def _as_recorded(self, jobs: dict[str, JobInfo]) -> dict[str, JobInfo]:
        kept = {}
        for job_id, info in jobs.items():
            owner = self._owners.get(job_id)
            if owner is not None and (info.user, info.name) != owner:
                self.log.warning(
                    "job %s is %s's %.80r, not the recorded %s's %.80r: left out",
                    job_id,
                    info.user,
                    info.name,
                    owner[0],
                    owner[1],
                )
                continue
            kept[job_id] = info
        return kept


_WATCHERS: WeakKeyDictionary[SlurmClient, JobWatcher] = WeakKeyDictionary()


def shared_watcher(client: SlurmClient, log: logging.Logger) -> JobWatcher:
    """One watcher per hub process and Slurm client, shared by every spawner (keyed as the
    caches of `factoryhub.scheduler.livesite` are: one client per installation)."""
    if client not in _WATCHERS:
        _WATCHERS[client] = JobWatcher(client, log)
    return _WATCHERS[client]
