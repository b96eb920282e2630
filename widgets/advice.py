"""What a learner may ask for instead, when a request goes over a limit (pure).

The spawner's `parse_request` says why a request is refused; this module adds what is possible:
another partition that takes the same request, or the largest value the chosen partition allows.
"""

from __future__ import annotations

from factoryhub.durations import format_minutes
from factoryhub.request import (
    QosLimitError,
    RequestError,
    UserAccess,
    effective_limits,
    parse_request,
    qos_limits_of,
)
from factoryhub.site import Site


def _fits(options: dict[str, object], site: Site, access: UserAccess) -> bool:
    try:
        parse_request(options, site, access)
    except RequestError:
        return False
    return True


def _largest(field: str, partition: str, site: Site, access: UserAccess, qos: str) -> str | None:
    """The most the learner may ask for on `partition`: the partition's limit lowered by
    their QoS's per-job limit (what the scheduler will accept, as the spawn form offers)."""
    limits = effective_limits(site.partitions[partition], qos_limits_of(qos, access))
    return {
        "cpus": f"up to {limits.cpus} CPUs",
        "memory_gb": f"up to {limits.memory_gb} GB of memory",
        "gpus": f"up to {limits.gpus} GPUs" if limits.gpus else None,
        "walltime": f"up to {format_minutes(limits.walltime_minutes)} of walltime",
    }.get(field)


def suggest(options: dict[str, object], error: RequestError, site: Site, access: UserAccess) -> str:
    """One sentence on what would be accepted instead, or "" when there is nothing to offer."""
    chosen = str(options.get("partition", site.session.partition))
    if isinstance(error, QosLimitError):
        fitting = [q for q in access.qos if _fits({**options, "qos": q}, site, access)]
        return f"The {fitting[0]} QoS takes this request as it is." if fitting else ""
    if error.field in ("cpus", "memory_gb", "gpus", "walltime"):
        others = [
            name
            for name in site.partitions
            if name != chosen and _fits({**options, "partition": name}, site, access)
        ]
        if others:
            return f"The {', '.join(others)} partition takes this request as it is."
        qos = str(options.get("qos") or (access.qos[0] if access.qos else ""))
        largest = chosen in site.partitions and _largest(error.field, chosen, site, access, qos)
        if largest:
            return f"On {chosen} you can ask for {largest}."
    if error.field == "gpus" and chosen in site.partitions:
        gpu_parts = [n for n, p in site.partitions.items() if p.max_gpus]
        if gpu_parts:
            return f"GPUs are on the {', '.join(gpu_parts)} partition."
    return ""
