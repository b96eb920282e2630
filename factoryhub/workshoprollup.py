"""Slurm's rolled-up usage of a workshop (`sreport`) beside its per-job accounting (`sacct`)
(pure).

`sreport` reads what slurmdbd rolls up once an hour, so it covers whole hours that have been
rolled up; the report compares it with `sacct` cut to the same hours (`--truncate`), and says
"not rolled up yet" for a slot that has no such hour (`workshop report NAME` writes the report
again later). They can differ for an hour rolled up while slurmctld was restarting (late job
records): the report says so rather than choosing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .workshop import TIME_FORMAT
from .workshoprecord import Workshop
from .workshopreport import AccountedJob

ROLLUP_MARGIN = timedelta(minutes=10)  # slurmdbd rolls an hour up shortly after it ends
AGREE_HOURS = 0.002  # sreport and sacct agree within this (rounding of seconds per job)


@dataclass(frozen=True)
class RolledUp:
    """`sreport` usage of one account in a window, in TRES-seconds: the account's total and
    per user."""

    total: Mapping[str, int]
    users: Mapping[str, Mapping[str, int]]


def parse_sreport(text: str, account: str) -> RolledUp:
    """`sreport -nP cluster AccountUtilizationByUser account=A … -t seconds -T cpu,gres/gpu`
    (pure): rows `cluster|account|login|proper name|TRES|used`; the row with no login is the
    account's total. Rows of other accounts and malformed rows are left out."""
    total: dict[str, int] = {}
    users: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 6 or fields[1] != account or not fields[5].isdigit():
            continue
        login, tres, used = fields[2], fields[4], int(fields[5])
        into = users.setdefault(login, {}) if login else total
        into[tres] = into.get(tres, 0) + used
    return RolledUp(total, users)


def rollup_window(workshop: Workshop, now: datetime) -> tuple[datetime, datetime] | None:
    """The whole hours of the slot that slurmdbd has rolled up by `now` (from the hour the
    slot starts in to the last hour ended `ROLLUP_MARGIN` ago, at most the hour the slot ends
    in); None when there is none yet."""
    start = workshop.start_time.replace(minute=0, second=0)
    last = (now - ROLLUP_MARGIN).replace(minute=0, second=0, microsecond=0)
    end_time = datetime.strptime(workshop.ended or workshop.end, TIME_FORMAT)
    slot_end = end_time.replace(minute=0, second=0)
    if slot_end < end_time:
        slot_end += timedelta(hours=1)
    end = min(last, slot_end)
    return (start, end) if end > start else None


@dataclass(frozen=True)
class SreportCheck:
    """Slurm's rolled-up figures for the slot's whole hours beside sacct's for the same
    hours: whether they agree (None: no hour rolled up yet)."""

    window_start: str
    window_end: str
    sreport_cpu_hours: float
    sreport_gpu_hours: float
    sacct_cpu_hours: float
    sacct_gpu_hours: float
    agree: bool | None
    covers_slot: bool  # the window holds every job: sreport's totals are the report's

    def sentence(self) -> str:
        if self.agree is None:
            return (
                "sreport: Slurm has not rolled up an hour of this slot yet (slurmdbd does so"
                " hourly); run `factoryhub workshop report` again after the next hour."
            )
        figures = (
            f"sreport {self.sreport_cpu_hours:g} CPU-hours, {self.sreport_gpu_hours:g}"
            f" GPU-hours for {self.window_start} to {self.window_end}; sacct for the same"
            f" hours {self.sacct_cpu_hours:g} CPU-hours, {self.sacct_gpu_hours:g} GPU-hours"
        )
        verdict = "they agree" if self.agree else "they DIFFER: ask the site's Slurm admins"
        return f"{figures}: {verdict}."


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 4)


def sreport_check(
    window: tuple[datetime, datetime] | None,
    rolled: RolledUp | None,
    truncated: list[AccountedJob],
    jobs: list[AccountedJob],
    account: str,
) -> SreportCheck:
    """`rolled` (sreport for `window`) against `truncated` (sacct --truncate for the same
    window); `jobs` (whole jobs) tells whether the window holds all of them."""
    if window is None or rolled is None:
        return SreportCheck("", "", 0.0, 0.0, 0.0, 0.0, None, False)
    mine = [j for j in truncated if j.account == account]
    sacct_cpu = _hours(sum(j.cpus * j.seconds for j in mine))
    sacct_gpu = _hours(sum(j.gpus * j.seconds for j in mine))
    cpu = _hours(rolled.total.get("cpu", 0))
    gpu = _hours(rolled.total.get("gres/gpu", 0))
    whole = sum(j.cpus * j.seconds for j in jobs if j.account == account)
    return SreportCheck(
        window_start=window[0].strftime(TIME_FORMAT),
        window_end=window[1].strftime(TIME_FORMAT),
        sreport_cpu_hours=cpu,
        sreport_gpu_hours=gpu,
        sacct_cpu_hours=sacct_cpu,
        sacct_gpu_hours=sacct_gpu,
        agree=abs(cpu - sacct_cpu) <= AGREE_HOURS and abs(gpu - sacct_gpu) <= AGREE_HOURS,
        covers_slot=abs(_hours(whole) - sacct_cpu) <= AGREE_HOURS,
    )
