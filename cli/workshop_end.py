"""`factoryhub workshop end`, `report` and `purge`: resumable, and idempotent once done (see
`factoryhub.cli.workshop` for the order of the steps). `report` writes an ended workshop's
report again (Slurm rolls usage up hourly: after the next hour `sreport` covers the slot).
`purge` deletes the seats FactoryHub made, and returns the site's pool accounts to the pool:
disabled, their homes emptied without following a link, their workshop associations gone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from factoryhub.progressstore import ProgressStore, progress_path
from factoryhub.scheduler.admin import AdminError, SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.site import Site
from factoryhub.workshop import TIME_FORMAT
from factoryhub.workshoprecord import Workshop
from factoryhub.workshopreport import (
    SACCT_FORMAT,
    parse_sacct,
    report_csv,
    report_html,
    report_json,
    usage_report,
)
from factoryhub.workshoprollup import parse_sreport, rollup_window, sreport_check
from factoryhub.workshopstore import load_workshop, records_dir

from . import seats as pool
from .workshop_files import (
    Failed,
    hub_file_copy,
    root_folder,
    save_record,
    seat_names_claimed,
    site_pool,
    trainer_folder,
    write_atomic,
)

STOP_WAIT = 60.0  # seconds `end` waits for the account's jobs to leave the queue
ACCOUNTING_WAIT = 60.0  # seconds the report waits for slurmdbd to record the jobs it stopped
_LIVE = ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING", "RESIZING")


def end(site: Site, name: str) -> int:
    workshop = load_workshop(records_dir(site), name)
    if workshop is None:
        raise Failed(f"no workshop named {name[:40]!r} on this hub")
    if workshop.state in ("ended", "purged"):
        print(f"workshop {name} has already ended ({workshop.ended}); nothing to do")
        return 0
    now = datetime.now().replace(microsecond=0)
    if workshop.state != "ending":
        workshop = workshop.with_state("ending", now)
        save_record(site, workshop)  # the hub starts no more sessions for these seats
    admin = SlurmAdmin(SlurmClient(bin_dir=site.slurm.bin_dir, timeout=60.0))
    # no new job from here (a process a job left could submit one), then none running, then
    # no process of a seat (what its jobs left running dies with the slot)
    asyncio.run(admin.set_account_limits(workshop.account, ["GrpSubmitJobs=0"]))
    stopped = _stop_jobs(admin, workshop)
    names = site_pool(site) if workshop.pooled else ()
    for seat in workshop.seats:
        if pool.user_exists(seat):
            pool.end_processes(seat, names)
    folder = trainer_folder(site, name)
    _archive(workshop, folder, site_pool(site) if workshop.pooled else ())
    if any(r.name == workshop.reservation for r in asyncio.run(admin.reservations())):
        asyncio.run(admin.delete_reservation(workshop.reservation))
    for seat in workshop.seats:
        if pool.user_exists(seat):
            pool.disable_seat(seat, site.hub.allowed_group, names)
    _report(site, admin, workshop, folder, stopped)
    save_record(site, workshop.with_state("ended", now))
    print(f"workshop {name} ended: archives, manifest and report in {folder}")
    return 0


def _stop_jobs(admin: SlurmAdmin, workshop: Workshop) -> set[str]:
    """Every job charged to the workshop cancelled (the hub notices at its next poll and
    clears the learners' servers), and gone from the queue before homes are archived; the
    ids of the jobs it found."""
    deadline = time.monotonic() + STOP_WAIT
    found: set[str] = set()
    while queued := asyncio.run(admin.queued_jobs(workshop.account)):
        found.update(queued)
        asyncio.run(admin.cancel_account_jobs(workshop.account))
        if time.monotonic() > deadline:
            raise Failed(f"jobs of {workshop.account} still queued {STOP_WAIT:g} s after scancel")
        time.sleep(1)
    return found


def _accounted(admin: SlurmAdmin, workshop: Workshop, stopped: set[str]) -> list:
    """The account's allocations from sacct, once slurmdbd has recorded the end of every job
    `end` stopped and of every job it still has as live (it learns of them a moment after
    slurmctld; a report read before would miss them or count them short). After
    `ACCOUNTING_WAIT` the report is written as sacct has it, and says so."""
    deadline = time.monotonic() + ACCOUNTING_WAIT
    while True:
        text = asyncio.run(admin.accounted_jobs(workshop.account, workshop.start, SACCT_FORMAT))
        jobs = parse_sacct(text)
        ended = {j.job_id for j in jobs if j.state not in _LIVE}
        # the queue is empty by now: a job sacct still has as live is one slurmdbd has not
        # heard the end of yet (a resumed `end` did not see it stop)
        missing = (stopped - ended) | {j.job_id for j in jobs if j.state in _LIVE}
        if not missing:
            return jobs
        if time.monotonic() > deadline:
            print(
                f"warning: Slurm's accounting has not recorded the end of job(s)"
                f" {', '.join(sorted(missing)[:5])} yet; run `factoryhub workshop report"
                f" {workshop.name}` again later"
            )
            return jobs
        time.sleep(1)


def _archive(workshop: Workshop, folder: Path, names: tuple[str, ...] = ()) -> None:
    """One archive per seat and a manifest with their checksums; made in a staging folder and
    renamed into place, so a crash half-way leaves no archive that looks finished."""
    done = folder / "archives"
    if (done / "manifest.json").exists():
        return
    staging = folder / "archives.partial"
    shutil.rmtree(staging, ignore_errors=True)
    root_folder(staging, 0o750, os.lstat(folder).st_gid)
    entries = []
    for seat in workshop.seats:
        if pool.user_exists(seat):
            entries.append(pool.archive_home(seat, staging, names).__dict__)
    manifest = {"workshop": workshop.name, "algorithm": "sha256", "archives": entries}
    write_atomic(staging / "manifest.json", json.dumps(manifest, indent=1), 0o640)
    for path in staging.iterdir():  # root's files, made here: no link among them
        os.chown(path, 0, os.lstat(folder).st_gid, follow_symlinks=False)
    shutil.rmtree(done, ignore_errors=True)
    staging.rename(done)


def _rolled_up(admin: SlurmAdmin, workshop: Workshop, jobs: list):
    """Slurm's hourly rolled-up figures for the slot's hours, against sacct cut to them."""
    window = rollup_window(workshop, datetime.now())
    if window is None:
        return sreport_check(None, None, [], jobs, workshop.account)
    start, end = (t.strftime(TIME_FORMAT) for t in window)
    rolled = parse_sreport(
        asyncio.run(admin.rolled_up_usage(workshop.account, start, end)), workshop.account
    )
    cut = asyncio.run(admin.accounted_jobs_between(workshop.account, start, end, SACCT_FORMAT))
    return sreport_check(window, rolled, parse_sacct(cut), jobs, workshop.account)


def _progress(site: Site, workshop: Workshop) -> dict:
    """Each seat's progress as its sessions reported it to the hub service (the cohort page's
    own figures), read from a copy of the service's file (`hub_file_copy`)."""
    with hub_file_copy(progress_path(site)) as copy:
        return {} if copy is None else ProgressStore(copy).progress(workshop.key)


def _report(
    site: Site, admin: SlurmAdmin, workshop: Workshop, folder: Path, stopped: set[str] = frozenset()
) -> None:
    jobs = _accounted(admin, workshop, set(stopped))
    report = usage_report(
        workshop,
        jobs,
        seat_names_claimed(site, workshop),
        site.energy,
        progress=_progress(site, workshop),
        sreport=_rolled_up(admin, workshop, jobs),
    )
    trainers = (0, os.lstat(folder).st_gid)
    write_atomic(folder / "report.json", report_json(report), 0o640, trainers)
    write_atomic(folder / "report.csv", report_csv(report), 0o640, trainers)
    write_atomic(folder / "report.html", report_html(report, site.hub.title), 0o640, trainers)


def purge(site: Site, name: str, retention_days: float) -> int:
    workshop = load_workshop(records_dir(site), name)
    if workshop is None:
        raise Failed(f"no workshop named {name[:40]!r} on this hub")
    if workshop.state == "purged":
        print(f"workshop {name} was purged already; nothing to do")
        return 0
    if workshop.state != "ended":
        raise Failed(f"workshop {name} has not ended; run `factoryhub workshop end {name}` first")
    ended = datetime.strptime(workshop.ended, TIME_FORMAT)
    if datetime.now() < ended + timedelta(days=retention_days):
        raise Failed(
            f"workshop {name} ended {workshop.ended}; its seats are kept {retention_days:g} days"
            " (--retention-days to shorten)"
        )
    admin = SlurmAdmin(SlurmClient(bin_dir=site.slurm.bin_dir, timeout=60.0))
    if workshop.pooled:
        names = site_pool(site)
        for seat in workshop.seats:
            if pool.user_exists(seat):
                pool.disable_seat(seat, site.hub.allowed_group, names)
                pool.end_processes(seat, names)  # none lives on into the next holder's slot
                pool.clean_home(seat, names, site.storage.scratch.path)
    else:
        for seat in workshop.seats:
            if pool.user_exists(seat):
                pool.end_processes(seat)
            pool.delete_seat(seat)
    try:
        asyncio.run(admin.remove_users(workshop.seats, workshop.account))
        asyncio.run(admin.remove_account(workshop.account))
    except (SlurmError, AdminError) as exc:
        if "Nothing deleted" not in str(exc):
            raise
    save_record(site, workshop.with_state("purged", datetime.now()))
    seats = (
        "pool accounts returned to the pool (disabled, homes emptied)"
        if workshop.pooled
        else "seat accounts and homes removed"
    )
    print(f"workshop {name} purged: {seats}; archives and report kept")
    return 0


def report_again(site: Site, name: str) -> int:
    """The report of an ended workshop written again (Slurm's rollup has caught up)."""
    workshop = load_workshop(records_dir(site), name)
    if workshop is None:
        raise Failed(f"no workshop named {name[:40]!r} on this hub")
    if workshop.state not in ("ended", "purged"):
        raise Failed(f"workshop {name} has not ended; `factoryhub workshop end {name}` reports")
    admin = SlurmAdmin(SlurmClient(bin_dir=site.slurm.bin_dir, timeout=60.0))
    folder = trainer_folder(site, name)
    _report(site, admin, workshop, folder)
    print(f"report of workshop {name} written again in {folder}")
    return 0
