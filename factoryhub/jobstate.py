"""Every Slurm job state, classified explicitly into what it means for a session.

A state this table does not know is `UNKNOWN`: the hub keeps the server and looks again, it
never concludes a job is gone from a word it has not seen.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    """What a Slurm job state means for the server it carries."""

    QUEUED = "queued"  # waiting for resources, held, requeued
    STARTING = "starting"  # allocated, node booting or prolog running
    RUNNING = "running"
    PAUSED = "paused"  # suspended or stopped: the processes exist but do not run
    ENDING = "ending"  # completing: the processes are being killed
    ENDED = "ended"
    UNKNOWN = "unknown"  # a state this table does not know


_PHASES: dict[str, Phase] = {
    "PENDING": Phase.QUEUED,
    "REQUEUED": Phase.QUEUED,
    "REQUEUE_FED": Phase.QUEUED,
    "REQUEUE_HOLD": Phase.QUEUED,
    "EXPEDITING": Phase.QUEUED,  # Slurm 25.11: a requeue being expedited
    "RESV_DEL_HOLD": Phase.QUEUED,
    "CONFIGURING": Phase.STARTING,
    "RUNNING": Phase.RUNNING,
    "RESIZING": Phase.RUNNING,
    "SIGNALING": Phase.RUNNING,
    "STAGE_OUT": Phase.ENDING,
    "SUSPENDED": Phase.PAUSED,
    "STOPPED": Phase.PAUSED,
    "COMPLETING": Phase.ENDING,
    "COMPLETED": Phase.ENDED,
    "CANCELLED": Phase.ENDED,
    "FAILED": Phase.ENDED,
    "TIMEOUT": Phase.ENDED,
    "PREEMPTED": Phase.ENDED,
    "NODE_FAIL": Phase.ENDED,
    "BOOT_FAIL": Phase.ENDED,
    "DEADLINE": Phase.ENDED,
    "OUT_OF_MEMORY": Phase.ENDED,
    "REVOKED": Phase.ENDED,
    "SPECIAL_EXIT": Phase.ENDED,
}

KNOWN_STATES = frozenset(_PHASES)


def classify_state(state: str) -> Phase:
    """The phase of a Slurm state name as `squeue -o %T` prints it.

    Slurm may append flags (``CANCELLED by 0``, ``RUNNING+``); only the first word counts.
    """
    word = state.strip().split(" ", 1)[0].rstrip("+").upper()
    return _PHASES.get(word, Phase.UNKNOWN)
