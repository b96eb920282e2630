"""When would a request start? Phrased for a person, before anything is submitted.

First from the live capacity (pure): a request that fits a node's free resources "starts now";
one that fits no node of the partition at all "cannot start", with the reason. Otherwise Slurm
itself is asked (`sbatch --test-only`, as the learner) and its answer phrased.
"""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from factoryhub.capacity import Capacity, NodeCapacity
from factoryhub.durations import describe_minutes
from factoryhub.slurmapi import SlurmAPI
from factoryhub.slurmoutput import QosLimits, SlurmError, UserJob

from .jobscript import resource_options
from .maintenance import blocking_window, maintenance_notice
from .request import ResourceRequest

SERVICE_NAME = "factoryhub"  # the hub service answering /services/<name>/estimate


@dataclass(frozen=True)
class Estimate:
    """`kind` is one of "now", "later", "never", "unknown"; `message` is what the learner reads."""

    kind: str
    message: str
    start: datetime | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "message": self.message,
            "start": self.start.isoformat() if self.start else None,
        }


def _node_fits(node: NodeCapacity, req: ResourceRequest, *, free: bool) -> bool:
    cpus = node.cpus_idle if free else node.cpus_total
    memory = node.memory_mb - (node.memory_alloc_mb if free else 0)
    gpus = node.gpus_free(req.gpu_type) if free else node.gpus(req.gpu_type)
    return cpus >= req.cpus and memory >= req.memory_gb * 1000 and gpus >= req.gpus


def never_reason(req: ResourceRequest, capacity: Capacity) -> str | None:
    """Why the request can never start in its partition, or None if it could (pure)."""
    part = capacity.partitions.get(req.partition)
    if part is None:
        return f"the scheduler has no partition named {req.partition}"
    if not part.up:
        return f"the {req.partition} partition is not accepting jobs right now"
    if part.max_minutes is not None and req.walltime_minutes > part.max_minutes:
        return f"the {req.partition} partition allows at most {describe_minutes(part.max_minutes)}"
    nodes = capacity.nodes_of(req.partition)
    if any(_node_fits(n, req, free=False) for n in nodes):
        return None
    if req.gpus:
        most = max((n.gpus(req.gpu_type) for n in nodes), default=0)
        return f"the {req.partition} partition has at most {most} {req.gpu_type} GPUs per node"
    most = max((n.cpus_total for n in nodes), default=0)
    return (
        f"no node of the {req.partition} partition has {req.cpus} CPUs and {req.memory_gb} GB"
        f" (largest: {most} CPUs)"
    )


def fits_now(req: ResourceRequest, capacity: Capacity) -> bool:
    """True when a usable node of the partition has the resources free now (pure)."""
    return any(n.usable and _node_fits(n, req, free=True) for n in capacity.nodes_of(req.partition))


def phrase_start(start: datetime, now: datetime) -> str:
    """ "starts now", "expected in about 12 minutes (14:32)", "expected on 3 Dec at 09:00"."""
    wait = start - now
    if wait <= timedelta(seconds=60):
        return "starts now"
    minutes = round(wait.total_seconds() / 60)
    if wait < timedelta(hours=20):
        return f"expected in about {describe_minutes(minutes)} ({start:%H:%M})"
    return f"expected on {start:%-d %b} at {start:%H:%M}"


_TEST_ONLY = re.compile(r"to start at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


def parse_test_only(text: str) -> datetime | None:
    """The start time in `sbatch --test-only`'s answer."""
    match = _TEST_ONLY.search(text)
    return datetime.fromisoformat(match.group(1)) if match else None


def estimate_from_capacity(req: ResourceRequest, capacity: Capacity) -> Estimate | None:
    """An estimate the live capacity alone can give, or None when Slurm must be asked."""
    reason = never_reason(req, capacity)
    if reason:
        return Estimate("never", f"cannot start: {reason}")
    if fits_now(req, capacity):
        return Estimate("now", "starts now")
    return None


def estimate_from_slurm(answer: str, now: datetime) -> Estimate:
    start = parse_test_only(answer)
    if start is None:
        return Estimate("unknown", "no estimate: the scheduler gave none")
    return Estimate(
        "later" if start - now > timedelta(seconds=60) else "now", phrase_start(start, now), start
    )


def qos_wait(
    request: ResourceRequest, limits: tuple[QosLimits, ...], jobs: list[UserJob]
) -> str | None:
    """Why `request` must wait for the learner's own running jobs under the same QoS (its
    limit of GPUs at once per user), or None (pure)."""
    limit = next((q for q in limits if q.name == request.qos), None)
    if not request.gpus or limit is None or limit.max_gpus_per_user is None:
        return None
    used = sum(j.gpus for j in jobs if j.state == "RUNNING" and j.qos == request.qos)
    if used + request.gpus <= limit.max_gpus_per_user:
        return None
    return (
        f"waits until one of your GPU jobs ends: the QoS {request.qos} allows"
        f" {limit.max_gpus_per_user} GPUs at once and your running jobs use {used}"
    )


def maintenance_estimate(
    request: ResourceRequest, capacity: Capacity, now: datetime
) -> Estimate | None:
    """A session that would run into a maintenance window of all its partition's nodes starts
    after it (pure): said with when, and what would start now instead."""
    window = blocking_window(capacity, request.partition, request.walltime_minutes, now)
    if window is None:
        return None
    said = maintenance_notice(capacity, request.partition, request.walltime_minutes, now)
    return Estimate("later", said or f"after the maintenance ({window.end:%H:%M})", window.end)


async def estimate_start(
    request: ResourceRequest,
    capacity: Capacity | None,
    client: SlurmAPI,
    user: str,
    limits: tuple[QosLimits, ...] = (),
) -> Estimate:
    """When `request` would start for `user`, asking Slurm only when capacity and the QoS
    `limits` (from the accounting database) cannot tell."""
    if capacity is None:
        return Estimate("unknown", "no estimate: the scheduler is not answering")
    estimate = estimate_from_capacity(request, capacity)
    if estimate is not None and estimate.kind == "never":
        return estimate
    if maintenance := maintenance_estimate(request, capacity, datetime.now()):
        return maintenance
    if request.gpus and any(q.name == request.qos and q.max_gpus_per_user for q in limits):
        try:
            wait = qos_wait(request, limits, await client.user_jobs(user))
        except SlurmError:
            wait = None
        if wait:
            return Estimate("later", wait)
    if estimate is not None:
        return estimate
    try:
        home = pwd.getpwnam(user).pw_dir
        answer = await client.sbatch_test_only(resource_options(request), user=user, cwd=home)
    except (SlurmError, KeyError) as exc:
        return Estimate("unknown", f"no estimate: {str(exc)[:200]}")
    return estimate_from_slurm(answer, datetime.now())
