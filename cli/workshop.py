"""`factoryhub workshop create|list|status|end|purge` — a support centre's workshop from booking
to report, run as root (it makes Unix accounts and is the site's Slurm administrator).

create: plan (refused with sentences, nothing made) → the Slurm account with its budget → the
trainer group → the seat accounts (made, or the pool's enabled) → their associations → the
reservation → the record → the handout. A step that fails undoes every step before it, newest
first (a pool account is disabled again, never deleted).

end: (idempotent, resumable after a crash) the record says "ending" (the hub starts no more
seat sessions) → every job of the account cancelled → each seat's home archived + a manifest
→ the reservation deleted → seats disabled, the account closed to new jobs → the usage report
→ the record says "ended".
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import os
import pwd
import secrets
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from factoryhub.capacity import Capacity
from factoryhub.courses.catalogue import course_presets
from factoryhub.courses.cli import site_path
from factoryhub.scheduler.admin import Reservation, SlurmAdmin
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.site import Site, SiteError, load_site
from factoryhub.workshop import (
    CODE_MODES,
    TIME_FORMAT,
    SiteFacts,
    TakenSlot,
    WorkshopPlan,
    WorkshopRefused,
    WorkshopRequest,
    parse_when,
    plan_workshop,
    trainer_group,
)
from factoryhub.workshoppool import pool_state
from factoryhub.workshoprecord import Workshop, from_plan, new_code
from factoryhub.workshopreport import (
    SACCT_FORMAT,
    handout_csv,
    handout_html,
    join_url,
    parse_sacct,
)
from factoryhub.workshopstore import (
    load_workshop,
    load_workshops,
    records_dir,
    trainer_files_dir,
)

from . import seats as pool
from .workshop_end import end, purge, report_again
from .workshop_files import (
    Failed,
    save_record,
    seat_names_claimed,
    site_pool,
    trainer_folder,
    write_atomic,
)

RETENTION_DAYS = 30


def add_parser(sub: argparse._SubParsersAction) -> None:
    ws = sub.add_parser("workshop", help="workshops: reservation, seats, access code, report")
    ws.add_argument("--site", type=Path, default=None, help="site.toml (as for `course`)")
    actions = ws.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="book a workshop (or --dry-run: the plan)")
    create.add_argument("name")
    create.add_argument("--course", action="append", required=True, dest="courses")
    create.add_argument("--start", required=True, help="2026-12-03T09:00, now, now+30min")
    create.add_argument("--end", required=True)
    create.add_argument("--seats", type=int, required=True)
    create.add_argument("--partition", default="")
    create.add_argument("--cpus", type=int, default=None, help="per seat, at most the preset's")
    create.add_argument("--memory-gb", type=int, default=None)
    create.add_argument("--gpu-hours", type=float, default=None, help="the account's GPU budget")
    create.add_argument("--trainer", action="append", default=[], dest="trainers")
    create.add_argument(
        "--codes",
        choices=CODE_MODES,
        default="workshop",
        help="one access code for the room (default) or one per seat, each its own line of"
        " the handout",
    )
    create.add_argument("--dry-run", action="store_true")
    actions.add_parser("list", help="every workshop of this hub")
    for action in ("status", "end"):
        actions.add_parser(action).add_argument("name")
    report = actions.add_parser("report", help="write an ended workshop's report again")
    report.add_argument("name")
    purge = actions.add_parser("purge", help="remove an ended workshop's seats after retention")
    purge.add_argument("name")
    purge.add_argument("--retention-days", type=float, default=RETENTION_DAYS)


def _site(args: argparse.Namespace) -> Site:
    try:
        return load_site(site_path(args.site))
    except (OSError, SiteError) as exc:
        raise Failed(f"site.toml: {exc}") from None


def main(args: argparse.Namespace) -> int:
    try:
        site = _site(args)
        if args.action == "create":
            return create(site, args)
        if args.action == "list":
            return show_list(site)
        if args.action == "status":
            return status(site, args.name)
        if args.action == "end":
            return end(site, args.name)
        if args.action == "report":
            return report_again(site, args.name)
        return purge(site, args.name, args.retention_days)
    except WorkshopRefused as refused:
        print("Not done; nothing was made:", file=sys.stderr)
        for reason in refused.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (SlurmError, pool.SeatError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(
            f"error: {first}\n(end and purge finish what is left when run again)", file=sys.stderr
        )
        return 1


# -- the site's facts -------------------------------------------------------------------------


def _expand_nodes(text: str) -> frozenset[str]:
    """`cn[01-02],gn01` → {cn01, cn02, gn01} (Slurm's host lists, as scontrol prints them)."""
    names: set[str] = set()
    for part in _split_hostlist(text):
        if "[" not in part:
            if part and part != "(null)":
                names.add(part)
            continue
        prefix, ranges = part.split("[", 1)
        for item in ranges.rstrip("]").split(","):
            low, _, high = item.partition("-")
            width = len(low)
            for n in range(int(low), int(high or low) + 1):
                names.add(f"{prefix}{n:0{width}d}")
    return frozenset(names)


def _split_hostlist(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _slot(r: Reservation) -> TakenSlot | None:
    try:
        start, end = (datetime.strptime(t, TIME_FORMAT) for t in (r.start, r.end))
    except ValueError:
        return None
    return TakenSlot(r.name, start, end, _expand_nodes(r.nodes), r.cores, r.maintenance)


async def _facts(site: Site, admin: SlurmAdmin, now: datetime) -> SiteFacts:
    capacity: Capacity = await admin.client.capacity()
    reservations = await admin.reservations()
    accounts = await admin.accounts()
    unix = {p.pw_name for p in pwd.getpwall()} | {g.gr_name for g in grp.getgrall()}
    workshops = load_workshops(records_dir(site))
    pool = None
    if site.workshops.account_pool:
        held = {seat: w.name for w in workshops.values() if w.state != "purged" for seat in w.seats}
        staff = {*site.hub.admin_users, *site.hub.trainers}
        pool = pool_state(site_pool(site), {p.pw_name for p in pwd.getpwall()}, held, staff)
    return SiteFacts(
        now=now,
        presets=course_presets(site),
        nodes=capacity.nodes,
        reservations=tuple(s for r in reservations if (s := _slot(r)) is not None),
        workshops=frozenset(workshops),
        taken_names=frozenset(unix | accounts | {r.name for r in reservations}),
        users=frozenset(p.pw_name for p in pwd.getpwall()),
        pool=pool.free if pool is not None else None,
        pool_note=pool.note if pool is not None else "",
    )


def _request(args: argparse.Namespace, now: datetime) -> WorkshopRequest:
    reasons, times = [], []
    for label, text in (("--start", args.start), ("--end", args.end)):
        try:
            times.append(parse_when(text, now))
        except WorkshopRefused as refused:
            reasons += [f"{label}: {r}" for r in refused.reasons]
    if reasons:
        raise WorkshopRefused(reasons)
    return WorkshopRequest(
        name=args.name,
        courses=tuple(args.courses),
        start=times[0],
        end=times[1],
        seats=args.seats,
        partition=args.partition,
        cpus=args.cpus,
        memory_gb=args.memory_gb,
        gpu_hours=args.gpu_hours,
        trainers=tuple(args.trainers),
        codes=getattr(args, "codes", "workshop"),
    )


# -- create ------------------------------------------------------------------------------------


class Undo:
    """Steps made so far, undone newest first when a later one fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def run(self) -> list[str]:
        problems = []
        for what, step in reversed(self.steps):
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
            except Exception as exc:
                problems.append(f"undoing {what}: {exc}")
        return problems


def create(site: Site, args: argparse.Namespace) -> int:
    now = datetime.now().replace(microsecond=0)
    admin = SlurmAdmin(SlurmClient(bin_dir=site.slurm.bin_dir, timeout=60.0))
    request = _request(args, now)
    plan = plan_workshop(request, asyncio.run(_facts(site, admin, now)))
    if args.dry_run:
        print("\n".join(["Plan (dry run, nothing made):", *plan.describe()]))
        return 0
    per_seat = plan.codes == "per-seat"
    code = "" if per_seat else new_code()
    seat_codes = {seat: new_code() for seat in plan.seats} if per_seat else {}
    workshop = from_plan(plan, site.hub.id, code, secrets.token_hex(16), now, seat_codes)
    undo = Undo()
    try:
        _make(site, admin, plan, workshop, (code, seat_codes), undo, now)
    except (SlurmError, pool.SeatError, OSError, Failed) as exc:
        problems = undo.run()
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lines = [f"workshop {plan.name} not created: {why}"]
        lines += problems if problems else ["everything made so far was removed"]
        raise Failed("\n".join(lines)) from None
    files = trainer_files_dir(site, plan.name)
    print("\n".join(plan.describe()))
    if per_seat:
        print(f"\nJoin at {join_url(site.hub.url, plan.name)} with each seat's own code:")
        print("\n".join(f"  {seat}: access code {c}" for seat, c in seat_codes.items()))
    else:
        print(f"\nJoin at {join_url(site.hub.url, plan.name)} with the access code {code}")
    print(f"Handout for the room: {files / 'handout.html'} and {files / 'handout.csv'}")
    return 0


def _make(site, admin, plan: WorkshopPlan, workshop: Workshop, codes, undo: Undo, now):
    code, seat_codes = codes
    run = asyncio.run
    run(admin.add_account(plan.account, organization="workshops", limits=plan.account_limits()))
    undo.push(f"Slurm account {plan.account}", lambda: admin.remove_account(plan.account))
    group = trainer_group(plan.name)
    undo.push(f"group {group}", lambda: pool.delete_group(group))
    pool.create_trainer_group(group, plan.trainers)
    _take_seats(site, plan, undo)
    settings = [f"account={plan.account}"]
    if not plan.pooled:  # a pool account keeps the default account the centre gave it
        settings.append(f"defaultaccount={plan.account}")
    run(admin.add_users(plan.seats, settings))
    undo.push("the seats' associations", lambda: admin.remove_users(plan.seats, plan.account))
    run(admin.create_reservation(plan.reservation, plan.reservation_settings(datetime.now())))
    undo.push(f"reservation {plan.reservation}", lambda: admin.delete_reservation(plan.reservation))
    folder = trainer_folder(site, plan.name)
    undo.push(f"folder {folder}", lambda: shutil.rmtree(folder))
    trainers = (0, os.lstat(folder).st_gid)  # the trainers' group reads, nobody else
    handout = handout_csv(workshop, site.hub.url, code, seat_codes)
    write_atomic(folder / "handout.csv", handout, 0o640, trainers)
    html = handout_html(workshop, site.hub.url, code, site.hub.title, seat_codes)
    write_atomic(folder / "handout.html", html, 0o640, trainers)
    save_record(site, workshop)  # last: the hub takes joins from here on


def _take_seats(site: Site, plan: WorkshopPlan, undo: Undo) -> None:
    """The seat accounts: made (ws-NAME-NN) and deleted on undo, or the pool's enabled and
    disabled again on undo."""
    if plan.pooled:
        names = site_pool(site)
        for seat in plan.seats:
            undo.push(
                f"pool account {seat}",
                lambda seat=seat: pool.disable_seat(seat, site.hub.allowed_group, names),
            )
            pool.enable_pool_seat(seat, site.hub.allowed_group, names)
        return
    for seat in plan.seats:
        undo.push(f"seat {seat}", lambda seat=seat: pool.delete_seat(seat))
        pool.create_seat(seat, site.hub.allowed_group)


# -- list and status ---------------------------------------------------------------------------


def show_list(site: Site) -> int:
    workshops = load_workshops(records_dir(site))
    if not workshops:
        print("No workshops.")
    for w in workshops.values():
        print(
            f"{w.name:<16} {w.state:<8} {w.start} → {w.end}  {len(w.seats):>3} seats"
            f"  {', '.join(w.courses)}"
        )
    return 0


def _budget_use(admin: SlurmAdmin, workshop: Workshop) -> str:
    try:
        text = asyncio.run(admin.accounted_jobs(workshop.account, workshop.start, SACCT_FORMAT))
    except SlurmError as exc:
        return f"(accounting not answering: {exc})"
    jobs = [j for j in parse_sacct(text) if j.account == workshop.account]
    cpu_h = sum(j.cpus * j.seconds for j in jobs) / 3600
    gpu_h = sum(j.gpus * j.seconds for j in jobs) / 3600
    used = f"{cpu_h:.2f} of {workshop.cpu_minutes / 60:g} CPU-hours"
    if workshop.gpu_minutes:
        used += f", {gpu_h:.2f} of {workshop.gpu_minutes / 60:g} GPU-hours"
    return f"{used}, {len(jobs)} job(s)"


def status(site: Site, name: str) -> int:
    workshop = load_workshop(records_dir(site), name)
    if workshop is None:
        raise Failed(f"no workshop named {name[:40]!r} on this hub")
    admin = SlurmAdmin(SlurmClient(bin_dir=site.slurm.bin_dir, timeout=60.0))
    reservation = next(
        (r for r in asyncio.run(admin.reservations()) if r.name == workshop.reservation), None
    )
    claims = seat_names_claimed(site, workshop)
    print(f"workshop {workshop.name}: {workshop.state}, {workshop.start} → {workshop.end}")
    print(f"courses: {', '.join(workshop.courses)}; trainers: {', '.join(workshop.trainers)}")
    print(f"join: {join_url(site.hub.url, workshop.name)}")
    codes = "one code per seat" if workshop.codes == "per-seat" else "one code for the room"
    origin = "the site's pool" if workshop.pooled else f"made for it ({workshop.seats[0]} …)"
    print(f"access: {codes}; seat accounts: {origin}")
    if reservation:
        print(f"reservation {reservation.name}: {reservation.state} on {reservation.nodes}")
    else:
        print(f"reservation {workshop.reservation}: none")
    print(f"budget used: {_budget_use(admin, workshop)}")
    print(f"seats: {len(claims)} of {len(workshop.seats)} taken")
    for seat in workshop.seats:
        print(f"  {seat:<16} {claims.get(seat, '(free)')}")
    return 0
