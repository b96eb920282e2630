"""A learner's jobs as rows a person reads (pure): what each is, its state in words, why it
waits, when it should start, time used and left, resources and energy.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from factoryhub import jobnames
from factoryhub.durations import DurationError, describe_seconds, parse_seconds
from factoryhub.energy import EnergyFigure, JobUsage, job_energy
from factoryhub.estimate import phrase_start
from factoryhub.jobstate import Phase, classify_state
from factoryhub.reasons import explain_pending
from factoryhub.scheduler.slurm import UserJob
from factoryhub.site import Site
from factoryhub.slurmoutput import gpus_of

LIVE_PHASES = (Phase.QUEUED, Phase.STARTING, Phase.RUNNING, Phase.PAUSED)


@dataclass(frozen=True)
class JobRow:
    """One job, ready to show."""

    job_id: str
    what: str  # "JupyterLab session", "Dask worker", "batch: train"
    state: str  # Slurm's word
    phase: Phase
    detail: str  # the pending reason in words, or where it runs
    expected_start: str
    elapsed_s: int
    left_s: int | None
    resources: str
    usage: JobUsage
    energy: EnergyFigure

    @property
    def cancellable(self) -> bool:
        return self.phase in LIVE_PHASES


def describe_job(name: str, hub_id: str) -> str:
    """What a job is, from its name (the tags FactoryHub's own jobs carry)."""
    return jobnames.describe(name, hub_id)


def _seconds(text: str) -> int | None:
    try:
        return parse_seconds(text)
    except DurationError:
        return None  # "UNLIMITED", "INVALID", "N/A"


def _start(job: UserJob, now: datetime) -> str:
    try:
        start = datetime.fromisoformat(job.start)
    except ValueError:
        return "not yet known"
    return phrase_start(start, now)


def _detail(job: UserJob, phase: Phase) -> str:
    if phase is Phase.QUEUED:
        return explain_pending(job.reason)
    if phase in (Phase.STARTING, Phase.RUNNING, Phase.PAUSED, Phase.ENDING):
        return f"on {job.nodes}" if job.nodes else ""
    return "" if job.reason in ("None", "") else job.reason


def job_row(job: UserJob, site: Site, now: datetime, joules: float | None = None) -> JobRow:
    """One `squeue` row as a `JobRow`."""
    phase = classify_state(job.state)
    gpus, gpu_type = gpus_of(job.tres)
    cpus = int(job.cpus) if job.cpus.isdigit() else 1
    elapsed = _seconds(job.time_used) or 0
    usage = JobUsage(cpus=cpus, seconds=elapsed, gpus=gpus, gpu_type=gpu_type)
    resources = f"{cpus} CPU{'s' if cpus != 1 else ''}"
    if gpus:
        resources += f", {gpus} × {gpu_type or 'GPU'}"
    return JobRow(
        job_id=job.job_id,
        what=describe_job(job.name, site.hub.id),
        state=job.state,
        phase=phase,
        detail=_detail(job, phase),
        expected_start=_start(job, now) if phase is Phase.QUEUED else "",
        elapsed_s=elapsed,
        left_s=_seconds(job.time_left) if phase in LIVE_PHASES else None,
        resources=f"{resources} on {job.partition}",
        usage=usage,
        energy=job_energy(usage, site.energy, joules),
    )


def job_rows(
    jobs: list[UserJob], site: Site, now: datetime, energy: dict[str, float] | None = None
) -> list[JobRow]:
    """All rows, live jobs first, newest first within each group."""
    energy = energy or {}
    rows = [job_row(j, site, now, energy.get(j.job_id)) for j in jobs]
    return sorted(rows, key=lambda r: (r.phase not in LIVE_PHASES, -int(r.job_id.split("_")[0])))


def rows_table(rows: list[JobRow]) -> str:
    """The rows as an HTML table (every value escaped)."""
    if not rows:
        return "<p>You have no jobs in the queue and none ended recently.</p>"
    head = (
        "<tr><th>Job</th><th>What</th><th>State</th><th>Why / where</th><th>Expected start</th>"
        "<th>Elapsed</th><th>Time left</th><th>Resources</th><th>Energy</th></tr>"
    )
    body = []
    for r in rows:
        cells = (
            r.job_id,
            r.what,
            r.state,
            r.detail,
            r.expected_start,
            describe_seconds(r.elapsed_s),
            describe_seconds(r.left_s) if r.left_s is not None else "",
            r.resources,
            r.energy.label(),
        )
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="fh-jobs">{head}{"".join(body)}</table>'
