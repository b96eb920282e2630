"""The trainers' view of a workshop's cohort (pure): one row per seat — the name the learner
joined with, the state of the seat's session in plain words (a queued one with the reason),
its node and time left, its progress through the course and its energy so far — from the seat
claims, the jobs Slurm lists, the progress the seats reported and Slurm's accounting."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from .energy import EnergyFigure
from .jobnames import session_job_name
from .jobstate import Phase, classify_state
from .reasons import explain_pending
from .slurmoutput import JobInfo
from .workshopprogress import SeatProgress, energy_words
from .workshoprecord import Workshop


@dataclass(frozen=True)
class SeatRow:
    seat: str
    display_name: str  # "" while nobody holds the seat
    state: str  # free, not started, queued, starting, running, paused, stopped, failed
    detail: str  # the queue reason in words, the end state, …
    node: str
    time_left: str
    job_id: str
    notebooks_opened: int = 0
    cells_run: int = 0
    exercises_passed: int = 0
    notebooks_completed: int = 0
    energy: str = ""  # "3.2 Wh (estimated)"; "" before the seat's first job

    def to_json(self) -> dict[str, str | int]:
        return asdict(self)


_ENDED_BADLY = ("FAILED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "TIMEOUT", "DEADLINE")


def _state(job: JobInfo) -> tuple[str, str]:
    phase = classify_state(job.state)
    word = job.state.split(" ", 1)[0].rstrip("+").upper()
    if phase is Phase.QUEUED:
        return "queued", explain_pending(job.reason)
    if phase is Phase.ENDED:
        return ("failed" if word in _ENDED_BADLY else "stopped"), word.lower()
    if phase is Phase.ENDING:
        return "stopped", "ending"
    return phase.value, ""


def _latest(jobs: Iterable[JobInfo]) -> JobInfo | None:
    ordered = sorted(jobs, key=lambda j: int(j.job_id) if j.job_id.isdigit() else -1)
    return ordered[-1] if ordered else None


def cohort_rows(
    workshop: Workshop,
    names: Mapping[str, str],
    jobs: Iterable[JobInfo],
    progress: Mapping[str, SeatProgress] | None = None,
    energy: Mapping[str, EnergyFigure] | None = None,
) -> list[SeatRow]:
    """A row per seat: `names` are the claims (seat -> display name), `jobs` what Slurm lists
    (only each seat's own default-server session counts), `progress` what the seats reported,
    `energy` each seat's energy so far (all its jobs on the workshop's account)."""
    progress, energy = progress or {}, energy or {}
    by_seat: dict[str, list[JobInfo]] = {}
    for job in jobs:
        if job.user in workshop.seats and job.name == session_job_name(
            workshop.hub_id, job.user, ""
        ):
            by_seat.setdefault(job.user, []).append(job)
    rows = []
    for seat in workshop.seats:
        job = _latest(by_seat.get(seat, ()))
        if seat not in names:
            state, detail = "free", ""
        elif job is None:
            state, detail = "not started", ""
        else:
            state, detail = _state(job)
        live = job is not None and state in ("running", "starting", "paused")
        rows.append(
            SeatRow(
                seat=seat,
                display_name=names.get(seat, ""),
                state=state,
                detail=detail,
                node=job.nodes if live else "",
                time_left=job.time_left if live else "",
                job_id=job.job_id if job is not None else "",
                notebooks_opened=progress.get(seat, SeatProgress()).notebooks_opened,
                cells_run=progress.get(seat, SeatProgress()).cells_run,
                exercises_passed=progress.get(seat, SeatProgress()).exercises_passed,
                notebooks_completed=progress.get(seat, SeatProgress()).notebooks_completed,
                energy=energy_words(energy.get(seat)),
            )
        )
    return rows
