"""What a workshop hands out and what it reports (pure): the room's handout (CSV and a
printable page; with per-seat codes, a line and a slip per seat) and the usage and results
report (per seat and in total: CPU-hours, GPU-hours, energy, jobs from Slurm's per-job
accounting, `sacct`; notebooks opened and completed and exercises passed from the seats'
progress) as JSON, CSV and HTML, with Slurm's own rolled-up totals beside them and whether the
two agree (`factoryhub.workshoprollup`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from html import escape
from typing import TYPE_CHECKING

from .energy import JobUsage, job_energy
from .site import EnergySettings
from .workshoprecord import Workshop

if TYPE_CHECKING:
    from .workshoprollup import SreportCheck

# sacct --allocations --parsable2 --noheader --format=…: no field a learner can write
SACCT_FORMAT = "JobID,User,Account,State,ElapsedRaw,AllocTRES,ConsumedEnergyRaw"


@dataclass(frozen=True)
class AccountedJob:
    """One allocation as Slurm's accounting database has it."""

    job_id: str
    user: str
    account: str
    state: str
    seconds: int
    cpus: int
    gpus: int
    joules: float | None  # measured energy where Slurm gathers it


def _tres(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _int(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() else 0


def parse_sacct(text: str) -> list[AccountedJob]:
    """`sacct` rows in `SACCT_FORMAT` (pure); a malformed row is left out."""
    jobs = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 7:
            continue
        job_id, user, account, state, elapsed, tres, energy = fields
        if not job_id.split("_")[0].isdigit():
            continue
        alloc = _tres(tres)
        joules = float(energy) if energy.replace(".", "", 1).isdigit() else None
        jobs.append(
            AccountedJob(
                job_id=job_id,
                user=user,
                account=account,
                state=state.split()[0] if state else "",
                seconds=_int(elapsed),
                cpus=_int(alloc.get("cpu", "0")),
                gpus=_int(alloc.get("gres/gpu", "0")),
                joules=joules,
            )
        )
    return jobs


@dataclass(frozen=True)
class SeatUsage:
    seat: str
    display_name: str
    jobs: int
    cpu_hours: float
    gpu_hours: float
    energy_wh: float
    energy_measured: bool
    notebooks_opened: int = 0
    notebooks_completed: int = 0  # course notebooks whose last code cell the learner ran
    exercises_passed: int = 0


@dataclass(frozen=True)
class UsageReport:
    workshop: str
    account: str
    start: str
    end: str
    seats: tuple[SeatUsage, ...]
    total: SeatUsage
    energy_basis: str
    sreport: SreportCheck | None = None


def usage_report(
    workshop: Workshop,
    jobs: list[AccountedJob],
    names: dict[str, str],
    factors: EnergySettings,
    progress: Mapping[str, object] | None = None,
    sreport: SreportCheck | None = None,
) -> UsageReport:
    """Per seat and in total, from the workshop account's allocations (`jobs`); `names` maps
    seats to the display names they joined with, `progress` seats to what their sessions
    reported (anything with `notebooks_opened`, `notebooks_completed` and `exercises_passed`),
    `sreport` is Slurm's
    rolled-up check."""
    progress = progress or {}
    rows = []
    basis = ""
    gpu_type = ""
    for seat in workshop.seats:
        mine = [j for j in jobs if j.user == seat and j.account == workshop.account]
        figures = [
            job_energy(JobUsage(j.cpus, j.seconds, j.gpus, gpu_type), factors, j.joules)
            for j in mine
        ]
        basis = basis or next((f.basis for f in figures), "")
        rows.append(
            SeatUsage(
                seat=seat,
                display_name=names.get(seat, ""),
                jobs=len(mine),
                cpu_hours=round(sum(j.cpus * j.seconds for j in mine) / 3600, 4),
                gpu_hours=round(sum(j.gpus * j.seconds for j in mine) / 3600, 4),
                energy_wh=round(sum(f.wh for f in figures), 3),
                energy_measured=bool(figures) and all(f.measured for f in figures),
                notebooks_opened=_count(progress.get(seat), "notebooks_opened"),
                notebooks_completed=_count(progress.get(seat), "notebooks_completed"),
                exercises_passed=_count(progress.get(seat), "exercises_passed"),
            )
        )
    total = SeatUsage(
        seat="total",
        display_name="",
        jobs=sum(r.jobs for r in rows),
        cpu_hours=round(sum(r.cpu_hours for r in rows), 4),
        gpu_hours=round(sum(r.gpu_hours for r in rows), 4),
        energy_wh=round(sum(r.energy_wh for r in rows), 3),
        energy_measured=any(r.jobs for r in rows)
        and all(r.energy_measured for r in rows if r.jobs),
        notebooks_opened=sum(r.notebooks_opened for r in rows),
        notebooks_completed=sum(r.notebooks_completed for r in rows),
        exercises_passed=sum(r.exercises_passed for r in rows),
    )
    return UsageReport(
        workshop=workshop.name,
        account=workshop.account,
        start=workshop.start,
        end=workshop.ended or workshop.end,
        seats=tuple(rows),
        total=total,
        energy_basis=basis or "no jobs",
        sreport=sreport,
    )


def _count(progress: object, name: str) -> int:
    value = getattr(progress, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_COLUMNS = (
    "seat",
    "display_name",
    "jobs",
    "cpu_hours",
    "gpu_hours",
    "energy_wh",
    "energy_measured",
    "notebooks_opened",
    "notebooks_completed",
    "exercises_passed",
)


def report_json(report: UsageReport) -> str:
    return json.dumps(asdict(report), indent=1)


def report_csv(report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for row in (*report.seats, report.total):
        writer.writerow([_csv_cell(getattr(row, c)) for c in _COLUMNS])
    return out.getvalue()


def _csv_cell(value: object) -> object:
    """A display name a spreadsheet would run as a formula is quoted as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def report_html(report: UsageReport, title: str) -> str:
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in _COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(getattr(r, c)))}</td>" for c in _COLUMNS) + "</tr>"
        for r in (*report.seats, report.total)
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}: workshop {escape(report.workshop)}</title></head><body>"
        f"<h1>Usage of workshop {escape(report.workshop)}</h1>"
        f"<p>Slurm account {escape(report.account)}, {escape(report.start)} to"
        f" {escape(report.end)}. Figures from Slurm's accounting (sacct); energy"
        f" {'measured by Slurm' if report.total.energy_measured else 'estimated'}:"
        f" {escape(report.energy_basis)}. Notebooks opened, notebooks completed and exercises"
        " passed as the seats' sessions reported them; a course notebook is completed when its"
        " learner ran its last code cell.</p>"
        f"<table border='1'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (
            f"<p id='sreport'>{escape(report.sreport.sentence())}</p>"
            if report.sreport is not None
            else ""
        )
        + "</body></html>\n"
    )


# -- the handout -----------------------------------------------------------------------------


def join_url(hub_url: str, name: str) -> str:
    return f"{hub_url.rstrip('/')}/hub/workshop/{name}"


HOW_TO_START = (
    "Open the join address in a browser, enter the access code and your name, and press Join:"
    " your JupyterLab starts with the course's first notebook open."
)


REJOIN = (
    "Changed browser or computer? Open the join address and enter the rejoin key shown on"
    " your hub pages after you joined (or your seat's code): you get your seat and work back."
)


def handout_csv(
    workshop: Workshop, hub_url: str, code: str, seat_codes: Mapping[str, str] | None = None
) -> str:
    """One line for the room (the workshop's code), or with per-seat codes one line per seat
    (its own code), for a mail merge or slips."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ("workshop", "seat", "join_url", "access_code", "courses", "start", "end", "seats",
         "how_to_start")
    )  # fmt: skip
    lines = list(seat_codes.items()) if seat_codes else [("", code)]
    for seat, its_code in lines:
        writer.writerow(
            (
                workshop.name,
                seat,
                join_url(hub_url, workshop.name),
                its_code,
                " ".join(workshop.courses),
                workshop.start,
                workshop.end,
                len(workshop.seats),
                f"{HOW_TO_START} {REJOIN}",
            )
        )
    return out.getvalue()


def _slip(workshop: Workshop, url: str, code: str, seat: str) -> str:
    whose = f" (seat {escape(seat)}, yours alone)" if seat else ""
    return (
        f"<section class='slip'><h1>Workshop {escape(workshop.name)}</h1>"
        f"<p>{escape(workshop.start.replace('T', ' '))} to {escape(workshop.end.replace('T', ' '))}"
        f" · {escape(', '.join(workshop.courses))}</p>"
        f"<p>1. Open <a class='big' href='{url}'>{url}</a></p>"
        f"<p>2. Enter the access code <span class='big'>{escape(code)}</span>{whose} and your"
        " name.</p>"
        "<p>3. Press <b>Join</b>: JupyterLab opens with the course's first notebook."
        " Keep the browser tab; closing it does not stop your session.</p>"
        f"<p class='small'>{escape(REJOIN)}</p></section>"
    )


def handout_html(
    workshop: Workshop,
    hub_url: str,
    code: str,
    title: str,
    seat_codes: Mapping[str, str] | None = None,
) -> str:
    """The printable page: one sheet for the room, or one slip per seat (a page each)."""
    url = escape(join_url(hub_url, workshop.name))
    slips = (
        [_slip(workshop, url, c, seat) for seat, c in seat_codes.items()]
        if seat_codes
        else [_slip(workshop, url, code, "")]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}: workshop {escape(workshop.name)}</title>"
        "<style>body{font-family:sans-serif;margin:3em}"
        ".big{font-size:2.2em;font-family:monospace}.small{font-size:.9em}"
        "@media print{a{color:black}.slip{break-after:page}}</style>"
        f"</head><body>{''.join(slips)}</body></html>\n"
    )
