"""Slurm's pending reasons (`squeue -o %r`) in sentences a learner can act on."""

from __future__ import annotations

_REASONS: dict[str, str] = {
    "None": "the scheduler has not looked at it yet; this takes a few seconds.",
    "Resources": "waiting for the resources you asked for to free up.",
    "Priority": "other jobs with higher priority are ahead of you.",
    "PartitionTimeLimit": "the walltime you asked for is longer than the partition allows;"
    " stop and ask for less.",
    "PartitionNodeLimit": "you asked for more nodes than the partition allows; stop and ask for"
    " fewer.",
    "PartitionDown": "the partition is down for maintenance; the job waits until it returns.",
    "PartitionInactive": "the partition is not accepting jobs right now; it waits until it is.",
    "ReqNodeNotAvail": "the nodes that fit your request are down or reserved; the job waits"
    " until they return.",
    "NodeDown": "a node the job needs is down; the job waits until it returns.",
    "BeginTime": "the job may not start before its begin time (for example after a requeue).",
    "Dependency": "waiting for another job to finish first.",
    "DependencyNeverSatisfied": "the job it depends on failed, so it can never start; stop it.",
    "JobHeldUser": "held by you; release it with `scontrol release`.",
    "JobHeldAdmin": "held by an administrator; ask support.",
    "Reservation": "waiting for its reservation to start.",
    "BadConstraints": "no node has the features you asked for; stop and change the request.",
    "InvalidAccount": "the account is not valid for you; stop and choose another account.",
    "InvalidQOS": "the quality of service is not valid for you; stop and choose another.",
    "Licenses": "waiting for a software licence to free up.",
    "launch failed requeued held": "the job failed to start on its node and is held; ask support.",
}

# Families of limit reasons (QOSMaxGRESPerUser, AssocGrpCpuLimit, …): what they share.
_FAMILIES: tuple[tuple[str, str], ...] = (
    (
        "QOSMax",
        "you already use as much as your quality of service allows at once (%s);"
        " it starts when one of your other jobs ends, or stop one.",
    ),
    (
        "QOSGrp",
        "your quality of service's group limit is reached (%s); it starts when others'"
        " jobs under the same QoS end.",
    ),
    (
        "AssocMax",
        "your account's per-job or per-user limit is reached (%s); stop another job or"
        " ask for less.",
    ),
    (
        "AssocGrp",
        "your account's shared budget or limit is reached (%s); ask your project lead or support.",
    ),
    ("MaxCpuPerAccount", "your account already uses as many CPUs as it may (%s)."),
)


def explain_pending(reason: str) -> str:
    """A sentence for a pending reason; unknown reasons are shown as Slurm wrote them."""
    key = reason.split(",", 1)[0].strip()
    if key in _REASONS:
        return _REASONS[key]
    for prefix, sentence in _FAMILIES:
        if key.startswith(prefix):
            return sentence % key
    return f"Slurm says {reason[:80]!r}."


# Submission refusals (`sbatch`/`salloc` errors): the phrase Slurm prints, and what it means.
_REFUSALS: tuple[tuple[str, str], ...] = (
    (
        "Invalid account",
        "Slurm does not let you charge that account (or not on this partition); choose another"
        " account, or ask your support team to add you to one.",
    ),
    (
        "Invalid qos",
        "that quality of service is not yours, or not allowed on this partition; choose another.",
    ),
    (
        "violates accounting/QOS policy",
        "the request is over a limit of your account or quality of service{limit}; ask for less or"
        " choose another QoS.",
    ),
)


def explain_refusal(message: str) -> str:
    """What a refused submission means, then Slurm's own last line (pure)."""
    last = message.strip().splitlines()[-1][:200] if message.strip() else ""
    limit = next(
        (w for w in message.replace(":", " ").split() if w.startswith(("QOS", "Assoc"))), ""
    )
    for phrase, sentence in _REFUSALS:
        if phrase.lower() in message.lower():
            text = sentence.format(limit=f" ({limit})" if limit else "")
            return f"{text} (Slurm: {last})"
    return last
