"""Spawn progress for JupyterHub's progress API: an append-only log of events that any number
of followers (browser tabs) read from the start, and plain sentences about a job's state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from factoryhub.estimate import phrase_start
from factoryhub.jobstate import Phase
from factoryhub.reasons import explain_pending
from factoryhub.scheduler.slurm import JobInfo


class ProgressLog:
    """Events of one spawn; `follow()` yields past events, then new ones until `close()`."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def add(self, progress: int, message: str) -> None:
        """Record an event unless it repeats the last message."""
        if self.events and self.events[-1]["message"] == message:
            return
        self.events.append({"progress": progress, "message": message})
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, object]]:
        sent = 0
        while True:
            changed = self._changed
            while sent < len(self.events):
                yield self.events[sent]
                sent += 1
            if self.closed:
                return
            await changed.wait()


def _expected(start: str, now: datetime) -> str:
    try:
        when = datetime.fromisoformat(start)
    except ValueError:
        return ""  # N/A: Slurm has no estimate yet
    return f" Start {phrase_start(when, now)}."


def describe_job(
    info: JobInfo, phase: Phase, position: int | None = None, now: datetime | None = None
) -> tuple[int, str]:
    """(progress %, sentence) for a job seen while its server starts."""
    if phase is Phase.QUEUED:
        place = f", number {position} in line" if position else ""
        wait = _expected(info.start, now or datetime.now())
        reason = explain_pending(info.reason)
        return 20, f"Waiting in the queue (job {info.job_id}{place}): {reason}{wait}"
    if phase is Phase.STARTING:
        return 50, f"Resources allocated on {info.nodes}; the node is preparing the job"
    if phase is Phase.RUNNING:
        return 70, f"Starting JupyterLab on node {info.nodes}"
    if phase is Phase.PAUSED:
        return 40, f"Job {info.job_id} is suspended by the scheduler; it resumes by itself"
    if phase in (Phase.ENDING, Phase.ENDED):
        return 100, f"Job {info.job_id} ended: {info.state} ({info.reason})"
    return 30, f"Job {info.job_id} is in state {info.state}"
