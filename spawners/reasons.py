"""Slurm's pending reasons (`squeue -o %r`) in sentences a learner can act on."""

from __future__ import annotations

_REASONS: dict[str, str] = {
    "None": "the scheduler has not looked at it yet; this takes a few seconds.",
    "Resources": "waiting for the resources you asked for to free up.",
    "Priority": "other jobs with higher priority are ahead of you.",
    "PartitionTimeLimit": "the walltime you asked for is longer than the partition allows;"
    " stop and ask for less.",
    "ReqNodeNotAvail": "the nodes that fit your request are down or reserved; the job waits"
    " until they return.",
    "BeginTime": "the job may not start before its begin time (for example after a requeue).",
    "Dependency": "waiting for another job to finish first.",
    "JobHeldUser": "held by you; release it with `scontrol release`.",
    "JobHeldAdmin": "held by an administrator; ask support.",
    "Reservation": "waiting for its reservation to start.",
    "QOSMaxGRESPerUser": "you already use as many GPUs as your QoS allows; stop another job.",
}


def explain_pending(reason: str) -> str:
    """A sentence for a pending reason; unknown reasons are shown as Slurm wrote them."""
    key = reason.split(",", 1)[0].strip()
    return _REASONS.get(key, f"Slurm says {reason[:80]!r}.")
