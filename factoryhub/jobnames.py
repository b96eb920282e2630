"""The names FactoryHub gives the Slurm jobs it submits: one place for every tag (pure).

A job's name is its owner's to change, so a name tells what a job *says* it is; whoever acts on
it checks the job's user too (`factoryhub.spawners.sweeper`)."""

from __future__ import annotations

SESSION = "fh:"  # fh:<hub id>:<user>:<server name>, a learner's JupyterLab
WORKER = "fh-dask-"  # fh-dask-<session job>-<kernel pid>, a Dask worker of a session's kernel
BATCH = "fh-batch-"  # fh-batch-<script>, a batch job from the GPU-request widget
VALIDATION = "fh-validate-"  # fh-validate-<course>, a course's validation job


def session_tag(hub_id: str) -> str:
    """The start of every session job name of the hub `hub_id`."""
    return f"{SESSION}{hub_id}:"


def session_job_name(hub_id: str, user: str, server: str) -> str:
    return f"{session_tag(hub_id)}{user}:{server}"


def session_owner(name: str, hub_id: str) -> str | None:
    """The user a session job's name names, None when it is no session name of this hub."""
    if not name.startswith(session_tag(hub_id)):
        return None
    return name.removeprefix(session_tag(hub_id)).split(":", 1)[0]


def session_server(name: str) -> str:
    """The server name in a session job's name ("" for the default server)."""
    return name.split(":", 3)[3] if name.count(":") >= 3 else ""


def worker_job_name(session_job: str, pid: int) -> str:
    """The name of every worker job of the Dask cluster one kernel starts."""
    return f"{WORKER}{session_job or 'local'}-{pid}"


def worker_prefix(session_job: str) -> str:
    """The start of the name of every Dask worker job a session's kernels start."""
    return f"{WORKER}{session_job}-"


def worker_session(name: str) -> str | None:
    """The session job a worker's name names (digits), None for any other name."""
    if not name.startswith(WORKER):
        return None
    session = name.removeprefix(WORKER).split("-", 1)[0]
    return session if session.isdigit() else None


def batch_job_name(stem: str) -> str:
    return f"{BATCH}{stem}"[:60]


def validation_job_name(course: str) -> str:
    return f"{VALIDATION}{course}"


def describe(name: str, hub_id: str) -> str:
    """What a job is, in words, from its name."""
    if session_owner(name, hub_id) is not None:
        server = session_server(name)
        return f"JupyterLab session{f' ({server})' if server else ''}"
    if name.startswith(WORKER):
        return "Dask worker"
    if name.startswith(BATCH):
        return f"batch: {name.removeprefix(BATCH)}"
    return name
